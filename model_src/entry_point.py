"""SageMaker script-mode entry point (``source_dir=model_src``, ``entry_point=entry_point.py``).

As a module, it exposes the inference handlers of the scikit-learn container
contract; run as a script, it trains (``SM_MODEL_DIR``, ``SM_CHANNEL_TRAIN``,
optional ``SM_CHANNEL_TEST``, hyperparameters as ``--name value`` arguments).
"""

import sys

from credit_model.handlers import input_fn, model_fn, output_fn, predict_fn
from credit_model.train import main, train_fn

__all__ = ["input_fn", "model_fn", "output_fn", "predict_fn", "train_fn"]

if __name__ == "__main__":
    sys.exit(main())
