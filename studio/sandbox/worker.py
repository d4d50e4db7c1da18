"""The model worker: loads one untrusted model and answers requests about it.

Started by :mod:`studio.sandbox.client` inside the launcher's isolation as
``python -m studio.sandbox.worker --kind KIND --fd-in N --fd-out M``. Before it
reads anything it limits itself (no core files, bounded file
sizes), asks to be killed when its parent dies, and under the ``unshare``
launcher restricts its own file access with Landlock.

Requests (parent -> worker), one reply each (``progress`` messages may come first):

===========  ====================================================  ===================================
type         fields and parts                                      reply
===========  ====================================================  ===================================
load         name, format, card, trust_pickle; parts: model,       ``loaded`` with ``describe``
             and extra files by name
card         card                                                  ``loaded`` with ``describe``
output       batch_size; part ``x`` (or header ``x_json``)         ``output``, part ``out``
data         id, meta; parts x / y / columns                       ``ok``
compatible   methods, data_kind, data_id                           ``compatible`` with ``results``
explain      method, data_kind, data_id, params, rows, targets,    ``result``, part ``explanation``
             device, seconds, memory (bool)                        (with ``memory``: the peaks measured
                                                                   in the worker, studio.quality.memory)
timing       data_id, batch                                        ``timing``
graph        data_id (optional: example input shape)               ``graph`` with ``graph`` (schema
                                                                   ``studio.activations/1``)
activations  data_id, layer, rows, reduce, batch_size              ``activations`` with ``meta``; parts
                                                                   ``values``, ``peak``
dead         data_id, rows, batch_size                             ``dead`` with ``layers``: name ->
                                                                   [n_dead, n_neurons]
attack       attack, severity, kind; parts ``x``, ``target``,      ``attacked``, part ``x``
             ``scale`` (tables)                                    (:func:`studio.quality.attacks.adversarial`)
cancel       (handled at once by the reader thread)                none
shutdown                                                           none: the worker exits
===========  ====================================================  ===================================

Errors come back as ``{"type": "error", "error": "studio" | "memory" | "internal", "message": ...}``;
a request that names data the worker no longer holds gets ``{"type": "need_data"}``.
"""

from __future__ import annotations

import argparse
import os
import queue
import resource
import signal
import sys
import tempfile
import threading
import time

from studio.sandbox import protocol

_MAX_DATASETS = 2


def _limit_self() -> None:
    import ctypes

    try:  # PR_SET_PDEATHSIG: the kernel kills this worker when the studio process ends
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (2**31, 2**31))


def _limit_memory() -> None:
    """Bound private writable memory to ``STUDIO_SANDBOX_MEMORY``, for good (soft and hard limit).

    Set when the model arrives, not at start: a spare worker is started before
    the caller's settings are known, and holds only the studio's own libraries
    until then. RLIMIT_DATA bounds the heap and anonymous maps; RLIMIT_AS would
    also count the address space numeric libraries reserve but never touch
    (3.7 GB after importing torch here).
    """
    from studio.sandbox.launcher import memory_limit

    memory = memory_limit()
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))


def _landlock(tmp: str) -> None:
    from studio.sandbox import landlock
    from studio.sandbox.launcher import PACKAGE_ROOT, python_paths

    read = ["/usr", "/bin", "/lib", "/lib64", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
            "/proc", "/sys/devices/system/cpu", os.path.join(PACKAGE_ROOT, "studio"), *python_paths()]
    write = [tmp, "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/dev/shm"]
    write += [os.path.join("/dev", p) for p in os.listdir("/dev") if p.startswith("nvidia")]
    landlock.restrict(read, write)


