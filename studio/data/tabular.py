"""CSV and Parquet tables.

Work is bounded before it is done: a Parquet file's row count, column count
and uncompressed size come from its footer (``pyarrow.parquet.ParquetFile``
metadata) and are checked before any data page is read; a CSV's header line
is found within ``STUDIO_MAX_HEADER_BYTES``, its column count and the length
of each name are checked with Python's ``csv`` module before pandas parses,
and pandas reads at most ``STUDIO_MAX_ROWS + 1`` rows.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np

from studio.data.dataset import Dataset, limit
from studio.errors import StudioError

DEFAULT_LABELS = ("target", "label", "y", "class")
MAX_ROWS = 2_000_000
MAX_COLUMNS = 100_000
MAX_HEADER_BYTES = 16 * 2**20
MAX_NAME_BYTES = 2**20


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

    categorical = [str(c) for c, dtype in zip(frame.columns, frame.dtypes)  # dtypes, not frame[c]: O(1) per column
                   if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)]
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
    max_rows = limit("STUDIO_MAX_ROWS", MAX_ROWS)
    try:
        if parquet:
            frame = _read_parquet(data, name, max_rows)
        else:
            if b"\x00" in data[:65536]:
                raise StudioError(f"dataset {name!r} is binary, not a CSV text file; export the table as CSV (UTF-8)")
            header, delimiter = _csv_header(data, name)
            if header is not None:
                _refuse_duplicates(header, name)  # from the header alone, before pandas parses
            frame = pd.read_csv(io.BytesIO(data), sep=delimiter, nrows=max_rows + 1)
            if frame.shape[1] > 1000:
                # pandas' parser returns one block per column, and every later frame operation then costs
                # ~0.1 ms a column (seconds at 10^5 columns); a copy consolidates them into one block per dtype
                frame = frame.copy()
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
    _refuse_duplicates(header if header is not None and len(header) == frame.shape[1] else [str(c) for c in frame.columns], name)
    frame.columns = [str(c) for c in frame.columns]
    if not parquet and frame.shape[1] == 1:
        for sep, word in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if sep in frame.columns[0]:
                raise StudioError(
                    f"dataset {name!r} was read as a single column {frame.columns[0][:60]!r}: it looks separated by {word} "
                    "with decimal commas; save it as a comma-separated CSV with '.' as the decimal mark"
                )
    if len(frame) > max_rows:
        raise _too_many_rows(name, f"more than {max_rows}" if not parquet else str(len(frame)), max_rows)
    return frame


def _refuse_duplicates(names: list, name: str) -> None:
    """Refuse repeated column names: one ``Counter`` pass, O(n) (a ``list.count`` per name was quadratic)."""
    dupes = sorted(c for c, n in Counter(names).items() if n > 1)
    if dupes:
        raise StudioError(
            f"dataset {name!r} has duplicate column names ({', '.join(repr(d[:60]) for d in dupes[:5])}); "
            "give every column a unique name"
        )


def _too_many_rows(name: str, rows: str, max_rows: int) -> StudioError:
    return StudioError(
        f"dataset {name!r} has {rows} rows, over the limit of {max_rows}; "
        "sample it, or raise the limit with STUDIO_MAX_ROWS"
    )


def _too_many_columns(name: str, columns: int, max_columns: int) -> StudioError:
    return StudioError(
        f"dataset {name!r} has {columns} columns, over the limit of {max_columns}; "
        "select the columns the model uses, or raise STUDIO_MAX_COLUMNS"
    )


def _read_parquet(data: bytes, name: str, max_rows: int):
    """A Parquet file as a DataFrame, refused from its footer before any data page is read.

    The footer declares the row count (file and row groups), the column
    count and each row group's size; over ``STUDIO_MAX_ROWS``,
    ``STUDIO_MAX_COLUMNS`` or ``STUDIO_MAX_DECODED_BYTES`` the file is
    refused without reading its data (a few MB can declare 10^9 rows). The
    decoded size is estimated as the larger of the row groups' encoded
    sizes and 8 bytes a cell (what the feature matrix takes): run-length and
    dictionary encodings make a column of one repeated value almost free on
    disk but not in memory.
    """
    import pyarrow.parquet as pq

    from studio.data.images import MAX_DECODED_BYTES

    pf = pq.ParquetFile(io.BytesIO(data))
    meta = pf.metadata
    max_columns = limit("STUDIO_MAX_COLUMNS", MAX_COLUMNS)
    max_bytes = limit("STUDIO_MAX_DECODED_BYTES", MAX_DECODED_BYTES)
    if meta.num_rows < 0:
        raise StudioError(f"dataset {name!r} declares a negative row count; the Parquet file is damaged")
    if meta.num_rows > max_rows:
        raise _too_many_rows(name, str(meta.num_rows), max_rows)
    if meta.num_columns > max_columns:
        raise _too_many_columns(name, meta.num_columns, max_columns)
    if meta.num_row_groups > max_rows + 1:  # a row group holds at least one row
        raise _too_many_rows(name, f"{meta.num_row_groups} row groups of", max_rows)
    rows = size = 0
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        rows += max(group.num_rows, 0)
        size += max(group.total_byte_size, 8 * max(group.num_rows, 0) * meta.num_columns, 0)
        if rows > max_rows:
            raise _too_many_rows(name, f"at least {rows}", max_rows)
        if size > max_bytes:
            raise StudioError(
                f"dataset {name!r} uncompresses to more than {max_bytes} bytes, over the limit; "
                "sample it, or raise STUDIO_MAX_DECODED_BYTES"
            )
    return pf.read(use_pandas_metadata=True).to_pandas()


def _csv_header(data: bytes, name: str):
    """(column names as written in the header, delimiter), checked before pandas parses anything.

    pandas renames duplicated names to ``a.1``, so duplicates are found here.
    The delimiter is a comma when the start of the file has one, else the
    one of ``; tab |`` the header uses. Refused: a header line longer than
    ``STUDIO_MAX_HEADER_BYTES`` (default 16 MiB), more columns than
    ``STUDIO_MAX_COLUMNS`` (default 100,000; a line of millions of commas),
    a column name longer than ``STUDIO_MAX_NAME_BYTES`` (default 1 MiB).
    """
    import csv

    max_header = limit("STUDIO_MAX_HEADER_BYTES", MAX_HEADER_BYTES)
    max_columns = limit("STUDIO_MAX_COLUMNS", MAX_COLUMNS)
    max_name = limit("STUDIO_MAX_NAME_BYTES", MAX_NAME_BYTES)
    end = data.find(b"\n", 0, max_header + 1)  # a bounded peek: never scans past the limit
    if end < 0:
        if len(data) > max_header:
            raise StudioError(
                f"dataset {name!r} has a header line longer than {max_header} bytes; "
                "check the file is a CSV with one header line, or raise STUDIO_MAX_HEADER_BYTES"
            )
        end = len(data)
    first = data[:end].rstrip(b"\r")
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
    if text.count(delimiter) + 1 > max_columns and '"' not in text:  # exact without quotes; checked before parsing
        raise _too_many_columns(name, text.count(delimiter) + 1, max_columns)
    previous = csv.field_size_limit()
    csv.field_size_limit(max_name)
    try:
        header = next(csv.reader([text], delimiter=delimiter), [])
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise StudioError(
                f"dataset {name!r} has a column name longer than {max_name} characters; "
                "shorten the header, or raise STUDIO_MAX_NAME_BYTES"
            ) from None
        header = None
    finally:
        csv.field_size_limit(previous)
    if header is not None and len(header) > max_columns:
        raise _too_many_columns(name, len(header), max_columns)
    return header, delimiter


def label_column(columns, feature_names=None) -> str | None:
    """The label column of a table whose label was not named: the one rule for the API, the CLI and the app.

    ``target``, ``label``, ``y`` or ``class`` (the first present), else,
    when the model's features are known, the one column the model does not
    use, else None (no label).

    Parameters
    ----------
    columns : list of str
        The table's columns.
    feature_names : list of str, optional
        The model's input columns.
    """
    found = [c for c in DEFAULT_LABELS if c in columns]
    if found:
        return found[0]
    if feature_names is not None:
        used = set(feature_names)
        rest = [c for c in columns if c not in used]
        if len(rest) == 1 and len(columns) == len(used) + 1:
            return rest[0]
    return None


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
        label = label_column(columns, feature_names)
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
    import pandas as pd

    # one block for every numeric column (a loop of frame[c] costs ~0.1 ms a column: seconds at 10^5 columns)
    numeric = [i for i, dtype in enumerate(features.dtypes)
               if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)]
    numeric_bad = []
    if numeric:
        block = features.iloc[:, numeric].to_numpy(dtype=float, na_value=np.nan)  # (n_rows, n_numeric)
        numeric_bad = [str(features.columns[numeric[j]]) for j in np.flatnonzero(np.isinf(block).any(axis=0))]
    if numeric_bad:
        raise StudioError(f"column(s) {', '.join(numeric_bad[:5])} in {name!r} contain infinite values; replace them")
    features = features.reset_index(drop=True)
    x, categorical = frame_to_x(features)
    return Dataset(
        kind="tabular", x=x, y=y, feature_names=[str(c) for c in features.columns], label=label,
        class_names=class_names, categorical=categorical, frame=features, name=name,
    )
