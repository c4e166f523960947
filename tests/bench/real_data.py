"""Where the benchmarks find the real Give Me Some Credit rows (beside the repository, never in it).

``CREDIT_EXPLAINER_REAL_DATA`` overrides the path, as for the tests (``tests/conftest.py``);
every benchmark falls back to the seeded synthetic data when the file is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REAL_DATA = Path(
    os.environ.get(
        "CREDIT_EXPLAINER_REAL_DATA",
        ROOT.parent / "shared" / "data" / "give-me-some-credit" / "train.csv",
    )
)