class Worker:
    """The worker's state: the loaded model, a few datasets, the request in progress."""

    def __init__(self, fd_in: int, fd_out: int):
        self.fd_in, self.fd_out = fd_in, fd_out
        self.model = None
        self.datasets: dict = {}
        self.cancel = threading.Event()
        self.requests: queue.Queue = queue.Queue()
        self.write_lock = threading.Lock()

    # ---- transport ---------------------------------------------------------------------
    def send(self, header: dict, parts: dict | None = None) -> None:
        with self.write_lock:
            protocol.write(self.fd_out, header, parts)

    def reader(self) -> None:
        """Read requests; a ``cancel`` sets the flag at once, the rest queue for the main loop."""
        while True:
            try:
                header, parts = protocol.read(self.fd_in)
            except EOFError:
                self.requests.put(None)
                return
            except protocol.ProtocolError as exc:  # refused; the parent is broken or hostile: stop
                self.requests.put(({"type": "invalid", "message": str(exc)}, {}))
                self.requests.put(None)
                return
            if header["type"] == "cancel":
                self.cancel.set()
            else:
                self.requests.put((header, parts))

    def serve(self) -> None:
        threading.Thread(target=self.reader, daemon=True).start()
        self.send({"type": "ready", "pid": os.getpid()})
        while True:
            item = self.requests.get()
            if item is None:
                return
            header, parts = item
            if header["type"] == "shutdown":
                return
            self.cancel.clear()
            try:
                reply = self.handle(header, parts)
            except MemoryError:
                reply = ({"type": "error", "error": "memory", "message": "out of memory"}, None)
            except Exception as exc:  # noqa: BLE001 -- every failure goes back as one message
                reply = self.error(exc)
            try:
                self.send(*reply)
            except protocol.ProtocolError as exc:
                self.send(*self.error(exc))

    @staticmethod
    def error(exc: BaseException):
        from studio.errors import StudioError, last_line

        if type(exc).__name__ == "OutOfMemoryError":
            return {"type": "error", "error": "memory", "message": "out of device memory"}, None
        kind = "studio" if isinstance(exc, StudioError) else "internal"
        message = str(exc) if kind == "studio" else f"{type(exc).__name__}: {last_line(exc)}"
        return {"type": "error", "error": kind, "message": message[:4000],
                "cancelled": type(exc).__name__ == "Cancelled"}, None

    # ---- requests ------------------------------------------------------------------------
    def handle(self, header: dict, parts: dict):
        kind = header["type"]
        if kind == "invalid":
            return {"type": "error", "error": "internal", "message": header["message"]}, None
        if kind == "load":
            return self.load(header, parts)
        if self.model is None:
            return {"type": "error", "error": "internal", "message": "no model loaded"}, None
        if kind == "card":
            from studio.models.card import load_card

            self.model.card = load_card(header["card"])
            return {"type": "loaded", "describe": describe(self.model)}, None
        if kind == "output":
            x = parts["x"] if "x" in parts else _object_array(header["x_json"])
            out = self.model.output(x, header.get("batch_size"))
            return {"type": "output", "n_outputs": self.model.n_outputs_or(0)}, {"out": out}
        if kind == "data":
            self.datasets[header["id"]] = _dataset(header["meta"], parts, header["id"])
            while len(self.datasets) > _MAX_DATASETS:
                self.datasets.pop(next(iter(self.datasets)))
            return {"type": "ok"}, None
        data = None
        if header.get("data_id") is not None:
            data = self.datasets.get(header["data_id"])
            if data is None:
                return {"type": "need_data"}, None
        if kind == "compatible":
            return self.compatible(header, data)
        if kind == "explain":
            return self.explain(header, data)
        if kind == "timing":
            from studio.cost import model_timing

            t = model_timing(self.model, data, batch=int(header.get("batch", 256)))
            return {"type": "timing", "per_call": t.per_call, "per_row": t.per_row}, None
        if kind == "cost":  # the method's cost model, which may read the model's internals (trees, layers)
            from studio.explainers import registry

            cost = registry.get(header["method"], header["data_kind"]).cost(self.model, data, header["params"],
                                                                          int(header["n_rows"]))
            return {"type": "cost", "cost": cost.to_dict()}, None
        if kind == "call_timing":
            from studio.cost import local_call_timing

            t = local_call_timing(self.model, data, int(header["batch"]), bool(header.get("backward")))
            return {"type": "timing", "per_call": t.per_call, "per_row": t.per_row}, None
        if kind == "graph":
            from studio.activations import graph

            return {"type": "graph", "graph": graph(self.model, data, cache=False).to_dict()}, None
        if kind == "activations":
            from studio.activations import activations

            act = activations(self.model, data, header["layer"], rows=header.get("rows"),
                              reduce=header.get("reduce", "mean"), batch_size=header.get("batch_size"), cache=False)
            meta, parts = act.to_wire()
            return {"type": "activations", "meta": meta}, parts
        if kind == "dead":
            from studio.activations import dead_neurons

            found = dead_neurons(self.model, data, rows=header.get("rows"), batch_size=header.get("batch_size"))
            return {"type": "dead", "layers": [[k, list(v)] for k, v in found.items()]}, None
        if kind == "attack":
            from studio.quality.attacks import adversarial

            x = adversarial(self.model, parts["x"], header["kind"], header["attack"], int(header["severity"]),
                            parts["target"], parts.get("scale"))
            return {"type": "attacked"}, {"x": x}
        return {"type": "error", "error": "internal", "message": f"unknown request {kind!r}"}, None

    def load(self, header: dict, parts: dict):
        from studio.models.loaders import load_in_process

        # the caller's limits (STUDIO_*) as they are now, not as they were when this worker was started
        os.environ.update({k: str(v) for k, v in (header.get("env") or {}).items() if k.startswith("STUDIO_")})
        _limit_memory()
        blob = parts.pop("model")
        extra = {k[len("extra/"):]: v for k, v in parts.items() if k.startswith("extra/")}
        self.model = load_in_process(blob, header["name"], header.get("card"), bool(header.get("trust_pickle")),
                                     extra_files=extra or None)
        return {"type": "loaded", "describe": describe(self.model)}, None

    def compatible(self, header: dict, data):
        from studio.explainers import registry

        results = {}
        for name in header["methods"]:
            try:
                results[name] = list(registry.get(name, header["data_kind"]).is_compatible(self.model, data))
            except Exception as exc:  # noqa: BLE001 -- a broken check must not hide the others
                results[name] = [False, f"compatibility check failed: {exc}"]
        return {"type": "compatible", "results": results}, None

    def explain(self, header: dict, data):
        from studio.explainers import registry
        from studio.explainers.base import Context

        explainer = registry.get(header["method"], header["data_kind"])
        seconds = header.get("seconds")

        def progress(fraction, message):
            self.send({"type": "progress", "fraction": fraction, "message": message})

        ctx = Context(rows=header["rows"], targets=header["targets"], device=header.get("device", "cpu"),
                      on_progress=progress, deadline=None if seconds is None else time.monotonic() + seconds,
                      cancel=self.cancel.is_set)
        if getattr(self.model, "differentiable", False):
            self.model.to(ctx.device)
        if not header.get("memory"):
            result = explainer.explain(self.model, data, header["params"], ctx)
            return {"type": "result"}, {"explanation": result.to_bytes()}
        from studio.quality.memory import measure

        with measure(ctx.device) as peaks:
            result = explainer.explain(self.model, data, header["params"], ctx)
        return {"type": "result", "memory": peaks}, {"explanation": result.to_bytes()}


