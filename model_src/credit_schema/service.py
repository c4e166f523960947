"""Names and limits the services share: stated here once, read by the model server, the
scoring API, the local stack and deploy."""

from __future__ import annotations

from typing import Final

#: The SageMaker endpoint (and deployment) name when none is given.
DEFAULT_ENDPOINT_NAME: Final = "credit-explainer"
#: The endpoint's one production variant.
DEFAULT_VARIANT: Final = "AllTraffic"
