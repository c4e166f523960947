"""The model side of credit-explainer: data, training, artifacts, explanations, inference, serving.

Needs the ``model`` extra (numpy, scikit-learn, shap, pandas, skops, starlette, uvicorn).
"""
