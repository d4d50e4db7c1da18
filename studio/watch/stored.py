"""Stored runs: streams recorded to append-only Parquet, TensorBoard event files and MLflow ``mlruns/`` folders.

Each is read back as a :class:`Replay`, which answers like a live :class:`~studio.watch.Client` (``run``,
``streams``, :meth:`Replay.poll`), so the Live page draws a stored run beside a live one on the same chart.

A **recording** (:class:`Recorder`, written on the client side by ``Client.record(stream, folder)``) is a folder
of Parquet parts, ``part-000000.parquet``, ``part-000001.parquet``, ... Each part is a complete Parquet file
(pyarrow) written under a temporary name and renamed into place (``os.replace``), so a crash of the recording
process leaves every earlier part readable and at most the last ``flush_seconds`` of windows unwritten;
recording into the folder again appends new parts. Every part carries the schema version
(:data:`PARQUET_SCHEMA`) and the run, stream and spec in its key-value metadata; its columns are listed in
:data:`COLUMNS` (docs/watch.md).

**TensorBoard** logs are read with tensorboard's own ``EventMultiplexer`` (one run per folder holding event
files, as TensorBoard names them), scalars only; each tag is a stream. **MLflow** runs are read with mlflow's
own ``FileStore`` from a local ``mlruns/`` folder (YAML through its safe loader; no model, artifact or code in
the folder is loaded); each metric is a stream. Neither library is asked to run anything from the folder.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

from studio.errors import StudioError, last_line
from studio.watch.client import WindowValue

PARQUET_SCHEMA = "studio.watch.parquet/1"
"""Schema version written in every part's metadata (key ``studio.watch.schema``); a reader refuses others."""
MAX_STORED_BYTES = 2 * 2**30
"""Most bytes read from one stored run (all its files); ``STUDIO_MAX_STORED_BYTES`` overrides."""
MAX_STORED_RUNS = 100
"""Most runs read from one TensorBoard or MLflow folder."""
_ARRAY_KINDS = "biuf"  # numpy dtype kinds a stored array may have: bool, ints, floats (never object)


def _columns():
    import pyarrow as pa

    array = pa.struct([("name", pa.string()), ("dtype", pa.string()), ("shape", pa.list_(pa.int64())),
                       ("data", pa.binary())])
    return pa.schema([("window", pa.int64()), ("step", pa.float64()), ("first_step", pa.float64()),
                      ("events", pa.int64()), ("dropped", pa.int64()), ("errors", pa.int64()),
                      ("time", pa.float64()), ("kind", pa.string()), ("value", pa.float64()),
                      ("layers", pa.map_(pa.string(), pa.float64())), ("arrays", pa.list_(array))])


COLUMNS = ("window", "step", "first_step", "events", "dropped", "errors", "time", "kind", "value", "layers",
           "arrays")
"""A recording's columns: window index, step and first step (float64, integral steps read back as int),
events, dropped, errors, time (Unix s), kind, ``value`` (scalars), ``layers`` (map of layer to float),
``arrays`` (histograms and images: list of {name, dtype, shape, data = the C-order bytes})."""


def _limit() -> int:
    raw = os.environ.get("STUDIO_MAX_STORED_BYTES", "")
    return int(raw) if raw.isdigit() else MAX_STORED_BYTES


# ---- Parquet recordings -----------------------------------------------------------------------------------------


