"""Section "batch": ``studio.batch`` on a local Ray against a plain loop of ``studio.explain`` over the same batches.

One held-out LightGBM model (saved by ``Booster.save_model``) and a Parquet
table; SHAP on every row, partitions of ``PARTITION_ROWS``. Measured:

- rows per second with 1 and 2 workers on a local Ray of 2 CPUs, end to end
  (actor start, model load in each sandbox, explain, write) and in the steady
  phase (between the first and the last partition written);
- the plain loop: one sandboxed model loaded once, ``studio.explain`` on each
  partition's rows read the same way, no Ray. Overhead per batch = (steady
  seconds per partition with 1 worker) - (plain seconds per partition): what
  Ray Data's scheduling, the object store and the driver's writes add;
- a projection to 64 workers from those figures (see :func:`projection`).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Row, not_measured

SUITE = "batch"
PARTITION_ROWS = 5_000
FEATURES = 10


def _files(root: Path, rows: int):
    import lightgbm as lgb
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows + 5_000, FEATURES))
    y = (x[:, 0] + x[:, 1] * x[:, 2] - x[:, 3] > 0).astype(int)
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 31, "seed": 0},
                        lgb.Dataset(x[:5_000], y[:5_000], feature_name=[f"f{i}" for i in range(FEATURES)]), 100)
    model = root / "bench.txt"
    booster.save_model(str(model))
    frame = pd.DataFrame(x[5_000:], columns=[f"f{i}" for i in range(FEATURES)])
    data = root / "bench.parquet"
    frame.to_parquet(data, row_group_size=20_000)
    return model, data


def _timed_batch(model, data, out, workers):
    import studio

    stamps = []
    begun = time.perf_counter()
    result = studio.batch(model, data, "shap", out=out, workers=workers, partition_rows=PARTITION_ROWS,
                          progress=lambda done, total: stamps.append(time.perf_counter()))
    wall = time.perf_counter() - begun
    steady = (stamps[-1] - stamps[0]) / max(len(stamps) - 1, 1)  # seconds per partition once running
    compute = float(np.median([p["seconds"] for p in result.manifest["partitions"]]))
    return result, wall, steady, compute, stamps[0] - begun


def _plain_loop(model_path, data_path, rows: int) -> tuple:
    """Seconds per partition of a loop: one sandboxed model, studio.explain on each partition's rows (no Ray)."""
    import studio
    from studio.batch.source import open_source

    source = open_source(data_path, None, Path(tempfile.mkdtemp()))
    model = studio.load_model(model_path)
    try:
        first = source.dataset(0, PARTITION_ROWS, model.feature_names)
        studio.explain(model, first, "shap", rows=list(range(len(first))), cache=False)  # warm-up
        times = []
        for start in range(0, rows, PARTITION_ROWS):
            t = time.perf_counter()
            part = source.dataset(start, min(start + PARTITION_ROWS, rows), model.feature_names)
            studio.explain(model, part, "shap", rows=list(range(len(part))), cache=False)
            times.append(time.perf_counter() - t)
    finally:
        model.close()
    return float(np.median(times)), len(times)


def projection(workers: int, n_rows: int, compute: float, overhead: float, startup: float, driver: float) -> float:
    """Projected rows per second of ``workers`` workers over ``n_rows`` rows.

    Each partition costs a worker ``compute + overhead`` seconds (the plain
    loop's ``studio.explain`` per partition, plus what Ray adds per batch); the driver
    writes partitions one at a time, ``driver`` seconds each, which caps the
    rate at ``1 / driver`` partitions per second whatever the workers; the
    actors start in parallel (``startup``, once).
    """
    parts = n_rows / PARTITION_ROWS
    per_partition = max((compute + overhead) / workers, driver)
    return n_rows / (startup + parts * per_partition)


def _driver_seconds(result) -> float:
    """Median seconds the driver spends per partition: the atomic write and its sha256 (measured again here)."""
    import hashlib

    from studio.batch.run import write_atomic

    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for p in result.files[:5]:
            payload = p.read_bytes()
            t = time.perf_counter()
            write_atomic(Path(tmp) / p.name, payload)
            hashlib.sha256(payload).hexdigest()
            times.append(time.perf_counter() - t)
    return float(np.median(times))


