"""The tools on top of the client, the model and the scoring API (distribution ``credit-explainer-tools``).

The local stack (``local``), AWS deployment (``deploy``), the decisions records
(``decisions``, ``notice``, ``outcomes``) and drift monitoring (``monitor``): their
commands join the client's ``credit-explainer`` command when this package is installed.
"""
