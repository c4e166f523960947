"""The model side of credit-explainer: training, artifacts, explanations, handlers, model server."""