def describe(model) -> dict:
    """What the parent needs to know of a loaded model, as JSON."""

    def safe(fn, default=None):
        try:
            return fn()
        except Exception:  # noqa: BLE001 -- a property the model cannot answer stays unknown
            return default

    return {
        "format": model.format,
        "fingerprint": model.fingerprint,
        "name": model.name,
        "differentiable": bool(getattr(model, "differentiable", False)),
        "task": safe(lambda: model._infer_task()),
        "feature_names": safe(model._native_feature_names),
        "class_names": safe(model._native_class_names),
        "kind": safe(model._native_kind),
        "n_features": safe(lambda: getattr(model, "n_features", None)),
        "n_outputs": model.n_outputs_or(0) or None,
        "notes": list(getattr(model, "notes", []) or []),
    }


def _object_array(values):
    import numpy as np

    arr = np.empty((len(values), len(values[0]) if values else 0), dtype=object)
    for i, row in enumerate(values):
        arr[i, :] = row
    return arr


def _dataset(meta: dict, parts: dict, fingerprint: str):
    """Rebuild the parent's Dataset from its parts (see :func:`studio.sandbox.client.dataset_message`)."""
    import numpy as np

    from studio.data.dataset import Dataset

    frame = None
    if meta["kind"] == "tabular" and "text_columns" in meta:  # a table built in memory may have no frame
        import pandas as pd

        columns = {}
        for i, name in enumerate(meta["feature_names"]):
            key = f"c{i}"
            columns[name] = parts[key] if key in parts else pd.Series(meta["text_columns"][key], dtype=object)
        frame = pd.DataFrame(columns)
    if "x" in parts:
        x = parts["x"]
    else:
        from studio.data.tabular import frame_to_x

        x, _ = frame_to_x(frame)
    y = parts.get("y")
    if y is None and meta.get("y_json") is not None:
        y = np.asarray(meta["y_json"], dtype=object)
    fields = {k: meta[k] for k in ("kind", "feature_names", "label", "class_names", "categorical", "names", "name")}
    data = Dataset(x=x, y=y, frame=frame, **fields)
    data._fingerprint = fingerprint
    return data


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="studio.sandbox.worker")
    parser.add_argument("--kind", required=True)
    parser.add_argument("--fd-in", type=int, required=True)
    parser.add_argument("--fd-out", type=int, required=True)
    parser.add_argument("--warm", default="")
    args = parser.parse_args(argv)
    _limit_self()
    tmp = tempfile.mkdtemp(prefix="studio-worker-")
    os.environ.update(HOME=tmp, TMPDIR=tmp)
    tempfile.tempdir = tmp
    if args.kind == "unshare":
        _landlock(tmp)
    for module in filter(None, args.warm.split(",")):  # a spare worker imports its libraries before any model
        try:
            __import__(module)
        except Exception:  # noqa: BLE001 -- warming is an optimisation only
            pass
    Worker(args.fd_in, args.fd_out).serve()
    os._exit(0)


if __name__ == "__main__":
    main()
