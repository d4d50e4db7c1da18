"""The Ray side of a batch run: one actor per worker, the model loaded once, one partition per call.

:class:`PartitionExplainer` is the callable class handed to Ray Data's
``map_batches`` (Ray's batch inference pattern): ``__init__`` takes the
run's shipment from the object store once and opens the model with
:func:`studio.load_model` under the same sandbox as the app (the actor never
runs the model's code itself), ``__call__`` explains each partition
descriptor it is given and returns the partition as Parquet bytes. Errors come
back as data (an ``error`` column), so the driver stops with the model's or
the method's one sentence rather than a Ray traceback.
"""

from __future__ import annotations

import hashlib
import io
import json
import time

import numpy as np

from studio.errors import StudioError

REFERENCE_PARAMS = {"shap": "background", "lime": "max_rows", "anchors": "max_rows"}
"""Tabular methods that draw a seeded sample of the dataset's rows (``sample_rows(len(data), k, seed)``), and the
parameter giving its size. A batch run gives them the sample a whole-dataset ``studio.explain`` would draw."""


def partition_seed(seed: int, index: int) -> int:
    """The seed partition ``index`` is explained with: a hash of the run's seed and the partition, in [0, 2**31)."""
    digest = hashlib.sha256(f"studio.batch:{int(seed)}:{int(index)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2**31


def reference_positions(n_total: int, k: int, seed: int) -> np.ndarray:
    """Where the explainer will sample its ``k`` reference rows in a dataset of ``n_total`` rows (sorted)."""
    from studio.explainers.tabular_utils import sample_rows

    return sample_rows(n_total, k, seed)


def compose(reference, part, positions, k: int, seed: int):
    """A frame in which the explainer's seeded sample lands exactly on ``reference``, and the rows to explain.

    ``studio.explain`` on a whole dataset of N rows samples its reference
    rows as ``sample_rows(N, k, seed)``. Here the dataset is the reference
    rows (drawn from the whole dataset with the run's seed) interleaved with
    the partition so that ``sample_rows(len, k, partition_seed)`` picks
    exactly them, in order.

    Parameters
    ----------
    reference : DataFrame of shape (k, n_columns)
    part : DataFrame of shape (n, n_columns)
    positions : ndarray of int
        Rows of ``part`` to explain.

    Returns
    -------
    frame : DataFrame of shape (k + n, n_columns)
    rows : ndarray of int
        Where ``part.iloc[positions]`` lies in ``frame``.
    """
    import pandas as pd

    total = k + len(part)
    ref_at = reference_positions(total, k, seed)
    others = np.setdiff1d(np.arange(total), ref_at)  # (n,) where the partition's rows go, in order
    order = np.empty(total, dtype=np.int64)
    order[ref_at] = np.arange(k)
    order[others] = k + np.arange(len(part))
    both = pd.concat([reference.reset_index(drop=True), part.reset_index(drop=True)], ignore_index=True)
    return both.iloc[order].reset_index(drop=True), others[np.asarray(positions, dtype=np.int64)]


class PartitionExplainer:
    """Explains partitions in one Ray actor; the model is loaded once, in ``__init__``.

    Parameters
    ----------
    shipped : list of one ray.ObjectRef
        The run's shipment (:func:`studio.batch.run.shipment`): the model
        file's bytes, name and card, the sandbox settings, the source plan,
        method, parameters, target and the reference rows. Wrapped in a list
        so the actor fetches it itself, once.
    """

    def __init__(self, shipped):
        begun = time.perf_counter()
        import ray

        import studio

        self.job = ray.get(shipped[0])
        self.error = ""
        self.model = None
        try:
            self.model = studio.load_model(
                self.job["model_bytes"], card=self.job["card"], name=self.job["model_name"],
                sandbox=self.job["sandbox"], trust=self.job["trust"], trust_pickle=self.job["trust_pickle"])
        except StudioError as exc:
            self.error = str(exc)
        self.load_seconds = time.perf_counter() - begun

    def __call__(self, batch: dict) -> dict:
        out = {"part": [], "error": [], "payload": [], "meta": []}
        for i, part in enumerate(batch["part"]):
            out["part"].append(int(part))
            payload, meta, error = b"", "{}", self.error
            if not error:
                try:
                    start, stop, listed = int(batch["start"][i]), int(batch["stop"][i]), str(batch["positions"][i])
                    positions = json.loads(listed) if listed else list(range(stop - start))  # "": every row
                    payload, meta = self.explain(int(part), start, stop, positions, int(batch["seed"][i]))
                except StudioError as exc:
                    error = str(exc)
                except Exception as exc:  # noqa: BLE001 -- the model's own failure, as one line for the driver
                    error = f"partition {int(part)} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            out["error"].append(error)
            out["payload"].append(payload)
            out["meta"].append(meta)
        return {"part": np.asarray(out["part"], dtype=np.int64), "error": np.asarray(out["error"], dtype=object),
                "payload": np.asarray(out["payload"], dtype=object), "meta": np.asarray(out["meta"], dtype=object)}

    def explain(self, part: int, start: int, stop: int, positions: list, seed: int) -> tuple:
        """Partition ``part`` (source rows ``[start, stop)``, of which ``positions`` are explained) as Parquet bytes."""
        import studio
        from studio.batch.source import Source

        job, model = self.job, self.model
        source = Source(**job["source"])
        params = dict(job["params"])
        if "seed" in params:
            params["seed"] = seed
        positions = np.asarray(positions, dtype=np.int64)
        begun = time.perf_counter()
        if source.kind == "tabular":
            frame = source.frame(start, stop)
            reference = job.get("reference")
            rows = positions
            if reference is not None and reference.get("all"):
                frame = reference["frame"]  # the whole (small) dataset, as studio.explain sees it
                rows = positions + start
            elif reference is not None:
                frame, rows = compose(reference["frame"], frame, positions, reference["k"], params["seed"])
            from studio.data.tabular import table_dataset

            data = table_dataset(frame, name=job["data_name"], label=source.label, feature_names=model.feature_names)
        else:
            data = source.images(start, stop)
            rows = positions
        exp = studio.explain(model, data, job["method"], rows=[int(r) for r in rows], target=job["target"],
                             params=params, cache=False)
        x = data.aligned_to(model).x[rows]
        table = result_table(exp, model, x, start + positions)
        buf = io.BytesIO()
        import pyarrow.parquet as pq

        pq.write_table(table, buf, compression="zstd", row_group_size=max(len(positions), 1))
        meta = {"checks": _floats(exp.checks), "seconds": time.perf_counter() - begun, "load_seconds": self.load_seconds,
                "model_fingerprint": model.fingerprint, "model_format": model.format,
                "algorithm": (exp.provenance or {}).get("algorithm"), "versions": (exp.provenance or {}).get("versions"),
                "feature_names": exp.feature_names, "output_names": exp.output_names}
        return buf.getvalue(), json.dumps(meta, sort_keys=True, default=str)


def _floats(checks: dict) -> dict:
    return {str(k): float(v) for k, v in (checks or {}).items()}


def result_table(exp, model, x, row_ids):
    """One partition's rows as an Arrow table (see docs/result-schema.md, ``studio.batch/1``).

    Columns: ``row_id``, ``prediction``, ``target`` (the class or output
    explained; -1 for a one-output regressor), ``output`` (the model's
    output at the target), then by kind: attributions (``base_value`` and
    ``attr:<feature>`` per feature for tables, or ``attribution``, a list of
    C*H*W floats per image), rules (``rule``, ``precision``, ``coverage``);
    ``value:<feature>`` holds each explained table row's feature values, and
    ``check_additivity_gap`` |base + sum(attr) - output| per row where the
    values explain ``output`` (NaN where they explain something else, e.g.
    a booster's margin).
    """
    import pyarrow as pa

    n = len(row_ids)
    out = model.output(x)  # (n, n_outputs)
    targets = np.full(n, -1, dtype=np.int64) if exp.target is None else np.asarray(exp.target, dtype=np.int64)
    explained = out[np.arange(n), np.maximum(targets, 0)]  # (n,)
    pred = model.predict(x)
    pred = np.asarray(pred)
    cols = {"row_id": pa.array(np.asarray(row_ids, dtype=np.int64)),
            "prediction": pa.array(pred.astype(np.int64) if model.is_classifier and pred.dtype.kind in "iub"
                                   else pred.astype(np.float64) if pred.dtype.kind in "iufb" else pred.astype(str)),
            "target": pa.array(targets), "output": pa.array(explained.astype(np.float64))}
    if exp.kind == "attribution":
        values = np.asarray(exp.values, dtype=np.float64)
        base = np.asarray(exp.base_values, dtype=np.float64).reshape(n)
        cols["base_value"] = pa.array(base)
        if values.ndim == 2:
            for j, name in enumerate(exp.feature_names):
                cols[f"attr:{name}"] = pa.array(values[:, j])
            if x.dtype != object:
                for j, name in enumerate(exp.feature_names):
                    cols[f"value:{name}"] = pa.array(np.asarray(x[:, j], dtype=np.float64))
            else:
                for j, name in enumerate(exp.feature_names):
                    cols[f"value:{name}"] = pa.array([None if v is None else str(v) for v in x[:, j]], pa.string())
            margin = (exp.checks or {}).get("explains_margin", 0.0) == 1.0
            gap = np.abs(base + values.sum(axis=1) - explained) if not margin else np.full(n, np.nan)
            cols["check_additivity_gap"] = pa.array(gap)
        else:
            flat = values.reshape(n, -1).astype(np.float32)  # (n, C*H*W)
            cols["attribution"] = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), flat.shape[1])
    elif exp.kind == "rule":
        by_row = {r.row: r for r in exp.rules}
        rules = [by_row.get(int(r)) for r in exp.rows]
        from studio.charts.rules import NO_CONDITION

        cols["rule"] = pa.array([(" AND ".join(r.predicates) or NO_CONDITION) if r else None for r in rules],
                                pa.string())
        cols["precision"] = pa.array([r.precision if r else np.nan for r in rules], pa.float64())
        cols["coverage"] = pa.array([r.coverage if r else np.nan for r in rules], pa.float64())
    return pa.table(cols)
