"""``studio.batch``: explain every row of a large dataset on Ray Data, into partitioned Parquet with a manifest.

Plan (driver, this process): the source's row count from its metadata, the
partitions (fixed row ranges of ``partition_rows``), which of them the output
folder already holds (by the manifest's sha256). Run: a Ray dataset of the
missing partitions' descriptors, ``map_batches`` with
:class:`~studio.batch.worker.PartitionExplainer` on an actor pool (one
actor per worker; the model file's bytes and card go to the object store once
and each actor fetches them once). Write (driver): each partition's Parquet
bytes as they arrive, to a temp name and renamed, then the manifest
(``studio.batch/1``, docs/result-schema.md), also by temp and rename. A run
killed at any point leaves whole partitions and a manifest that lists only
them; the same call again computes the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.errors import StudioError

SCHEMA = "studio.batch/1"
MANIFEST = "manifest.json"
DEFAULT_PARTITION_ROWS = 10_000
MAX_LOCAL_WORKERS = 64


@dataclass
class BatchResult:
    """What a batch run left in its folder.

    Attributes
    ----------
    out : Path
        The output folder (``part-*.parquet`` and ``manifest.json``).
    manifest : dict
        The manifest (schema ``studio.batch/1``).
    computed : int
        Partitions computed by this call (the others were already there).
    seconds : float
        Wall time of this call.
    """

    out: Path
    manifest: dict
    computed: int
    seconds: float

    @property
    def rows(self) -> int:
        return int(sum(p["rows"] for p in self.manifest["partitions"]))

    @property
    def files(self) -> list:
        return [self.out / p["file"] for p in self.manifest["partitions"]]


def parse_rows(spec, n_rows: int) -> np.ndarray:
    """Row ids selected by ``spec`` (sorted, unique).

    Parameters
    ----------
    spec : "all", str, or iterable of int
        ``"all"``; or comma-separated row numbers and ``START:STOP`` ranges
        (stop excluded; either end may be left out), e.g. ``"0:1000,5000"``.
    n_rows : int
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return np.arange(n_rows, dtype=np.int64)
    if isinstance(spec, str):
        chosen = []
        for item in (s.strip() for s in spec.split(",")):
            if not item:
                continue
            try:
                if ":" in item:
                    lo, hi = item.split(":", 1)
                    start, stop = int(lo or 0), (int(hi) if hi else n_rows)
                else:
                    start, stop = int(item), None
            except ValueError:
                raise StudioError(f"--rows takes all, row numbers or START:STOP ranges such as 0:1000,5000; got {spec!r}") from None
            if stop is None:
                chosen.append(np.asarray([start], dtype=np.int64))
                continue
            if stop > n_rows:
                raise StudioError(f"the range {item} ends past the dataset's {n_rows} rows; end it at {n_rows} or "
                                  f"leave the end out ({lo}:)")
            chosen.append(np.arange(start, stop, dtype=np.int64))
        rows = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    else:
        try:
            rows = np.asarray([int(r) for r in spec], dtype=np.int64)
        except (TypeError, ValueError):
            raise StudioError(f"rows must be 'all', a row spec such as '0:1000' or row numbers; got {spec!r}") from None
    rows = np.unique(rows)
    if rows.size == 0:
        raise StudioError("no rows to explain; give 'all' or a non-empty row spec such as 0:1000")
    bad = rows[(rows < 0) | (rows >= n_rows)]
    if bad.size:
        raise StudioError(f"row(s) {', '.join(map(str, bad[:5]))} out of range; the dataset has {n_rows} rows (0 to {n_rows - 1})")
    return rows


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename (never half a file)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # as a plain open() would create it (mkstemp makes 0600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_model(model, card) -> tuple:
    """(bytes, file name, card as a dict) of the model file, the card found as ``studio.load_model`` finds it."""
    from studio.models.card import load_card

    if not isinstance(model, (str, os.PathLike)):
        raise StudioError("batch takes the model file's path (each worker loads the file itself under the sandbox); "
                          "pass the path you gave studio.load_model")
    path = Path(model)
    if not path.is_file():
        raise StudioError(f"model file {str(path)!r} was not found; check the path")
    if card is None:
        for candidate in (path.with_suffix(".card.json"), path.with_name(path.name.split(".")[0] + ".card.json")):
            if candidate.is_file():
                card = candidate
                break
    return path.read_bytes(), path.name, load_card(card).to_dict()


