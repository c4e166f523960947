"""The model side of credit-explainer: data, training, artifacts, explanations, inference, serving.

The ``credit-explainer-model`` distribution (model_src/pyproject.toml: numpy, scikit-learn, shap,
pandas, skops, starlette, uvicorn).
"""
