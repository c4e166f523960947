"""Training data: a lender's CSV files read by its schema, or the synthetic default."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from credit_schema import BUILTIN, ApplicantSchema
from credit_schema.schema import INDEX_COLUMNS

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


def _labels(frame: pd.DataFrame, schema: ApplicantSchema, source: object) -> pd.Series:
    """The target as 0/1: 1 where the column holds the schema's risk label."""
    target = schema.schema.target
    column = frame[schema.target]
    if column.isna().any():
        raise DataError(f"{source}: {schema.target} is empty on some rows")
    labels = column.astype(str).map(target.outcome)
    if labels.isna().any():
        raise DataError(f"{source}: {schema.target} must be 0 or 1 on every row")
    return labels.astype(np.int64)


def encode_frame(frame: pd.DataFrame, schema: ApplicantSchema, source: object) -> pd.DataFrame:
    """Columns checked against the schema; features as floats (a category as its code, NaN
    where missing), the target as 0/1, ids and prohibited attributes kept as text."""
    import pandas as pd

    frame = frame.drop(columns=[c for c in frame.columns if str(c).startswith("Unnamed:")])
    missing = [c for c in (schema.target, *schema.features) if c not in frame.columns]
    if missing and not set(schema.features) & set(frame.columns):  # another data set's file
        own = " (for a lender's own data: --schema FILE, drafted by credit-explainer schema infer)"
        raise DataError(
            f"{source}: none of its columns is a feature of the schema {schema.name!r}"
            f"{own if schema is BUILTIN else ''}"
        )
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(missing)}")
    known = {schema.target, *schema.features, *schema.id_columns, *schema.ignored}
    extra = [str(c) for c in frame.columns if c not in known and c not in INDEX_COLUMNS]
    if extra:
        raise DataError(
            f"{source}: column(s) the schema {schema.name!r} does not know: {', '.join(extra)} "
            "(add them to the schema as features, id_columns, ignored_columns or prohibited)"
        )
    out = pd.DataFrame({schema.target: _labels(frame, schema, source)})
    for name in schema.features:
        column = frame[name]
        codes = schema.codes.get(name)
        if codes is not None:
            text = column.map(lambda v: None if pd.isna(v) else str(v).strip())
            unknown = sorted({v for v in text if v is not None and v not in codes})
            if unknown:
                row = int(text.isin(unknown).to_numpy().argmax())
                raise DataError(
                    f"{source}: row {row + 1}, column {name}: category {unknown[0]!r} is not in "
                    "the schema"
                )
            values = text.map(lambda v, codes=codes: np.nan if v is None else float(codes[v]))
        else:
            values = column if column.dtype.kind in "fiu" else pd.to_numeric(column, errors="coerce")
            bad = column.notna() & values.isna()
            if bad.any():
                row = int(bad.to_numpy().argmax())
                raise DataError(f"{source}: row {row + 1}, column {name}: not a number")
        if name not in schema.nullable and values.isna().any():
            row = int(values.isna().to_numpy().argmax())
            raise DataError(
                f"{source}: row {row + 1}, column {name}: empty, and the schema says it may "
                "not be missing"
            )
        out[name] = values.astype(np.float64)
    for name in (*schema.prohibited, *schema.id_columns):
        if name in frame.columns:
            out[name] = frame[name].astype(str)
    return out


def load_csv(path: str | Path, schema: ApplicantSchema = BUILTIN) -> pd.DataFrame:
    """Read a CSV file or a directory of CSV files with ``schema``'s columns.

    An unnamed index column is dropped. Returns the target (0/1), the features (floats, a
    category as its code) and the ids and prohibited attributes present (text).
    """
    import pandas as pd

    frames = []
    for file in _csv_files(Path(path)):
        try:
            # Numbers parsed by read_csv's own parser (as before schemas); texts kept as text.
            texts = [*schema.categorical, *schema.id_columns, *schema.prohibited, schema.target]
            frame = pd.read_csv(file, dtype=dict.fromkeys(texts, str))
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(f"{file}: not a CSV file ({exc})") from None
        frames.append(encode_frame(frame, schema, file))
    data = pd.concat(frames, ignore_index=True)
    if data.empty:
        raise DataError(f"{path}: no rows")
    return data


def split_xy(
    data: pd.DataFrame, schema: ApplicantSchema = BUILTIN
) -> tuple[np.ndarray, np.ndarray]:
    """Features as a float matrix in model order (NaN for missing) and the labels."""
    X = data[list(schema.features)].to_numpy(dtype=np.float64)
    return X, data[schema.target].to_numpy(dtype=np.int64)