def ray_environment() -> None:
    """Environment for a Ray this process starts or joins: no usage report, no files outside temp folders.

    Ray 2.60 turns on token authentication for a new local cluster and saves
    a generated token in ``~/.ray/auth_token``; a token made here and kept in
    the environment (``RAY_AUTH_TOKEN``, inherited by Ray's processes and by
    subprocesses that join with ``--address``) keeps the protection without the
    file. Values already set are kept.
    """
    import secrets

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")
    if "RAY_AUTH_TOKEN_PATH" not in os.environ:
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))


@contextlib.contextmanager
def local_ray(num_cpus: int):
    """Start a local Ray of ``num_cpus`` CPUs for the block; yields its address (for ``--address``).

    No dashboard, no usage report, bound to 127.0.0.1, its session files in a
    fresh temp folder removed at the end; workers import this studio and see
    the ``STUDIO_*`` settings (the sandbox's) of this process.
    """
    import logging
    import shutil

    ray_environment()
    import ray

    env = {k: v for k, v in os.environ.items() if k.startswith("STUDIO_")}
    temp = tempfile.mkdtemp(prefix="studio-ray-")
    try:
        ray.init(num_cpus=int(num_cpus), include_dashboard=False, _temp_dir=temp, _node_ip_address="127.0.0.1",
                 logging_level=logging.WARNING, log_to_driver=False,
                 runtime_env={"env_vars": {**env, "PYTHONPATH": _pythonpath()}})
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


@contextlib.contextmanager
def ray_session(address=None, workers=None):
    """Ray, as this call needs it; yields the number of workers (actors) to use.

    Already initialised in this process: used as it is. ``address`` (or
    ``RAY_ADDRESS``): that running cluster is joined (the ``studio`` package
    is shipped to it as a ``py_modules`` runtime environment), and left at
    the end. Otherwise :func:`local_ray` with ``num_cpus`` = the workers
    (default: this machine's cores), stopped at the end.
    """
    import logging

    address = address or os.environ.get("RAY_ADDRESS") or None
    ray_environment()
    _check_no_other_studio()
    import ray

    if ray.is_initialized():
        yield max(1, int(workers or ray.cluster_resources().get("CPU", 1)))
        return
    if not address:
        with local_ray(int(workers or min(os.cpu_count() or 1, MAX_LOCAL_WORKERS))):
            yield max(1, int(workers or ray.cluster_resources().get("CPU", 1)))
        return
    import studio

    env = {k: v for k, v in os.environ.items() if k.startswith("STUDIO_")}
    ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False,
             runtime_env={"py_modules": [str(Path(studio.__file__).parent)], "env_vars": env})
    try:
        yield max(1, int(workers or ray.cluster_resources().get("CPU", 1)))
    finally:
        ray.shutdown()


def _check_no_other_studio() -> None:
    """Refuse to start when the working folder holds another ``studio`` package: Ray puts the driver's working
    folder first on its workers' import path, so they would run that copy instead of this one."""
    import studio

    here = Path(studio.__file__).resolve().parent
    other = Path.cwd() / "studio" / "__init__.py"
    if other.is_file() and other.resolve().parent != here:
        raise StudioError(f"the working folder {str(Path.cwd())!r} holds another copy of the studio, which Ray's workers "
                          f"would import instead of {str(here.parent)!r}; run from another folder")


