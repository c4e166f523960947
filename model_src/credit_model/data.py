"""Training data: Give Me Some Credit CSV files, or the synthetic default."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from credit_schema import FEATURES, TARGET

if TYPE_CHECKING:
    import pandas as pd


class DataError(ValueError):
    """The training data cannot be used (missing file, wrong columns, no rows)."""


def _csv_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv")
        if not files:
            raise DataError(f"{path} holds no .csv file")
        return files
    if not path.exists():
        raise DataError(f"{path} does not exist")
    return [path]


def load_csv(path: str | Path, *, keep: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV file or a directory of CSV files with the Give Me Some Credit schema.

    The Kaggle ``cs-training.csv`` (with its unnamed index column) and the same
    columns without it are both accepted. Returns ``[TARGET, *FEATURES]`` as floats, and the
    columns ``keep`` as read (never given to the model: prohibited-basis attributes for the report).
    """
    import pandas as pd

    frames = []
    for file in _csv_files(Path(path)):
        frame = pd.read_csv(file)
        frame = frame.drop(columns=[c for c in frame.columns if str(c).startswith("Unnamed:")])
        missing = [c for c in (TARGET, *FEATURES, *keep) if c not in frame.columns]
        if missing:
            raise DataError(f"{file}: missing column(s) {', '.join(missing)}")
        extra = [c for c in frame.columns if c not in (TARGET, *FEATURES, *keep)]
        if extra:
            raise DataError(f"{file}: unknown column(s) {', '.join(map(str, extra))}")
        frames.append(frame[[TARGET, *FEATURES, *keep]])
    data = pd.concat(frames, ignore_index=True)
    if data.empty:
        raise DataError(f"{path}: no rows")
    labels = data[TARGET]
    if labels.isna().any() or not labels.isin([0, 1]).all():
        raise DataError(f"{path}: {TARGET} must be 0 or 1 on every row")
    model = data[[TARGET, *FEATURES]].astype(np.float64).astype({TARGET: np.int64})
    return pd.concat([model, data[list(keep)]], axis=1) if keep else model


def split_xy(data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Features as a float matrix in model order (NaN for missing) and the labels."""
    return data[list(FEATURES)].to_numpy(dtype=np.float64), data[TARGET].to_numpy(dtype=np.int64)