def run(sizes, device="cpu", methods=None) -> list:
    if methods and "shap" not in methods:
        return [not_measured(SUITE, "batch shap rows/s", "shap not among --methods")]
    if sizes.name == "tiny":
        return [not_measured(SUITE, "batch shap rows/s, 1 and 2 workers",
                             "not in the tiny smoke run: starting Ray alone takes longer than its budget; "
                             "run `python -m benchmarks --quick --only batch`")]
    from studio.batch.run import local_ray

    rows = 40_000 if sizes.name == "quick" else 100_000
    out = []
    with tempfile.TemporaryDirectory(prefix="studio-bench-batch-") as tmp:
        root = Path(tmp)
        model, data = _files(root, rows)
        plain, n_plain = _plain_loop(model, data, rows)
        with local_ray(2):
            runs = {w: _timed_batch(model, data, root / f"out{w}", w) for w in (1, 2)}
        result1, wall1, steady1, compute1, first1 = runs[1]
        _, wall2, steady2, _, first2 = runs[2]
        driver = _driver_seconds(result1)
    parts = rows // PARTITION_ROWS
    out.append(Row(SUITE, f"batch shap, {rows:,} rows, end to end: rows/s 2 workers / 1 worker", rows / wall2, rows / wall1,
                   ours_label="2 workers rows/s", ref_label="1 worker rows/s", unit="",
                   note=f"wall {wall1:.1f} s (1 worker) and {wall2:.1f} s (2 workers) on a local Ray of 2 CPUs, including "
                        f"actor start and the model's load in each sandbox (first partition after {first1:.1f} s / "
                        f"{first2:.1f} s); {parts} partitions of {PARTITION_ROWS:,} rows"))
    out.append(Row(SUITE, "batch shap steady phase: rows/s 2 workers / 1 worker", PARTITION_ROWS / steady2,
                   PARTITION_ROWS / steady1, ours_label="2 workers rows/s", ref_label="1 worker rows/s", unit="",
                   note=f"between the first and the last partition written: {steady1:.3f} s per partition with 1 worker, "
                        f"{steady2:.3f} s with 2 (2 cores shared with the sandbox workers and the driver)"))
    overhead = max(steady1 - plain, 0.0)
    out.append(Row(SUITE, "batch per partition (1 worker, steady) / plain studio.explain loop", steady1, plain,
                   ours_label="batch s/partition", ref_label="plain loop s/partition",
                   note=f"plain loop: one sandboxed model, studio.explain on each of {n_plain} partitions read the same "
                        f"way, no Ray; overhead per batch {overhead * 1000:.0f} ms (scheduling, object store, the "
                        f"driver's write {driver * 1000:.1f} ms); compute inside the actor {compute1:.3f} s (median)"))
    startup = max(first1 - steady1, 0.0)  # until the first partition, less one partition's work
    for n in (64,):
        projected = projection(n, 5_000_000, plain, overhead, startup, driver)
        bound = PARTITION_ROWS / driver
        out.append(Row(SUITE, f"projection: {n} workers, 5,000,000 rows, rows/s / 1 worker rows/s",
                       projected, PARTITION_ROWS / steady1, ours_label=f"{n} workers rows/s (projected)",
                       ref_label="1 worker rows/s (measured)", unit="",
                       note=f"on paper: 5,000,000 / (startup {startup:.1f} s + {5_000_000 // PARTITION_ROWS} partitions x "
                            f"max(({plain:.3f} s explain + {overhead:.3f} s Ray overhead per batch) / {n}, driver write "
                            f"{driver * 1000:.1f} ms)); the driver's serial write caps it at {bound:,.0f} rows/s; assumes "
                            f"{n} CPUs free for the actors and their sandbox workers, the data readable from every node, "
                            "and the start-up measured here (actors start in parallel)"))
    return out
