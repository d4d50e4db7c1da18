"""Large tables: each Data page operation by DuckDB over Parquet (``studio.data.large``) against pandas on the same file.

A Parquet file of 20 numeric columns (normal, rounded to 0.01) and a 0/1 label is written here with pyarrow in
chunks: 5,000,000 rows at full size, 1,000,000 quick, 100,000 tiny. Each operation is timed both ways on the same
file, the DuckDB side with its results memo cleared each time (so each figure is a first answer, as a new file
gets):

- open: DuckDB's row count, schema and the stated 50,000-row sample, against ``pandas.read_parquet`` of the whole
  file (what the in-memory path does before anything can be shown);
- summaries: count, missing, distinct, min, mean, max, skewness, quartiles and 20-bin histograms of every column,
  against the in-memory path's own ``profile_table`` + ``histogram_frame`` (pandas already holding the frame);
- one column: a 40-bin histogram; filter: the count of rows meeting two conditions, and a seeded pick of 1,000
  matching rows; each against pandas on the frame already in memory.

Rows ``... / pandas`` are informative ratios (pandas holds the whole table in memory, DuckDB reads the file each
time); rows ``... / 3 s budget`` are each DuckDB time against the app's 3 s per interaction (goal <= 1). The
open row's note gives the memory each side holds afterwards.

Run alone: ``python -m benchmarks --only large-tables``.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import Row, not_measured

SUITE = "large-tables"
ROWS = {"tiny": 100_000, "quick": 1_000_000, "full": 5_000_000}
REPEATS = {"tiny": 1, "quick": 2, "full": 2}
COLUMNS = 20
BUDGET_S = 3.0


def make_table(path, rows: int, columns: int = COLUMNS, chunk: int = 1_000_000, seed: int = 0) -> float:
    """Write the benchmark table; returns the seconds it took."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    names = [f"f{i}" for i in range(columns)]
    schema = pa.schema([(n, pa.float64()) for n in names] + [("target", pa.int8())])
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for first in range(0, rows, chunk):
            n = min(chunk, rows - first)
            x = np.round(rng.normal(size=(n, columns)), 2)
            y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=n) > 0).astype(np.int8)
            writer.write_table(pa.table([*(pa.array(x[:, j]) for j in range(columns)), pa.array(y)], schema=schema))
    return time.perf_counter() - start


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run(sizes, device="cpu", methods=None) -> list:
    import tempfile
    from pathlib import Path

    if methods:
        return []
    try:
        import duckdb  # noqa: F401
    except ImportError:
        return [not_measured(SUITE, "large tables", "duckdb is not installed (pip install -r requirements.txt)")]
    import pandas as pd

    from studio.charts.data import histogram_frame
    from studio.data.large import LargeTable
    from studio.data.profile import profile_table
    from studio.data.tabular import table_dataset
    from studio.evaluation import Condition, apply_conditions

    n = ROWS[sizes.name]
    repeats = REPEATS[sizes.name]
    folder = Path(tempfile.mkdtemp(prefix="studio-bench-large-"))
    path = folder / "table.parquet"
    made = make_table(path, n)
    size_mb = path.stat().st_size / 1e6
    label = f"{n:,} rows x {COLUMNS + 1} columns"
    conds = [Condition("f0", ">", "1.5"), Condition("target", "==", "1")]

    table = LargeTable(path, path.name, "bench")

    def fresh(fn):
        def call():
            table._memo.clear()
            return fn()
        return call

    held = []
    ops = {}

    def open_table():  # the table and its sample stay held, as the app holds them
        opened = LargeTable(path, path.name, "bench")
        held[:] = [opened, opened.sample_frame()]

    ops["open"] = (_median(open_table, repeats), None)
    duck_bytes = held[1].memory_usage(deep=True).sum() + held[0]._rows(
        "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory()")[0][0]
    ops["summaries"] = (_median(fresh(table.summary), repeats), None)
    ops["one column, 40 bins"] = (_median(fresh(lambda: table.histogram("f3", 40)), repeats), None)
    ops["filter count"] = (_median(lambda: table.count(conds), repeats), None)
    ops["filter members (1,000)"] = (_median(lambda: table.members(conds), repeats), None)

    frame = None

    def read():
        nonlocal frame
        frame = pd.read_parquet(path)

    pandas = {"open": _median(read, repeats)}
    pandas_bytes = frame.memory_usage(deep=True).sum()
    data = table_dataset(frame, label="target")

    def pandas_summaries():
        profile_table(data)
        for name in data.feature_names:
            histogram_frame(data.frame[name], 20)

    pandas["summaries"] = _median(pandas_summaries, repeats)
    pandas["one column, 40 bins"] = _median(lambda: histogram_frame(frame["f3"], 40), repeats)
    pandas["filter count"] = _median(lambda: int(apply_conditions(frame, conds).sum()), repeats)
    pandas["filter members (1,000)"] = _median(
        lambda: frame[apply_conditions(frame, conds)].sample(1000, random_state=0), repeats)

    check = table.count(conds) == int(apply_conditions(frame, conds).sum())
    rows = []
    for op, (ours, _) in ops.items():
        note = (f"{label}, {size_mb:.0f} MB Parquet written in {made:.1f} s; median of {repeats}; "
                f"counts agree with pandas: {check}")
        if op == "open":
            note += (f"; memory held after opening: {duck_bytes / 1e6:.0f} MB with DuckDB (the sample's frame and "
                     f"DuckDB's buffers, duckdb_memory()) against {pandas_bytes / 1e6:.0f} MB for pandas' frame")
        rows.append(Row(SUITE, f"{op}: DuckDB / pandas ({label})", ours=ours, ref=pandas[op], ours_label="DuckDB",
                        ref_label="pandas", note=note))
        rows.append(Row(SUITE, f"{op}: DuckDB / {BUDGET_S:.0f} s budget ({label})", ours=ours, ref=BUDGET_S,
                        ours_label="DuckDB", ref_label="budget", goal=1.0, note=f"{label}; median of {repeats}"))
    return rows
