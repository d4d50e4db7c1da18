"""Tabular and image datasets."""

from __future__ import annotations

from pathlib import Path

from studio.data.dataset import Dataset
from studio.errors import StudioError

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")
MAX_DATA_BYTES = 2 * 2**30


def load_dataset(source, label: str | None = None, name: str | None = None, feature_names=None) -> Dataset:
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
        data = path.read_bytes()
    suffix = Path(name).suffix.lower()
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


def _check_size(size: int, name: str) -> None:
    from studio.data.dataset import limit

    max_bytes = limit("STUDIO_MAX_DATA_BYTES", MAX_DATA_BYTES)
    if size > max_bytes:
        raise StudioError(
            f"dataset {name!r} is {size} bytes, over the limit of {max_bytes} bytes; "
            "sample it, or raise the limit with the environment variable STUDIO_MAX_DATA_BYTES"
        )


__all__ = ["Dataset", "load_dataset"]
