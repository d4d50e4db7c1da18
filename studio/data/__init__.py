"""Tabular and image datasets."""

from __future__ import annotations

from pathlib import Path

from studio.data.dataset import Dataset
from studio.errors import StudioError

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")
MAX_DATA_BYTES = 2 * 2**30


def load_dataset(source, label: str | None = None, name: str | None = None, feature_names=None,
                 large_tables: bool = False) -> Dataset:
    """Load a dataset from a path (file or image folder) or bytes.

    Parameters
    ----------
    source : str, Path or bytes
        CSV, Parquet, ``.zip`` of class folders, a class-folder directory,
        or ``.npz`` with ``x`` and optional ``y``.
    label : str, optional
        Label column of a table. Default: ``target``, ``label``, ``y`` or
        ``class``, else the one column not among ``feature_names``.
    name : str, optional
        File name when ``source`` is bytes.
    feature_names : list of str, optional
        The model's features, to find the label column.
    large_tables : bool
        Open a table over ``STUDIO_LARGE_ROWS`` rows (default 500,000) with
        DuckDB over Parquet instead of reading it (:mod:`studio.data.large`):
        the Dataset is then a stated uniform sample and ``.large`` answers
        counts, summaries and filters over every row. Off by default: a
        table is read whole, up to ``STUDIO_MAX_ROWS``.

    Returns
    -------
    Dataset
    """
    from studio.data.images import load_folder, load_npz, load_zip
    from studio.data.tabular import read_table, table_dataset

    if isinstance(source, (bytes, bytearray)):
        if not name:
            raise StudioError("a dataset given as bytes needs its file name")
        data = bytes(source)
        _check_size(len(data), name)
    else:
        path = Path(source)
        name = name or path.name
        if path.is_dir():
            return load_folder(path)
        if not path.is_file():
            raise StudioError(f"dataset {str(path)!r} was not found; check the path")
        _check_size(path.stat().st_size, name)
        if large_tables and path.suffix.lower() == ".parquet":
            large = _large(None, path, name, label, feature_names)
            if large is not None:
                return large
        data = path.read_bytes()
    suffix = Path(name).suffix.lower()
    if large_tables and suffix in TABLE_SUFFIXES:
        large = _large(data, None, name, label, feature_names)
        if large is not None:
            return large
    try:
        if suffix == ".zip":
            return load_zip(data, name)
        if suffix == ".npz":
            return load_npz(data, name)
        if suffix in TABLE_SUFFIXES:
            return table_dataset(read_table(data, name), name=name, label=label, feature_names=feature_names)
    except MemoryError:
        raise StudioError(f"dataset {name!r} needs more memory than is free to load; load a smaller sample") from None
    except RecursionError:
        raise StudioError(f"dataset {name!r} is nested too deeply to load; the file is damaged or crafted") from None
    raise StudioError(
        f"dataset {name!r} has an unknown type; accepted: CSV, Parquet, .zip of class folders, .npz, or an image folder"
    )


def _large(data, path, name, label, feature_names):
    """The DuckDB-backed Dataset of a table over the large-table threshold, or None for a smaller table."""
    from studio.data import large

    if data is not None and (Path(name).suffix.lower() == ".parquet" or data[:4] == b"PAR1"):
        rows = large.declared_rows(data=data)
    elif data is not None:
        rows = large.csv_rows_at_least(data)
    else:
        rows = large.declared_rows(path=path)
    if rows is None or rows <= large.large_threshold():
        return None
    try:
        table = large.open_table(data, path, name)
    except MemoryError:
        raise StudioError(f"dataset {name!r} needs more memory than is free to open; load a smaller sample") from None
    if table.n_rows <= large.large_threshold():  # a CSV whose lines were not all rows
        return None
    return large.large_dataset(table, label=label, feature_names=feature_names)


def _check_size(size: int, name: str) -> None:
    from studio.data.dataset import limit

    max_bytes = limit("STUDIO_MAX_DATA_BYTES", MAX_DATA_BYTES)
    if size > max_bytes:
        raise StudioError(
            f"dataset {name!r} is {size} bytes, over the limit of {max_bytes} bytes; "
            "sample it, or raise the limit with the environment variable STUDIO_MAX_DATA_BYTES"
        )


__all__ = ["Dataset", "load_dataset"]