def _pythonpath() -> str:
    import studio

    root = str(Path(studio.__file__).resolve().parent.parent)
    rest = os.environ.get("PYTHONPATH", "")
    return root + (os.pathsep + rest if rest else "")


def _quiet_ray_data():
    import logging

    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    for name in ("ray.data", "ray"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "Progress bars disabled": we did


def load_manifest(out: Path) -> dict | None:
    """The manifest in ``out`` (None when there is none), or StudioError when it is unreadable or of another schema."""
    path = out / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise StudioError(f"{str(path)!r} is not a readable manifest; move it away or choose another --out folder") from None
    if manifest.get("schema") != SCHEMA:
        raise StudioError(f"{str(path)!r} is not a studio batch manifest ({SCHEMA}); choose another --out folder")
    return manifest


def _done(out: Path, entry: dict | None, spec: dict) -> bool:
    """Whether a partition's file is whole: listed in the manifest with these rows and its bytes' sha256."""
    if entry is None or entry.get("start") != spec["start"] or entry.get("stop") != spec["stop"]:
        return False
    path = out / entry["file"]
    return path.is_file() and _file_sha256(path) == entry["sha256"]


def batch(model, data, method: str, params: dict | None = None, rows="all", out="batch-results", address=None,
          workers: int | None = None, partition_rows: int = DEFAULT_PARTITION_ROWS, target=None, label=None,
          card=None, sandbox: str | None = None, trust: bool = False, trust_pickle: bool = False,
          progress=None) -> BatchResult:
    """Explain every selected row of a dataset on Ray; write partitioned Parquet and a manifest.

    Parameters
    ----------
    model : str or Path
        The model file (any format ``studio.load_model`` reads). Each worker
        loads it from bytes under the sandbox (``sandbox``).
    data : str or Path
        CSV, Parquet, a folder of Parquet parts, or an image folder.
    method : str
        A local method (``studio.methods()``), e.g. ``"shap"``.
    params : dict, optional
        The method's parameters (validated as ``studio.explain`` does). The
        seed given (or the default) draws the reference rows; each partition
        is explained with its own seed derived from it and its index.
    rows : "all", str or iterable of int
        Rows to explain (see :func:`parse_rows`).
    out : str or Path
        Output folder: ``part-NNNNN.parquet`` per partition and ``manifest.json``.
    address : str, optional
        A running Ray cluster (``ray://host:10001`` or ``host:6379``);
        default ``RAY_ADDRESS``, else a local Ray started and stopped here.
    workers : int, optional
        Actors (each holds one model worker); default every CPU Ray has.
    partition_rows : int
        Rows per partition (fixed ranges ``[i*P, (i+1)*P)``): the unit of
        work, of resuming and of memory per worker.
    target, label, card, sandbox, trust, trust_pickle
        As for ``studio.explain``, ``studio.load_dataset`` and ``studio.load_model``.
    progress : callable(done, total), optional
        Called after each partition is written.

    Returns
    -------
    BatchResult

    Raises
    ------
    StudioError
        A bad argument; an output folder holding another run's results; the
        model refused or crashed in its sandbox; the method failed on a
        partition (its message, and which partition).
    """
    from studio.api import _versions
    from studio.batch.source import open_source
    from studio.batch.worker import REFERENCE_PARAMS, partition_seed
    from studio.explainers import registry

    begun = time.perf_counter()
    out = Path(out)
    try:
        partition_rows = int(partition_rows)
    except (TypeError, ValueError):
        raise StudioError(f"partition_rows must be a whole number of rows, got {partition_rows!r}") from None
    if partition_rows < 1:
        raise StudioError(f"partition_rows must be at least 1, got {partition_rows}")
    if workers is not None and int(workers) < 1:
        raise StudioError(f"workers must be at least 1, got {workers}")
    model_bytes, model_name, card_dict = _read_model(model, card)
    out.mkdir(parents=True, exist_ok=True)
    source = open_source(data, label, out / ".input")
    explainer = registry.get(method, source.kind)
    if explainer.scope != "local":
        raise StudioError(f"{method} is a global method (one answer for the whole dataset), not a per-row one; "
                          "run it with `python -m studio explain` on a sample, or choose a local method such as shap")
    valid = explainer.params.validate(params, method)
    selected = parse_rows(rows, source.n_rows)
    seed = int(valid.get("seed", 0) or 0)
    ref_param = REFERENCE_PARAMS.get(method) if source.kind == "tabular" else None
    k = int(valid[ref_param]) if ref_param else 0
    if ref_param and k == 0:
        raise StudioError(f"{method} with {ref_param}=0 would use every row of the dataset as its reference; "
                          f"give {ref_param} a number of rows (default {explainer.params.defaults()[ref_param]})")
    identity = {
        "model": {"name": model_name, "sha256": _sha256(model_bytes), "card_sha256": _sha256(_canonical(card_dict).encode())},
        "data": {"sha256": source.sha256, "rows": source.n_rows, "label": label},
        "method": method, "params": valid, "target": target, "partition_rows": partition_rows,
        "rows_sha256": _sha256(selected.tobytes()), "sandbox": sandbox, "versions": _versions(("scikit-learn",) + tuple(explainer.libraries)),
    }
    run_key = _sha256(_canonical(identity).encode())
    manifest = load_manifest(out)
    if manifest is not None and manifest.get("run_key") != run_key:
        raise StudioError(f"{str(out)!r} holds the results of a different run (another model, data, method, parameters, "
                          "rows or library versions); write to another --out folder or delete that one")
    bounds = np.searchsorted(selected, np.arange(0, source.n_rows + partition_rows, partition_rows))
    plan = []
    for i in range((source.n_rows + partition_rows - 1) // partition_rows):
        inside = selected[bounds[i]:bounds[i + 1]]
        if inside.size:
            start, stop = i * partition_rows, min((i + 1) * partition_rows, source.n_rows)
            plan.append({"index": i, "file": f"part-{i:05d}.parquet", "start": start, "stop": stop,
                         "rows": int(inside.size), "seed": partition_seed(seed, i), "positions": inside - start})
    listed = {p["index"]: p for p in (manifest or {}).get("partitions", [])}
    kept = {i: listed[i] for i in listed if _done(out, listed[i], next((p for p in plan if p["index"] == i), {"start": None, "stop": None}))}
    # a killed run's half-written partitions and manifest (killed inside write_atomic, before its rename)
    for leftover in [*out.glob(".part-*.tmp"), *out.glob(".manifest.json.*.tmp")]:
        with contextlib.suppress(OSError):
            leftover.unlink()
    manifest = {
        "schema": SCHEMA, "run_key": run_key,
        "model": {**identity["model"], "path": str(model), "fingerprint": (manifest or {}).get("model", {}).get("fingerprint"),
                  "format": (manifest or {}).get("model", {}).get("format")},
        "data": {**source.describe(), "label": label},
        "method": method, "kind": explainer.kind, "params": valid, "target": target, "seed": seed,
        "rows": rows if isinstance(rows, str) else f"{selected.size} listed rows", "rows_selected": int(selected.size),
        "partition_rows": partition_rows, "versions": identity["versions"],
        "reference": None, "feature_names": (manifest or {}).get("feature_names"),
        "output_names": (manifest or {}).get("output_names"),
        "created": (manifest or {}).get("created") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "complete": False, "partitions": sorted(kept.values(), key=lambda p: p["index"]),
    }
    job = {"model_bytes": model_bytes, "model_name": model_name, "card": card_dict, "sandbox": sandbox,
           "trust": bool(trust), "trust_pickle": bool(trust_pickle), "method": method, "params": valid,
           "target": target, "data_name": Path(source.path).name,
           "source": {"kind": source.kind, "path": source.path, "files": source.files, "counts": source.counts,
                      "classes": source.classes, "label": source.label, "sha256": source.sha256},
           "reference": None}
    if ref_param:
        if k >= source.n_rows:  # the sample is the whole (small) dataset, as in studio.explain
            job["reference"] = {"all": True, "frame": source.frame(0, source.n_rows)}
            manifest["reference"] = {"param": ref_param, "rows": source.n_rows, "row_ids": "all"}
        else:
            from studio.batch.worker import reference_positions

            ids = reference_positions(source.n_rows, k, seed)
            job["reference"] = {"k": k, "frame": source.rows(ids)}
            manifest["reference"] = {"param": ref_param, "rows": k, "seed": seed,
                                     "row_ids_sha256": _sha256(np.asarray(ids, dtype=np.int64).tobytes())}
    missing = [p for p in plan if p["index"] not in kept]
    _write_manifest(out, manifest)
    if missing:
        if progress is not None:
            progress(len(kept), len(plan))  # at once: what is already there, before Ray starts
        _run(job, missing, manifest, out, address, workers, progress, len(plan))
    manifest["complete"] = len(manifest["partitions"]) == len(plan)
    _write_manifest(out, manifest)
    return BatchResult(out, manifest, len(missing), time.perf_counter() - begun)


def _write_manifest(out: Path, manifest: dict) -> None:
    write_atomic(out / MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True, default=str) + "\n").encode())


