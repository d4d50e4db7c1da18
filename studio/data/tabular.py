"""CSV and Parquet tables."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from studio.data.dataset import Dataset, limit
from studio.errors import StudioError

DEFAULT_LABELS = ("target", "label", "y", "class")


def frame_to_x(frame):
    """Feature matrix from a DataFrame.

    Returns
    -------
    x : ndarray of shape (n_rows, n_features)
        float64 when every column is numeric, else object.
    categorical : list of str
        Names of the non-numeric columns.
    """
    import pandas as pd

    categorical = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])]
    if categorical:
        x = frame.astype(object).to_numpy()
    else:
        x = frame.to_numpy(dtype=np.float64)
    return x, categorical


def read_table(data: bytes, name: str):
    """Parse CSV or Parquet bytes into a DataFrame, or raise StudioError."""
    import pandas as pd

    suffix = Path(name).suffix.lower()
    if not data.strip():
        raise StudioError(f"dataset {name!r} is empty; a table needs a header line and at least one row")
    parquet = suffix == ".parquet" or data[:4] == b"PAR1"
    kind = "Parquet" if parquet else "CSV"
    header = None
    try:
        if parquet:
            frame = pd.read_parquet(io.BytesIO(data))
        else:
            if b"\x00" in data[:65536]:
                raise StudioError(f"dataset {name!r} is binary, not a CSV text file; export the table as CSV (UTF-8)")
            header, delimiter = _csv_header(data, name)
            frame = pd.read_csv(io.BytesIO(data), sep=delimiter)
    except StudioError:
        raise
    except MemoryError:
        raise StudioError(f"dataset {name!r} needs more memory than is free to load; sample it first") from None
    except UnicodeDecodeError:
        raise StudioError(f"dataset {name!r} is not UTF-8 text; save the CSV with UTF-8 encoding") from None
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise StudioError(f"dataset {name!r} is not a readable {kind} file ({first}); check the file and its format") from None
    if frame.shape[1] == 0:
        raise StudioError(f"dataset {name!r} has no columns; a table needs a header line naming its columns")
    if frame.shape[0] == 0 or frame.isna().all().all():
        raise StudioError(f"dataset {name!r} has no rows with values; a table needs a header line and at least one row")
    names = header if header is not None and len(header) == frame.shape[1] else [str(c) for c in frame.columns]
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise StudioError(
            f"dataset {name!r} has duplicate column names ({', '.join(map(repr, dupes[:5]))}); give every column a unique name"
        )
    frame.columns = [str(c) for c in frame.columns]
    if not parquet and frame.shape[1] == 1:
        for sep, word in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if sep in frame.columns[0]:
                raise StudioError(
                    f"dataset {name!r} was read as a single column {frame.columns[0][:60]!r}: it looks separated by {word} "
                    "with decimal commas; save it as a comma-separated CSV with '.' as the decimal mark"
                )
    max_rows = limit("STUDIO_MAX_ROWS", 2_000_000)
    if len(frame) > max_rows:
        raise StudioError(
            f"dataset {name!r} has {len(frame)} rows, over the limit of {max_rows}; "
            "sample it, or raise the limit with STUDIO_MAX_ROWS"
        )
    return frame


def _csv_header(data: bytes, name: str):
    """(column names as written in the header, delimiter).

    pandas renames duplicated names to ``a.1``, so duplicates are found here.
    The delimiter is a comma when the start of the file has one, else the
    one of ``; tab |`` the header uses.
    """
    import csv

    first = data[:65536].split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise StudioError(f"dataset {name!r} is not UTF-8 text; save the CSV with UTF-8 encoding") from None
    delimiter = ","
    if b"," not in data[:4096]:
        counts = {d: text.count(d) for d in (";", "\t", "|")}
        best = max(counts, key=counts.get)
        if counts[best]:
            delimiter = best
    try:
        return next(csv.reader([text], delimiter=delimiter), []), delimiter
    except csv.Error:
        return None, delimiter


def table_dataset(frame, name: str = "data", label: str | None = None, feature_names=None) -> Dataset:
    """A tabular Dataset from a DataFrame.

    Parameters
    ----------
    frame : pandas.DataFrame
    label : str, optional
        The label column. Default: ``target``, ``label``, ``y`` or ``class``,
        else the one column not among ``feature_names``, else no label.
    feature_names : list of str, optional
        The model's features, used to find the label column.
    """
    columns = list(frame.columns)
    if label is not None and label not in columns:
        raise StudioError(f"label column {label!r} is not in {name!r}; its columns are {', '.join(columns[:12])}")
    if label is None:
        found = [c for c in DEFAULT_LABELS if c in columns]
        if found:
            label = found[0]
        elif feature_names is not None:
            rest = [c for c in columns if c not in set(feature_names)]
            if len(rest) == 1:
                label = rest[0]
    features = frame.drop(columns=[label]) if label else frame
    if features.shape[1] == 0:
        raise StudioError(f"dataset {name!r} has no feature columns besides the label {label!r}")
    y = None
    class_names = None
    if label:
        ycol = frame[label]
        if ycol.isna().any():
            raise StudioError(f"label column {label!r} has {int(ycol.isna().sum())} missing value(s); fill or drop those rows")
        y = ycol.to_numpy()
        uniques = np.unique(y.astype(str)) if y.dtype == object else np.unique(y)
        if len(uniques) <= 50:
            class_names = [str(u) for u in uniques]
    numeric_bad = []
    import pandas as pd

    for c in features.columns:
        col = features[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            if np.isinf(col.to_numpy(dtype=float, na_value=np.nan)).any():
                numeric_bad.append(c)
    if numeric_bad:
        raise StudioError(f"column(s) {', '.join(numeric_bad[:5])} in {name!r} contain infinite values; replace them")
    features = features.reset_index(drop=True)
    x, categorical = frame_to_x(features)
    return Dataset(
        kind="tabular", x=x, y=y, feature_names=[str(c) for c in features.columns], label=label,
        class_names=class_names, categorical=categorical, frame=features, name=name,
    )