class Recorder:
    """Appends one stream's windows to a folder of Parquet parts (see the module docstring).

    Parameters
    ----------
    path : str or Path
        The recording's folder; created if missing. A folder holding another run's or stream's recording is
        refused.
    run, stream : str
        The run's name and the stream's id, written in each part's metadata.
    spec : dict
        The stream's spec as the agent completed it.
    address : str, optional
        The watcher's address, for the record.
    flush_rows : int, default 256
        Windows buffered before a part is written.
    flush_seconds : float, default 1.0
        Oldest buffered window's age (s) after which a part is written (checked on each window and by the
        client's thread, :meth:`tick`): what a crash may lose.

    Raises
    ------
    StudioError
        If the folder holds a recording of another run or stream, or cannot be written.
    """

    def __init__(self, path, *, run: str, stream: str, spec: dict, address: str = "", flush_rows: int = 256,
                 flush_seconds: float = 1.0):
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StudioError(f"cannot record into {self.path}: {exc.strerror}; pick a folder you can write.") \
                from None
        parts = _parts(self.path)
        if parts:
            meta = _read_meta(parts[-1])
            if (meta["run"], meta["stream"]) != (run, stream):
                raise StudioError(f"{self.path} holds a recording of {meta['run']}/{meta['stream']}; record "
                                  f"{run}/{stream} into a new folder.")
        self._next = int(parts[-1].stem.split("-")[1]) + 1 if parts else 0
        self._meta = {"studio.watch.schema": PARQUET_SCHEMA, "run": run, "stream": stream,
                      "spec": json.dumps(spec), "address": address, "started": repr(time.time())}
        self.flush_rows, self.flush_seconds = int(flush_rows), float(flush_seconds)
        self._rows: list = []
        self._since = 0.0
        self._lock = threading.Lock()
        self.parts = 0
        """Parts written by this recorder."""

    def write(self, v: WindowValue) -> None:
        """Buffer one window; write a part when the buffer is full or old enough."""
        row = _row(v)
        with self._lock:
            if not self._rows:
                self._since = time.monotonic()
            self._rows.append(row)
        self.tick()

    def tick(self, now: float | None = None) -> None:
        """Write a part if the buffer is full or its oldest window is older than ``flush_seconds``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._rows and (len(self._rows) >= self.flush_rows or now - self._since >= self.flush_seconds):
                self._flush()

    def close(self) -> None:
        """Write what is buffered."""
        with self._lock:
            if self._rows:
                self._flush()

    def _flush(self):
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = _columns().with_metadata(self._meta)
        table = pa.Table.from_pylist(self._rows, schema=schema)
        final = self.path / f"part-{self._next:06d}.parquet"
        tmp = self.path / f".{final.name}.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, final)  # atomic: a reader (or a crash) sees the whole part or none of it
        self._next += 1
        self.parts += 1
        self._rows = []


def _row(v: WindowValue) -> dict:
    arrays = None
    if v.kind not in ("scalar", "layers"):
        arrays = []
        for name, arr in dict(v.value).items():
            arr = np.ascontiguousarray(arr)
            arrays.append({"name": str(name), "dtype": arr.dtype.str, "shape": list(arr.shape),
                           "data": arr.tobytes()})
    return {"window": v.window, "step": _num(v.step), "first_step": _num(v.first_step), "events": v.events,
            "dropped": v.dropped, "errors": v.errors, "time": v.time, "kind": v.kind,
            "value": float(v.value) if v.kind == "scalar" and v.value is not None else None,
            "layers": list(v.value.items()) if v.kind == "layers" else None, "arrays": arrays}


def _num(x):
    return None if x is None else float(x)


def _step(x):
    return int(x) if x is not None and float(x).is_integer() else x


def _parts(path: Path) -> list:
    return sorted(p for p in path.glob("part-*.parquet") if p.stem.split("-")[-1].isdigit())


def _not_recording(path, why) -> StudioError:
    return StudioError(f"{path} is not a readable studio.watch recording ({why}); give a folder written by "
                       "Client.record or the Live page's 'Record to folder'.")


def _read_meta(part: Path) -> dict:
    import pyarrow.parquet as pq

    try:
        raw = pq.read_schema(part).metadata or {}
    except Exception as exc:  # noqa: BLE001 -- pyarrow's many error types for a damaged file: one message
        raise _not_recording(part, last_line(exc)) from None
    meta = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in raw.items()}
    if meta.get("studio.watch.schema") != PARQUET_SCHEMA:
        raise _not_recording(part, f"schema {meta.get('studio.watch.schema')!r}, this studio reads {PARQUET_SCHEMA}")
    try:
        meta["spec"] = json.loads(meta.get("spec", ""))
    except ValueError:
        raise _not_recording(part, "its spec is not JSON") from None
    if not isinstance(meta["spec"], dict) or not meta.get("run") or not meta.get("stream"):
        raise _not_recording(part, "no run, stream or spec in its metadata")
    return meta


def _array(item, part) -> np.ndarray:
    try:
        dtype = np.dtype(item["dtype"])
        shape = tuple(int(n) for n in item["shape"])
    except (TypeError, ValueError) as exc:
        raise _not_recording(part, f"array {item.get('name')!r}: {exc}") from None
    if dtype.kind not in _ARRAY_KINDS or any(n < 0 for n in shape) or \
            int(np.prod(shape, dtype=object)) * dtype.itemsize != len(item["data"] or b""):
        raise _not_recording(part, f"array {item.get('name')!r} is not a numeric array of its declared shape")
    return np.frombuffer(item["data"], dtype=dtype).reshape(shape).copy()


def read_recording(path, run: str | None = None) -> Replay:
    """A recording's windows, in the order written.

    Parameters
    ----------
    path : str or Path
        The recording's folder (``Client.record``).
    run : str, optional
        A name to show it under (default: the recorded run's name).

    Returns
    -------
    Replay

    Raises
    ------
    StudioError
        One sentence if the folder holds no part, a part is not Parquet, has another schema version, or its
        data do not match the columns (:data:`COLUMNS`), or the parts exceed ``STUDIO_MAX_STORED_BYTES``.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    parts = _parts(path) if path.is_dir() else []
    if not parts:
        raise _not_recording(path, "no part-NNNNNN.parquet in it")
    if sum(p.stat().st_size for p in parts) > _limit():
        raise _not_recording(path, f"over {_limit()} bytes; raise STUDIO_MAX_STORED_BYTES")
    meta = _read_meta(parts[0])
    values = []
    for part in parts:
        other = _read_meta(part)
        if (other["run"], other["stream"]) != (meta["run"], meta["stream"]):
            raise _not_recording(part, f"a part of {other['run']}/{other['stream']} among {meta['run']}/"
                                       f"{meta['stream']}")
        try:
            f = pq.ParquetFile(part)
            if f.metadata.num_rows < 0 or sum(max(f.metadata.row_group(i).total_byte_size, 0)
                                              for i in range(f.metadata.num_row_groups)) > _limit():
                raise _not_recording(part, "it declares more data than STUDIO_MAX_STORED_BYTES")
            if not set(COLUMNS) <= set(f.schema_arrow.names):
                raise _not_recording(part, f"columns {f.schema_arrow.names}, expected {list(COLUMNS)}")
            rows = f.read(columns=list(COLUMNS)).to_pylist()
        except StudioError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _not_recording(part, last_line(exc)) from None
        for r in rows:
            kind = r["kind"]
            if kind == "scalar":
                value = r["value"]
            elif kind == "layers":
                value = dict(r["layers"] or [])
            elif kind in ("histogram", "images"):
                value = {item["name"]: _array(item, part) for item in r["arrays"] or []}
            else:
                raise _not_recording(part, f"unknown value kind {kind!r}")
            values.append(WindowValue(stream=meta["stream"], run=run or meta["run"], kind=kind, value=value,
                                      step=_step(r["step"]), first_step=_step(r["first_step"]),
                                      window=r["window"] or 0, events=r["events"] or 0, dropped=r["dropped"] or 0,
                                      time=r["time"] or 0.0, errors=r["errors"] or 0))
    kind = values[0].kind if values else ""
    return Replay(run or meta["run"], {meta["stream"]: dict(meta["spec"], kind=kind)}, values, source="recording")


# ---- the stored run, as a client -------------------------------------------------------------------------------


class Replay:
    """A stored run, read back with the client's API (:meth:`poll`, iteration, ``run``, ``streams``).

    Parameters
    ----------
    run : str
        The run's name as shown.
    streams : dict
        Stream id to its spec (a recording's spec; for TensorBoard and MLflow ``{"map": "tensorboard" |
        "mlflow", "params": {"name": tag}, "kind": "scalar"}``).
    values : list of WindowValue
        Every stored window, oldest first.
    source : str
        ``recording``, ``tensorboard`` or ``mlflow``.
    """

    def __init__(self, run: str, streams: dict, values: list, source: str = "recording"):
        self.run, self.streams, self.source = run, streams, source
        self._values = deque(values)

    def poll(self, timeout: float = 0.0) -> list[WindowValue]:
        """Every stored window not yet returned (all of them on the first call)."""
        out = list(self._values)
        self._values.clear()
        return out

    def values(self, timeout: float | None = None):
        yield from self.poll()

    __iter__ = values

    def close(self) -> None:
        pass


def replay(path, run: str | None = None) -> Replay:
    """A recorded stream (``Client.record``) as a client that yields its stored windows.

    Parameters
    ----------
    path : str or Path
        The recording's folder.
    run : str, optional
        A name to show it under (default: the recorded run's name).

    Raises
    ------
    StudioError
        See :func:`read_recording`.
    """
    return read_recording(path, run)


def _scalar_replay(run, source, series: dict, tags=None) -> Replay:
    """series: tag -> list of (step, value, wall time)."""
    streams, values = {}, []
    for tag, points in series.items():
        if tags and tag not in tags:
            continue
        streams[tag] = {"map": source, "params": {"name": tag}, "reduce": "last", "window": {}, "kind": "scalar",
                        "event": ""}
        values += [WindowValue(stream=tag, run=run, kind="scalar", value=value, step=step, first_step=step,
                               window=i, events=1, time=wall) for i, (step, value, wall) in enumerate(points)]
    return Replay(run, streams, values, source=source)


# ---- TensorBoard -----------------------------------------------------------------------------------------------


def _event_files(path: Path) -> list:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if "tfevents" in p.name and p.is_file())