def shipment_size(job: dict) -> int:
    """Bytes the object store holds for a run (the model file, its card and the reference rows, roughly)."""
    ref = job.get("reference") or {}
    frame = ref.get("frame")
    return len(job["model_bytes"]) + (0 if frame is None else int(frame.memory_usage(deep=True).sum()))


def _run(job, missing, manifest, out, address, workers, progress, total) -> None:
    """Explain the ``missing`` partitions on Ray and write each as it arrives."""
    from studio.batch.worker import PartitionExplainer

    with ray_session(address, workers) as n_workers:
        import ray
        import ray.data

        _quiet_ray_data()
        shipped = ray.put(job)  # once: each actor fetches it once in __init__
        items = [{"part": p["index"], "start": p["start"], "stop": p["stop"], "seed": p["seed"],
                  "positions": "" if p["rows"] == p["stop"] - p["start"] else json.dumps(p["positions"].tolist())}
                 for p in missing]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        results = ds.map_batches(
            PartitionExplainer, batch_size=1, batch_format="numpy", num_cpus=1,
            compute=ray.data.ActorPoolStrategy(size=min(n_workers, len(items))),
            fn_constructor_kwargs={"shipped": [shipped]},
        )
        by_index = {p["index"]: p for p in missing}
        entries = {p["index"]: p for p in manifest["partitions"]}
        for block in results.iter_batches(batch_size=None, batch_format="numpy"):
            for part, error, payload, meta in zip(block["part"], block["error"], block["payload"], block["meta"]):
                if error:
                    raise StudioError(str(error))
                spec = by_index[int(part)]
                info = json.loads(meta)
                write_atomic(out / spec["file"], bytes(payload))
                entries[spec["index"]] = {
                    "index": spec["index"], "file": spec["file"], "start": spec["start"], "stop": spec["stop"],
                    "rows": spec["rows"], "seed": spec["seed"], "sha256": _sha256(bytes(payload)),
                    "bytes": len(payload), "checks": info["checks"], "seconds": round(info["seconds"], 4),
                }
                manifest["partitions"] = [entries[i] for i in sorted(entries)]
                manifest["model"]["fingerprint"] = info["model_fingerprint"]
                manifest["model"]["format"] = info["model_format"]
                manifest["feature_names"] = info["feature_names"]
                manifest["output_names"] = info["output_names"]
                manifest["algorithm"] = info["algorithm"]
                _write_manifest(out, manifest)
                if progress is not None:
                    progress(len(entries), total)
