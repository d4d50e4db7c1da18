"""Tables of millions of rows, served by DuckDB over Parquet instead of a pandas copy.

A table over ``STUDIO_LARGE_ROWS`` rows (default 500,000), when the caller
accepts large tables (the app does; ``studio.load_dataset`` does when asked
with ``large_tables=True``), is not read into memory. It is opened as a
:class:`LargeTable`: DuckDB (https://duckdb.org) scans the Parquet file for
the row count, the schema, per-column summaries, histograms, label counts and
filtered counts, all in SQL over every row; a uniform sample of
``STUDIO_SAMPLE_ROWS`` rows (default 50,000, seed 0, drawn with numpy's
``default_rng(seed).choice`` without replacement and read back by row
number) is the :class:`~studio.data.Dataset` that charts, predictions and
explainers use, and every page says so.

A CSV over the threshold is converted once to Parquet in the cache folder
(``$STUDIO_CACHE_DIR/tables/<sha256>.parquet``) by DuckDB's CSV reader; an
uploaded Parquet file is written there once too, as DuckDB reads files.

Memory is bounded: each DuckDB connection has ``memory_limit`` =
``STUDIO_DUCKDB_MEMORY`` (default ``1GB``; DuckDB spills or fails past it,
it never grows the process without bound) and ``threads`` =
``STUDIO_DUCKDB_THREADS`` (default 2). User text never enters SQL as text:
column names are quoted identifiers (:func:`quote`), values are bound
parameters.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from studio.data.dataset import limit
from studio.errors import StudioError
from studio.evaluation import Condition

LARGE_ROWS = 500_000
MAX_LARGE_ROWS = 100_000_000
SAMPLE_ROWS = 50_000
SEED = 0
KEEP_TABLES = 4
"""Converted or uploaded tables kept in the cache folder (least recently used removed first)."""
HIST_BINS = 20
"""Bins of the histograms counted with the summary (the Data page's feature table)."""
MEMBERS = 1_000
"""Sampled members returned for a filter."""
POSITION = "__studio_position__"
"""Row position column added to a frame handed to DuckDB (scans in parallel keep no order)."""
ROW = "file_row_number"
"""DuckDB's row number column (0-based position in the file)."""


def quote(name) -> str:
    """``name`` as a DuckDB quoted identifier: any text, including quotes and semicolons, stays one name."""
    return '"' + str(name).replace('"', '""') + '"'


def _literal(text: str) -> str:
    """A path as an SQL string literal (DuckDB's table functions take no bound parameters in a view)."""
    return "'" + str(text).replace("'", "''") + "'"


def large_threshold() -> int:
    return limit("STUDIO_LARGE_ROWS", LARGE_ROWS)


def tables_dir() -> Path:
    from studio.cache import default_dir

    folder = default_dir() / "tables"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def _keep_few(folder: Path, keep: int = KEEP_TABLES) -> None:
    files = sorted((p for p in folder.glob("*.parquet") if p.is_file() and not p.is_symlink()),
                   key=lambda p: p.stat().st_mtime)
    for old in files[:-keep] if len(files) > keep else []:
        old.unlink(missing_ok=True)


def _connect():
    import duckdb

    memory = os.environ.get("STUDIO_DUCKDB_MEMORY", "1GB")
    threads = limit("STUDIO_DUCKDB_THREADS", 2)
    try:
        return duckdb.connect(":memory:", config={"memory_limit": memory, "threads": threads})
    except duckdb.Error as exc:
        raise StudioError(f"DuckDB refused its settings ({str(exc).splitlines()[0]}); "
                          "check STUDIO_DUCKDB_MEMORY (e.g. 1GB) and STUDIO_DUCKDB_THREADS") from None


def declared_rows(data: bytes | None = None, path: Path | None = None) -> int | None:
    """Rows a Parquet file declares in its footer (None when it is not Parquet or cannot be read)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return int(pq.ParquetFile(io.BytesIO(data) if data is not None else str(path)).metadata.num_rows)
    except (pa.ArrowException, OSError, ValueError):  # not Parquet, or damaged: the ordinary reader says what is wrong
        return None


def csv_rows_at_least(data: bytes) -> int:
    """Line count of CSV bytes less the header (a fast upper bound on rows, exact without quoted newlines)."""
    return max(data.count(b"\n") - (0 if data.endswith(b"\n") else -1) - 1, 0)


class LargeTable:
    """A Parquet file queried by DuckDB: row count, schema, summaries, histograms, filters.

    Parameters
    ----------
    path : Path
        The Parquet file (never modified).
    name : str
        File name for display.
    fingerprint : str
        sha256 of the file's bytes.

    Attributes
    ----------
    n_rows : int
        Rows in the file.
    columns : list of str
    types : dict
        Column name to DuckDB type name.
    sample_rows, seed : int
        The stated sample: ``sample_rows`` rows drawn uniformly without
        replacement with ``numpy.random.default_rng(seed)``.

    Queries run one at a time on one connection per table (a lock; DuckDB
    runs each on ``STUDIO_DUCKDB_THREADS`` threads) and their results are
    kept, so every session and rerun reuses them.
    """

    def __init__(self, path: Path, name: str, fingerprint: str):
        self.path = Path(path)
        self.name = name
        self.fingerprint = fingerprint
        self._lock = threading.Lock()
        self._con = _connect()
        self._memo: dict = {}
        self._rows(f"CREATE VIEW t AS SELECT * FROM read_parquet({_literal(self.path)}, file_row_number = true)")
        described = self._rows("DESCRIBE t")
        self.types = {row[0]: row[1] for row in described if row[0] != ROW}
        self.columns = list(self.types)
        self.n_rows = int(self._rows("SELECT count(*) FROM t")[0][0])
        self.sample_rows = min(limit("STUDIO_SAMPLE_ROWS", SAMPLE_ROWS), self.n_rows)
        self.seed = SEED

    def __repr__(self) -> str:
        return f"<LargeTable {self.name!r}: {self.n_rows} rows x {len(self.columns)} columns>"

    def _rows(self, sql: str, params=None):
        import duckdb

        with self._lock:
            try:
                return self._con.execute(sql, params or []).fetchall()
            except duckdb.Error as exc:
                raise StudioError(f"DuckDB could not read {self.name!r} ({str(exc).splitlines()[0][:200]}); "
                                  "check the file is a valid table") from None

    def _kept(self, key, compute):
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def numeric(self, column: str) -> bool:
        kind = self.types[column].upper()
        return kind in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                        "UBIGINT", "FLOAT", "DOUBLE", "REAL") or kind.startswith("DECIMAL")

    # ---- the stated sample ----------------------------------------------------------------------
    def sample_index(self) -> np.ndarray:
        """Row numbers of the stated sample, sorted, shape (sample_rows,)."""
        rng = np.random.default_rng(self.seed)
        return np.sort(rng.choice(self.n_rows, self.sample_rows, replace=False)).astype(np.int64)

    def sample_frame(self):
        """The sample's rows (every column) as a DataFrame in file order; its index is the file row number."""
        def read():
            import pyarrow as pa

            index = pa.table({"i": self.sample_index()})
            with self._lock:
                self._con.register("sample_index", index)
                try:
                    cols = ", ".join(quote(c) for c in self.columns)
                    frame = self._con.execute(
                        f"SELECT {ROW}, {cols} FROM t SEMI JOIN sample_index ON {ROW} = sample_index.i "
                        f"ORDER BY {ROW}").df()
                finally:
                    self._con.unregister("sample_index")
            return frame.set_index(ROW).rename_axis(None)
        return self._kept("sample", read)

    # ---- summaries over every row -----------------------------------------------------------------
    def summary(self):
        """Per-column statistics over every row, as :func:`studio.data.profile.profile_table` computes them.

        Returns
        -------
        pandas.DataFrame
            One row per column: feature, type, count, missing, distinct,
            min, mean, max, skew. ``distinct`` is DuckDB's HyperLogLog
            estimate (``approx_count_distinct``, a few percent off; an exact
            count hashes every value of every column). skew is the biased
            Fisher-Pearson skewness from central moments of a second pass
            (which also counts every column's 20-bin histogram). Quartiles
            are :meth:`quartiles`, per column, as they sort the column.
        """
        return self._kept("summary", self._summary)

    def _summary(self):
        import pandas as pd

        parts, numeric = [], [c for c in self.columns if self.numeric(c)]
        for c in self.columns:
            q = quote(c)
            parts += [f"count({q})", f"approx_count_distinct({q})"]
            if c in numeric:
                v = f"CAST({q} AS DOUBLE)"
                parts += [f"min({v})", f"avg({v})", f"max({v})"]
        first = self._rows(f"SELECT {', '.join(parts)} FROM t")[0]
        stats, pos = {}, 0
        for c in self.columns:
            width = 5 if c in numeric else 2
            stats[c] = first[pos:pos + width]
            pos += width
        spread = [c for c in numeric if stats[c][0] and stats[c][2] != stats[c][4]]
        # second pass, one scan for every column: central second and third moments (two-pass, as numpy) and the
        # 20-bin histograms over [min, max]
        parts, params, ranges = [], [], {}
        for c in spread:
            v = f"CAST({quote(c)} AS DOUBLE)"
            parts += [f"avg(({v} - ?) * ({v} - ?))", f"avg(({v} - ?) * ({v} - ?) * ({v} - ?))"]
            params += [float(stats[c][3])] * 5
        for c in numeric:
            lo, hi = stats[c][2], stats[c][4]
            if lo is None or not (np.isfinite(lo) and np.isfinite(hi)):
                continue
            lo, hi = (float(lo) - 0.5, float(hi) + 0.5) if lo == hi else (float(lo), float(hi))
            v = f"CAST({quote(c)} AS DOUBLE)"
            parts.append(f"histogram(least(CAST(floor(({v} - ?) * ?) AS BIGINT), ?)) FILTER (WHERE isfinite({v}))")
            params += [lo, HIST_BINS / (hi - lo), HIST_BINS - 1]
            ranges[c] = (lo, hi)
        second = iter(self._rows(f"SELECT {', '.join(parts)} FROM t", params)[0] if parts else [])
        moments = {c: (next(second), next(second)) for c in spread}
        for c, (lo, hi) in ranges.items():
            self._memo[("hist", c, HIST_BINS)] = _bins(next(second) or {}, lo, hi, HIST_BINS)
        records = []
        for c in self.columns:
            count, distinct = int(stats[c][0]), int(stats[c][1])
            rec = {"feature": str(c), "type": "numeric" if c in numeric else "categorical", "count": count,
                   "missing": self.n_rows - count, "distinct": distinct, "min": np.nan, "mean": np.nan, "max": np.nan,
                   "skew": np.nan}
            if c in numeric and count:
                _, _, lo, mean, hi = stats[c]
                m2, m3 = moments.get(c, (0.0, 0.0))
                rec.update(min=float(lo), mean=float(mean), max=float(hi),
                           skew=float(m3) / float(m2) ** 1.5 if m2 else 0.0)
                if lo == hi:
                    rec["distinct"] = 1  # exact for a constant column (the estimate can say 2)
            records.append(rec)
        return pd.DataFrame.from_records(records)

    def quartiles(self, column: str) -> tuple:
        """(p25, median, p75) of a numeric column over every row, exact (``quantile_cont``, as ``numpy.percentile``)."""
        v = f"CAST({quote(column)} AS DOUBLE)"
        got = self._kept(("quartiles", column), lambda: self._rows(
            f"SELECT quantile_cont({v}, [0.25, 0.5, 0.75]) FROM t WHERE NOT isnan({v})")[0][0])
        return tuple(float(q) for q in got) if got else (np.nan, np.nan, np.nan)

    def histogram(self, column: str, bins: int = 20):
        """Counts per bin (numbers, over [min, max] as ``numpy.histogram``) or per category (top 20), every row.

        Returns the frame :func:`studio.charts.data.histogram_frame` returns
        (start, end, count, or value, count) and whether the column is numeric.
        """
        return self._kept(("hist", column, bins), lambda: self._histogram(column, bins))

    def _histogram(self, column: str, bins: int):
        import pandas as pd

        from studio.charts.data import MAX_CATEGORIES

        if column not in self.types:
            raise StudioError(f"no column {column!r} in {self.name!r}; choose one of {', '.join(self.columns[:10])}")
        q = quote(column)
        if not self.numeric(column):
            rows = self._rows(f"SELECT CAST({q} AS VARCHAR) v, count(*) n FROM t WHERE {q} IS NOT NULL "
                              f"GROUP BY v ORDER BY n DESC, v")
            top, other = rows[:MAX_CATEGORIES], sum(n for _, n in rows[MAX_CATEGORIES:])
            frame = pd.DataFrame({"value": [str(v) for v, _ in top], "count": [int(n) for _, n in top]})
            if other:
                frame.loc[len(frame)] = ["(other)", int(other)]
            return frame, False
        v = f"CAST({q} AS DOUBLE)"
        known = self._memo.get("summary")
        lo = hi = None
        if known is not None:  # the summary's range saves a scan when it is finite
            rec = known.set_index("feature").loc[str(column)]
            if np.isfinite(rec["min"]) and np.isfinite(rec["max"]):
                lo, hi = rec["min"], rec["max"]
        if lo is None:
            lo, hi = self._rows(f"SELECT min({v}), max({v}) FROM t WHERE isfinite({v})")[0]
        if lo is None:
            return pd.DataFrame({"start": [], "end": [], "count": []}), True
        lo, hi = float(lo), float(hi)
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        norm = bins / (hi - lo)  # numpy.histogram's own arithmetic: (x - lo) * norm, the last bin closed
        rows = self._rows(f"SELECT b, count(*) FROM (SELECT least(CAST(floor(({v} - ?) * ?) AS BIGINT), ?) b FROM t "
                          f"WHERE isfinite({v})) GROUP BY b", [lo, norm, bins - 1])
        return _bins(dict(rows), lo, hi, bins)

    def distributions(self, bins: int = 20) -> dict:
        """Column name to its histogram counts (list of int), every column in one scan per kind of column."""
        return self._kept(("dists", bins), lambda: {c: [int(n) for n in self.histogram(c, bins)[0]["count"]]
                                                    for c in self.columns})

    def class_counts(self, label: str):
        """Label counts over every row: columns class, count, share (as :func:`studio.data.profile.class_counts`)."""
        import pandas as pd

        def compute():
            q = quote(label)
            rows = self._rows(f"SELECT {q}, count(*) FROM t GROUP BY {q}")
            counts = pd.Series({str(k): int(n) for k, n in rows}, dtype="int64").sort_index()
            frame = pd.DataFrame({"class": counts.index.astype(str), "count": counts.to_numpy()})
            frame["share"] = frame["count"] / max(self.n_rows, 1)
            return frame
        return self._kept(("classes", label), compute)

    # ---- filters ----------------------------------------------------------------------------------
    def where(self, conditions) -> tuple[str, list]:
        """SQL ``WHERE`` clause and its parameters for ``conditions`` on this file's columns."""
        return where_clause(conditions, self.types)

    def count(self, conditions) -> int:
        """Rows of the whole file meeting every condition."""
        clause, params = self.where(conditions)
        return int(self._rows(f"SELECT count(*) FROM t WHERE {clause}", params)[0][0])

    def members(self, conditions, k: int = MEMBERS):
        """Up to ``k`` rows meeting every condition, a seeded uniform pick (by a hash of the row number).

        The index of the returned frame is the file row number.
        """
        clause, params = self.where(conditions)
        cols = ", ".join(quote(c) for c in self.columns)
        with self._lock:
            frame = self._con.execute(
                f"SELECT {ROW}, {cols} FROM t WHERE {clause} ORDER BY hash({ROW} + ?) LIMIT ?",
                params + [self.seed, int(k)]).df()
        return frame.sort_values(ROW).set_index(ROW).rename_axis(None)


def _bins(counts: dict, lo: float, hi: float, bins: int):
    """(histogram frame with start, end, count; True) from DuckDB's {bin index: count}."""
    import pandas as pd

    edges = np.linspace(lo, hi, bins + 1)
    out = np.zeros(bins, dtype=np.int64)
    for b, n in counts.items():
        out[int(b)] = n
    return pd.DataFrame({"start": edges[:-1], "end": edges[1:], "count": out}), True


def where_clause(conditions, types: dict) -> tuple[str, list]:
    """``WHERE`` text and parameters meaning what :func:`studio.evaluation.apply_conditions` means.

    Parameters
    ----------
    conditions : list of Condition
    types : dict
        Column name to DuckDB type name.

    Column names are quoted identifiers and values bound parameters; a value
    that does not suit its column raises the same StudioError as the pandas
    path. Missing cells match ``!=`` (as pandas' ``NaN != v``) and nothing else.
    """
    from studio.evaluation import coerce_condition

    parts, params = [], []
    for cond in conditions:
        if cond.column not in types:
            raise StudioError(f"no column {cond.column!r} to filter on; choose one of {', '.join(map(str, list(types)[:10]))}")
        kind = _kind(types[cond.column])
        how, value = coerce_condition(kind, cond)
        q = quote(cond.column)
        if how == "in":
            numbers = [_number(v) for v in value]
            if kind == "number":
                wanted = [n for n in numbers if n is not None]
                if not wanted:
                    parts.append("false")
                    continue
                parts.append(f"CAST({q} AS DOUBLE) IN ({', '.join('?' * len(wanted))})")
                params += wanted
            else:  # cells written as pandas writes them (True/False), stripped, as the pandas path compares
                from studio.evaluation import _canonical

                cell = (f"CASE WHEN {q} THEN 'True' ELSE 'False' END" if kind == "bool"
                        else f"trim(CAST({q} AS VARCHAR))")
                parts.append(f"coalesce({cell} IN ({', '.join('?' * len(value))}), false)")
                params += [_canonical(v) for v in value]
            continue
        column = {"number": f"CAST({q} AS DOUBLE)", "bool": q, "text": f"CAST({q} AS VARCHAR)"}[kind]
        test = f"{column} {cond.op} ?"
        if kind == "number":
            test = f"({test} AND NOT isnan({column}))"
        if cond.op == "!=":
            test = f"({q} IS NULL OR {'isnan(' + column + ') OR ' if kind == 'number' else ''}{column} != ?)"
        parts.append(f"coalesce({test}, false)")
        params.append(value)
    return (" AND ".join(parts) or "true"), params


def _kind(duck_type: str) -> str:
    t = duck_type.upper()
    if t == "BOOLEAN":
        return "bool"
    if t in ("VARCHAR", "BLOB", "DATE", "TIMESTAMP", "UUID") or t.startswith(("TIMESTAMP", "ENUM", "STRUCT", "LIST", "MAP")):
        return "text"
    return "number"


def _number(text):
    from studio.evaluation import _canonical

    try:
        return float(_canonical(text))
    except ValueError:
        return None


def condition_mask(frame, conditions) -> np.ndarray:
    """:func:`studio.evaluation.apply_conditions` evaluated by DuckDB on ``frame`` (a DataFrame, read in place).

    Returns a boolean mask of shape (len(frame),).
    """
    import duckdb

    con = _connect()
    try:
        con.register("f", frame)
        types = {row[0]: row[1] for row in con.execute("DESCRIBE f").fetchall()}
        clause, params = where_clause(conditions, types)  # validated against the frame's own columns
        con.register("f", frame.assign(**{POSITION: np.arange(len(frame), dtype=np.int64)}))
        picked = con.execute(f"SELECT {POSITION} FROM f WHERE {clause}", params).fetchnumpy()[POSITION]
    except duckdb.Error as exc:
        raise StudioError(f"the subset could not be evaluated ({str(exc).splitlines()[0][:200]}); check its conditions") from None
    finally:
        con.close()
    mask = np.zeros(len(frame), dtype=bool)
    mask[np.asarray(picked, dtype=np.int64)] = True
    return mask


def store(data: bytes | None, path: Path | None, name: str) -> tuple[Path, str]:
    """The table as a Parquet file DuckDB can read, and the sha256 of its bytes.

    Parquet bytes are written to the cache folder once; a Parquet path is
    used where it is; a CSV is converted once (DuckDB ``read_csv``, header
    row, types sniffed) to ``tables/<sha256>.parquet``.
    """
    h = hashlib.sha256()
    if data is not None:
        h.update(data)
    else:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(2**22), b""):
                h.update(block)
    digest = h.hexdigest()
    head = data[:4] if data is not None else Path(path).read_bytes()[:4]
    parquet = Path(name).suffix.lower() == ".parquet" or head == b"PAR1"
    if parquet and path is not None:
        return Path(path), digest
    folder = tables_dir()
    target = folder / f"{digest}.parquet"
    if target.is_file():
        os.utime(target)
        return target, digest
    tmp = folder / f".tmp-{digest}-{os.getpid()}-{threading.get_ident()}"
    try:
        if parquet:
            tmp.write_bytes(data)
        else:
            source = path
            if data is not None:
                source = folder / f".tmp-{digest}.csv"
                source.write_bytes(data)
            import duckdb

            con = _connect()
            try:
                con.execute(f"COPY (SELECT * FROM read_csv({_literal(source)}, header = true)) "
                            f"TO {_literal(tmp)} (FORMAT parquet)")
            except duckdb.Error as exc:
                raise StudioError(f"dataset {name!r} could not be read as a CSV table "
                                  f"({str(exc).splitlines()[0][:200]}); check it has one header line") from None
            finally:
                con.close()
                if data is not None:
                    Path(source).unlink(missing_ok=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _keep_few(folder)
    return target, digest


def open_table(data: bytes | None, path: Path | None, name: str) -> LargeTable:
    """A :class:`LargeTable` on Parquet or CSV bytes or a path (stored first with :func:`store`)."""
    file, digest = store(data, path, name)
    table = LargeTable(file, name, digest)
    max_rows = limit("STUDIO_LARGE_MAX_ROWS", MAX_LARGE_ROWS)
    if table.n_rows > max_rows:
        raise StudioError(f"dataset {name!r} has {table.n_rows} rows, over the limit of {max_rows} for large tables; "
                          "sample it, or raise STUDIO_LARGE_MAX_ROWS")
    return table


def large_dataset(table: LargeTable, label: str | None = None, feature_names=None):
    """The :class:`~studio.data.Dataset` of a large table: its stated sample, carrying the table as ``large``."""
    from studio.data.tabular import table_dataset

    frame = table.sample_frame()
    data = table_dataset(frame.reset_index(drop=True), name=table.name, label=label, feature_names=feature_names)
    data.large = table
    data.notes = list(data.notes) + [sample_sentence(table)]
    return data


def sample_sentence(table: LargeTable) -> str:
    """What the pages say about a large table: counts over every row, charts and the model on the sample."""
    return (f"{table.name} has {table.n_rows:,} rows: DuckDB reads it in place. Counts, summaries and "
            f"histograms below use every row; predictions, metrics and explanations use a uniform sample of "
            f"{table.sample_rows:,} of {table.n_rows:,} rows (seed {table.seed}).")


def file_conditions(conditions, data, frame):
    """Model-page conditions rewritten on the file's own columns, or None when one needs the model.

    ``frame`` is :func:`studio.evaluation.predictions_frame` of the sample.
    Features keep their names (``x (feature)`` back to ``x``); ``label``
    (written as the model's class names) goes back to the file's label
    values through the pairs seen in the sample, for ``==``, ``!=`` and
    ``in`` (numbers for regression keep every operator). ``prediction``,
    ``confidence``, ``correct``, ``error`` and ``row`` need predictions,
    which exist for the sample only: None.
    """
    out = []
    features = set(data.feature_names or [])
    for cond in conditions:
        column = cond.column.removesuffix(" (feature)")
        if column in features and (column == cond.column or cond.column not in features):
            out.append(Condition(column, cond.op, cond.value))
        elif cond.column == "label" and data.label and "label" in frame:
            shown = frame["label"].to_numpy()
            if shown.dtype.kind == "f":  # regression: the label is the file's number
                out.append(Condition(data.label, cond.op, cond.value))
                continue
            if cond.op not in ("==", "!=", "in"):
                return None
            raw = {}
            for name, value in zip(shown.astype(str), np.asarray(data.y)):
                raw.setdefault(name, set()).add(value.item() if hasattr(value, "item") else value)
            items = cond.value if isinstance(cond.value, (list, tuple)) else (
                str(cond.value).split(",") if cond.op == "in" else [cond.value])
            values = sorted({str(v) for item in items for v in raw.get(str(item).strip(), ())})
            if cond.op == "!=":
                if len(values) != 1:
                    return None
                out.append(Condition(data.label, "!=", values[0]))
            else:
                out.append(Condition(data.label, "in", values) if values else Condition(data.label, "in", ["\x00"]))
        else:
            return None
    return out