def _check_records(file: Path):
    """Every TFRecord header's length fits in the file (tensorboard would allocate a forged length at once).

    TFRecord framing (tensorflow/core/lib/io/record_writer.h): uint64 length, uint32 masked CRC of the
    length, the data, uint32 masked CRC of the data.
    """
    size = file.stat().st_size
    with open(file, "rb") as f:
        at = 0
        while at < size:
            head = f.read(12)
            if len(head) < 12:
                break  # a truncated tail: tensorboard stops there itself
            (length,) = struct.unpack("<Q", head[:8])
            if at + 12 + length + 4 > size:
                raise StudioError(f"{file} is not a readable TensorBoard event file (a record at byte {at} claims "
                                  f"{length} bytes, past the end); give the folder TensorBoard's writer wrote.")
            at += 12 + length + 4
            f.seek(at)


def tensorboard_runs(path, tags=None) -> list[Replay]:
    """TensorBoard runs under ``path`` (a log folder or one event file), scalars only, one stream per tag.

    Read with tensorboard's ``EventMultiplexer`` (``tensorboard.backend.event_processing``), which names runs by
    their folder relative to ``path`` as TensorBoard does; every scalar kept (no sampling). Each record's length
    is first checked against its file's size. TensorBoard stores scalars as float32.

    Parameters
    ----------
    path : str or Path
    tags : iterable of str, optional
        Only these tags (default: every scalar tag).

    Returns
    -------
    list of Replay
        One per run with at least one scalar, named as TensorBoard names it (the sub-folder relative to
        ``path``; ``path``'s own name for event files directly in it).

    Raises
    ------
    StudioError
        If there is no event file, a record is damaged or forged, or no scalar is found.
    """
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.backend.event_processing import event_multiplexer as em

    path = Path(path)
    files = _event_files(path)
    if not files:
        raise StudioError(f"no TensorBoard event file (events.out.tfevents.*) under {path}.")
    if sum(f.stat().st_size for f in files) > _limit():
        raise StudioError(f"the event files under {path} exceed {_limit()} bytes; raise STUDIO_MAX_STORED_BYTES.")
    for f in files:
        _check_records(f)
    guidance = {ea.SCALARS: 0, ea.TENSORS: 1, ea.HISTOGRAMS: 1, ea.IMAGES: 1, ea.AUDIO: 1,
                ea.COMPRESSED_HISTOGRAMS: 1}
    try:
        if path.is_file():
            accs = {".": ea.EventAccumulator(str(path), size_guidance=guidance)}
        else:
            mux = em.EventMultiplexer(size_guidance=guidance)
            mux.AddRunsFromDirectory(str(path))
            accs = {run: mux.GetAccumulator(run) for run in sorted(mux.Runs())}
        out = []
        for run, acc in list(accs.items())[:MAX_STORED_RUNS]:
            acc.Reload()
            series = {tag: [(e.step, e.value, e.wall_time) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
            name = path.stem if path.is_file() else path.name if run == "." else run  # TensorBoard's run name
            if series:
                out.append(_scalar_replay(name, "tensorboard", series, set(tags or ())))
    except StudioError:
        raise
    except Exception as exc:  # noqa: BLE001 -- damaged protobufs and the like: one message
        raise StudioError(f"cannot read the TensorBoard events under {path} ({last_line(exc)}); give the folder "
                          "TensorBoard's writer wrote.") from None
    out = [r for r in out if r.streams]
    if not out:
        raise StudioError(f"no scalar{' tagged ' + ', '.join(sorted(tags)) if tags else ''} in the TensorBoard "
                          f"events under {path}.")
    return out


# ---- MLflow ----------------------------------------------------------------------------------------------------

_MLFLOW_LOCK = threading.Lock()


def _mlflow_root(path: Path):
    """(mlruns root, run id or None): ``path`` is the root, an experiment folder or a run folder."""
    if (path / "meta.yaml").is_file() and (path / "metrics").is_dir():
        return path.parent.parent, path.name
    if (path / "meta.yaml").is_file():
        return path.parent, None
    return path, None


def mlflow_runs(path, tags=None) -> list[Replay]:
    """MLflow runs of a local ``mlruns/`` folder, one stream per metric.

    Read with mlflow's own ``FileStore`` (``mlflow.store.tracking.file_store``; its YAML through the safe
    loader); nothing in the folder is executed or loaded as a model. mlflow 3 keeps its file store behind
    ``MLFLOW_ALLOW_FILE_STORE=true``, set for the read only. Values are read as mlflow wrote them (exact
    decimal text of the float).

    Parameters
    ----------
    path : str or Path
        The ``mlruns`` folder, an experiment folder in it, or one run's folder.
    tags : iterable of str, optional
        Only these metrics (default: all).

    Returns
    -------
    list of Replay
        One per run with at least one metric, named by the run's name (mlflow's ``run_name``).

    Raises
    ------
    StudioError
        If the folder is not an mlruns folder, a file in it is malformed, or no metric is found.
    """
    path = Path(path)
    root, only = _mlflow_root(path)
    if not root.is_dir() or not any((d / "meta.yaml").is_file() for d in root.iterdir() if d.is_dir()):
        raise StudioError(f"{path} is not an MLflow mlruns folder (no experiment folder with a meta.yaml); give "
                          "the mlruns folder mlflow wrote.")
    files = [f for f in root.rglob("*") if f.is_file() and "artifacts" not in f.relative_to(root).parts]
    if sum(f.stat().st_size for f in files) > _limit():
        raise StudioError(f"{root} exceeds {_limit()} bytes of metrics and metadata; raise STUDIO_MAX_STORED_BYTES.")
    try:
        from mlflow.entities import ViewType
        from mlflow.store.tracking.file_store import FileStore

        with _MLFLOW_LOCK:
            before = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
            try:
                store = FileStore(str(root))
            finally:
                if before is None:
                    os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
                else:
                    os.environ["MLFLOW_ALLOW_FILE_STORE"] = before
        runs = []
        for exp in store.search_experiments():
            runs += store.search_runs([exp.experiment_id], "", run_view_type=ViewType.ALL, max_results=MAX_STORED_RUNS)
        runs.sort(key=lambda r: (r.info.start_time or 0, r.info.run_name or "", r.info.run_id))  # oldest first
        out, names = [], set()
        for r in runs[:MAX_STORED_RUNS]:
            if only and r.info.run_id != only:
                continue
            series = {}
            for key in sorted(r.data.metrics):
                history = sorted(store.get_metric_history(r.info.run_id, key), key=lambda m: (m.step, m.timestamp))
                series[key] = [(m.step, m.value, m.timestamp / 1000) for m in history]
            name = r.info.run_name or r.info.run_id[:8]
            name = name if name not in names else f"{name} ({r.info.run_id[:8]})"
            names.add(name)
            rep = _scalar_replay(name, "mlflow", series, set(tags or ()))
            if rep.streams:
                out.append(rep)
    except StudioError:
        raise
    except Exception as exc:  # noqa: BLE001 -- mlflow's errors for a malformed folder: one message
        raise StudioError(f"cannot read the MLflow runs in {root} ({last_line(exc)}); give an mlruns folder "
                          "mlflow wrote.") from None
    if not out:
        raise StudioError(f"no metric{' named ' + ', '.join(sorted(tags)) if tags else ''} in the MLflow runs "
                          f"under {path}.")
    return out


# ---- any of them -----------------------------------------------------------------------------------------------


def stored_runs(path, tags=None) -> list[Replay]:
    """A stored run of any kind: a recording folder, TensorBoard events, or an MLflow ``mlruns`` folder.

    Parameters
    ----------
    path : str or Path
    tags : iterable of str, optional
        TensorBoard tags or MLflow metrics to keep (default: all); ignored for a recording.

    Returns
    -------
    list of Replay

    Raises
    ------
    StudioError
        If ``path`` does not exist or is none of the three, or the reader refuses it.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise StudioError(f"{path} does not exist; give a recording folder, a TensorBoard log folder or an "
                          "MLflow mlruns folder.")
    if path.is_dir() and _parts(path):
        return [read_recording(path)]
    if path.is_file() and "tfevents" not in path.name:
        what = "one part of a recording" if path.suffix == ".parquet" else "a file"
        raise StudioError(f"{path} is {what}, not a stored run; give the folder it is in (a recording folder), a "
                          "TensorBoard event file (*tfevents*) or log folder, or an MLflow mlruns folder.")
    if _event_files(path):
        return tensorboard_runs(path, tags)
    if path.is_dir():
        return mlflow_runs(path, tags)
    raise StudioError(f"{path} is none of a recording folder, a TensorBoard event file or folder, or an MLflow "
                      "mlruns folder.")
