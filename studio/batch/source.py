"""What a batch run reads: a table (CSV, Parquet, a folder of Parquet parts) or an image folder, by row ranges.

The driver plans a :class:`Source` from the files' metadata only (Parquet
footers, a directory listing); each Ray worker then reads just the rows of the
partition it explains (:meth:`Source.read`). A CSV file is converted once to
Parquet beside the results (``<out>/.input/``), as Parquet can be read by row
range and CSV cannot without scanning from the start.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from studio.errors import StudioError

CSV_SUFFIXES = (".csv", ".tsv", ".txt")


@dataclass
class Source:
    """A dataset planned for batch explanation.

    Attributes
    ----------
    kind : {"tabular", "image"}
    path : str
        The file or folder the user gave.
    files : list of str
        Tables: Parquet files read in this order (rows numbered across them).
        Images: every image file, in :func:`studio.data.images.load_folder`'s order.
    counts : list of int
        Rows in each Parquet file (tables).
    classes : list of str
        Image class folders, sorted (images).
    label : str or None
        The label column asked for (tables; None: found per
        :func:`studio.data.tabular.label_column`).
    sha256 : str
        Over the source files' names and bytes, in order.
    """

    kind: str
    path: str
    files: list
    counts: list = field(default_factory=list)
    classes: list = field(default_factory=list)
    label: str | None = None
    sha256: str = ""

    @property
    def n_rows(self) -> int:
        return int(sum(self.counts)) if self.kind == "tabular" else len(self.files)

    def describe(self) -> dict:
        """The manifest's ``data`` block."""
        return {"path": self.path, "kind": self.kind, "rows": self.n_rows, "sha256": self.sha256, "label": self.label,
                "files": [Path(f).name for f in self.files] if self.kind == "tabular" else len(self.files)}

    # ---- reading, in the workers --------------------------------------------------------------------
    def frame(self, start: int, stop: int):
        """Rows ``[start, stop)`` of a table as a pandas DataFrame (only the row groups that hold them are read)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        pieces, offset = [], 0
        for path, count in zip(self.files, self.counts):
            lo, hi = max(start - offset, 0), min(stop - offset, count)
            if lo < hi:
                pf = pq.ParquetFile(path)
                groups, first, seen = [], None, 0
                for g in range(pf.metadata.num_row_groups):
                    n = pf.metadata.row_group(g).num_rows
                    if seen + n > lo and seen < hi:
                        groups.append(g)
                        first = seen if first is None else first
                    seen += n
                table = pf.read_row_groups(groups)
                pieces.append(table.slice(lo - first, hi - lo))
            offset += count
        table = pa.concat_tables(pieces, promote_options="permissive") if len(pieces) > 1 else pieces[0]
        return table.to_pandas()

    def rows(self, row_ids):
        """Rows ``row_ids`` (sorted) of a table as a DataFrame, reading one range per touched row group."""
        import pandas as pd

        row_ids = np.asarray(row_ids, dtype=np.int64)
        frames = []
        bounds = np.cumsum([0] + list(self.counts))
        for i in range(len(self.files)):
            inside = row_ids[(row_ids >= bounds[i]) & (row_ids < bounds[i + 1])]
            if inside.size:
                part = self.frame(int(inside[0]), int(inside[-1]) + 1)
                frames.append(part.iloc[inside - inside[0]])
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)

    def dataset(self, start: int, stop: int, feature_names=None):
        """Rows ``[start, stop)`` as a studio Dataset (tables: label found as ``studio.load_dataset`` does)."""
        if self.kind == "image":
            return self.images(start, stop)
        from studio.data.tabular import table_dataset

        return table_dataset(self.frame(start, stop), name=Path(self.path).name, label=self.label,
                             feature_names=feature_names)

    def images(self, start: int, stop: int):
        """Images ``[start, stop)`` decoded as :func:`studio.data.images.load_folder` decodes the whole folder."""
        from studio.data import Dataset
        from studio.data.images import decode_image

        root = Path(self.path)
        arrays, names, labels = [], [], []
        for f in self.files[start:stop]:
            rel = PurePosixPath(Path(f).relative_to(root).as_posix())
            arrays.append(decode_image(Path(f).read_bytes(), str(rel)))  # (C, H, W) float32 in [0, 1]
            names.append(str(rel))
            labels.append(self.classes.index(rel.parts[0]))
        channels = max(a.shape[0] for a in arrays)
        if len({a.shape[1:] for a in arrays}) > 1:
            raise StudioError(f"images in {root.name!r} differ in size; resize them to one size")
        x = np.stack([np.broadcast_to(a, (channels,) + a.shape[1:]) for a in arrays]).astype(np.float32)  # (n, C, H, W)
        return Dataset(kind="image", x=x, y=np.asarray(labels, dtype=np.int64), label="class",
                       class_names=list(self.classes), names=names, name=root.name)


def _sha256_files(paths, root: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).relative_to(root).as_posix().encode() + b"\0" if root.is_dir() else Path(p).name.encode() + b"\0")
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _parquet_counts(paths) -> list:
    import pyarrow.parquet as pq

    counts = []
    for p in paths:
        try:
            counts.append(int(pq.ParquetFile(p).metadata.num_rows))
        except Exception as exc:  # noqa: BLE001 -- any unreadable footer is one message
            raise StudioError(f"{Path(p).name!r} is not a readable Parquet file ({str(exc)[:120]}); check the file") from None
    return counts


def _natural(path: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def open_source(data, label: str | None, staging: Path) -> Source:
    """Plan ``data`` for a batch run from its metadata.

    Parameters
    ----------
    data : str or Path
        A CSV or Parquet file, a folder of Parquet parts (read in natural
        name order: ``part-2`` before ``part-10``), or an image folder of
        class folders.
    label : str, optional
        The label column of a table.
    staging : Path
        Where a CSV is converted to Parquet (``<out>/.input``).

    Raises
    ------
    StudioError
        A missing path, an unknown type, an unreadable file or a CSV over the
        studio's row and size limits (as ``studio.load_dataset``).
    """
    from studio.data.images import IMAGE_SUFFIXES

    path = Path(data)
    if path.is_dir():
        parquet = sorted((p for p in path.iterdir() if p.suffix.lower() == ".parquet" and p.is_file()), key=_natural)
        if parquet:
            return Source("tabular", str(path), [str(p) for p in parquet], _parquet_counts(parquet), label=label,
                          sha256=_sha256_files(parquet, path))
        files = sorted(p for p in path.rglob("*")
                       if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_symlink() and p.is_file())
        rel = [PurePosixPath(p.relative_to(path).as_posix()) for p in files]
        if not files or any(len(r.parts) == 1 for r in rel):
            raise StudioError(f"{path.name!r} holds neither Parquet parts nor class folders of images; "
                              "give a CSV or Parquet file, a folder of .parquet parts, or a folder of class folders")
        return Source("image", str(path), [str(p) for p in files], classes=sorted({r.parts[0] for r in rel}),
                      sha256=_sha256_files(files, path))
    if not path.is_file():
        raise StudioError(f"dataset {str(path)!r} was not found; check the path")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return Source("tabular", str(path), [str(path)], _parquet_counts([path]), label=label,
                      sha256=_sha256_files([path], path))
    if suffix in CSV_SUFFIXES:
        digest = _sha256_files([path], path)
        staged = staging / f"{path.stem}-{digest[:16]}.parquet"
        if not staged.is_file():
            _stage_csv(path, staged)
        return Source("tabular", str(path), [str(staged)], _parquet_counts([staged]), label=label, sha256=digest)
    raise StudioError(f"batch reads CSV, Parquet, a folder of Parquet parts or an image folder; {path.name!r} is none "
                      "of these (convert it to Parquet)")


def _stage_csv(path: Path, staged: Path) -> None:
    """Parse a CSV with the studio's bounded reader and keep it as Parquet (written to a temp name, then renamed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from studio.data import _check_size
    from studio.data.tabular import read_table

    _check_size(path.stat().st_size, path.name)
    frame = read_table(path.read_bytes(), path.name)
    staged.parent.mkdir(parents=True, exist_ok=True)
    tmp = staged.with_name(f".{staged.name}.tmp")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp, row_group_size=10_000)
    tmp.replace(staged)
