"""The studio's side of a model worker: start it, talk to it, and the Model that forwards to it.

:class:`RemoteModel` is what :func:`studio.load_model` returns for an untrusted
file. It answers the Model's public surface (names, task, kind, ``output``,
``predict``, ``predict_proba``) from the worker's description and calls, and
``studio.explain`` runs explainers through :meth:`RemoteModel.run_explainer`,
so the file's code runs only in the worker. The worker stays warm for the
model's life and ends when the model is closed or garbage-collected.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref

import numpy as np

from studio.errors import StudioError
from studio.models.adapter import Model
from studio.sandbox import launcher, protocol

GRACE_SECONDS = 5.0
"""How long a worker may take past a deadline or a cancel before it is killed."""
STDERR_TAIL = 4096

_SIGNALS = {
    signal.SIGSEGV: "crashed (segmentation fault)",
    signal.SIGBUS: "crashed (bus error)",
    signal.SIGABRT: "crashed (aborted)",
    signal.SIGILL: "crashed (illegal instruction)",
    signal.SIGFPE: "crashed (arithmetic fault)",
    signal.SIGKILL: "was killed (out of memory, or stopped by the system)",
    signal.SIGXCPU: "ran out of CPU time",
    signal.SIGXFSZ: "wrote a file over the size limit",
}


class WorkerError(StudioError):
    """The model's worker crashed, hung, ran out of memory or broke the protocol."""


class ModelFailure(RuntimeError):
    """The model (or an explainer's code) raised an unexpected exception inside the worker.

    Not a :class:`StudioError`, exactly as the exception would not be one in
    process: callers that turn a model's failure into advice (dataset checks,
    the CLI's "unexpected ..." line) treat both paths alike. The message is
    ``"<ExceptionType>: <its last line>"``.
    """


_spawner_lock = threading.Lock()
_spawn_requests = None


def _spawner_loop(requests) -> None:
    while True:
        argv, kwargs, done = requests.get()
        try:
            done.append(subprocess.Popen(argv, **kwargs))
        except BaseException as exc:  # noqa: BLE001 -- handed back to the caller's thread
            done.append(exc)
        done[0].set()


def _spawn(argv, **kwargs) -> subprocess.Popen:
    """``subprocess.Popen`` from one long-lived thread.

    The worker asks the kernel to kill it when its parent dies
    (``PR_SET_PDEATHSIG``, also bubblewrap's ``--die-with-parent``), and Linux
    takes "parent" to be the *thread* that forked it: a worker started from a
    Streamlit script thread would be killed when that run of the script ended.
    """
    global _spawn_requests
    import queue

    with _spawner_lock:
        if _spawn_requests is None:
            _spawn_requests = queue.Queue()
            threading.Thread(target=_spawner_loop, args=(_spawn_requests,), daemon=True,
                             name="studio-sandbox-spawner").start()
    done_event = threading.Event()
    done: list = [done_event]
    _spawn_requests.put((argv, kwargs, done))
    done_event.wait()
    result = done[1]
    if isinstance(result, BaseException):
        raise result
    return result


class WorkerProcess:
    """One worker process and the pipes to it.

    Parameters
    ----------
    kind : {"bubblewrap", "unshare", "none"}
        The launcher.
    warm : tuple of str
        Modules the worker imports before its first request (a spare worker).
    """

    def __init__(self, kind: str, warm: tuple = ()):
        self.kind = kind
        self.lock = threading.RLock()
        self._stderr = bytearray()
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        tmp = tempfile.gettempdir() if kind != "bubblewrap" else "/tmp"
        argv = [sys.executable, "-s", "-m", "studio.sandbox.worker", "--kind", kind,
                "--fd-in", str(req_r), "--fd-out", str(rep_w), "--warm", ",".join(warm)]
        try:
            self.proc = _spawn(
                launcher.command(kind, argv, tmp), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, pass_fds=(req_r, rep_w), env=launcher.worker_env(tmp),
                cwd="/", start_new_session=kind != "bubblewrap",
            )
        except OSError as exc:
            for fd in (req_r, req_w, rep_r, rep_w):
                os.close(fd)
            raise WorkerError(f"the model worker could not be started ({exc}); try STUDIO_SANDBOX=none") from None
        os.close(req_r)
        os.close(rep_w)
        self.fd_in, self.fd_out = rep_r, req_w
        threading.Thread(target=self._drain, daemon=True).start()
        self.ready = False

    def _drain(self) -> None:
        """Keep the tail of what the worker prints (libraries' warnings, a crash's last words)."""
        out = self.proc.stdout
        while True:
            chunk = out.read1(65536) if hasattr(out, "read1") else out.read(65536)
            if not chunk:
                return
            self._stderr += chunk
            del self._stderr[:-STDERR_TAIL]

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float) -> None:
        header, _ = self._receive(time.monotonic() + timeout, "start", None, None)
        if header.get("type") != "ready":
            raise WorkerError(f"the model worker did not start properly (sent {header.get('type')!r})")
        self.ready = True

    # ---- one request ----------------------------------------------------------------------
    def request(self, header: dict, parts: dict | None = None, timeout: float | None = None,
                what: str = "the model", progress=None, cancel=None) -> tuple:
        """Send a request and wait for its reply.

        Parameters
        ----------
        header, parts
            The request (see :mod:`studio.sandbox.worker`).
        timeout : float, optional
            Seconds before the worker is killed (plus :data:`GRACE_SECONDS` when the worker has its own deadline).
        what : str
            What the user asked for, for messages ("loading 'm.pt'").
        progress : callable(fraction, message), optional
        cancel : callable() -> bool, optional

        Returns
        -------
        header : dict
        parts : dict

        Raises
        ------
        StudioError
            The worker's own error (as it said it), or a :class:`WorkerError` when it died or hung.
        """
        with self.lock:
            if not self.alive:
                raise self._death(what)
            try:
                protocol.write(self.fd_out, header, parts)
            except (BrokenPipeError, OSError):
                raise self._death(what) from None
            deadline = None if timeout is None else time.monotonic() + timeout
            return self._receive(deadline, what, progress, cancel)

    def _receive(self, deadline, what, progress, cancel):
        cancel_sent = None
        raised = None  # what the caller's progress callback raised: re-raised once the worker's reply is read
        while True:
            now = time.monotonic()
            if cancel is not None and cancel_sent is None and cancel():
                protocol.write(self.fd_out, {"type": "cancel"})
                cancel_sent = now
            if cancel_sent is not None and now > cancel_sent + GRACE_SECONDS:
                self.kill()
                if raised is not None:
                    raise raised
                raise WorkerError(f"{what} was cancelled and the worker did not stop; it was ended")
            if deadline is not None and now > deadline:
                self.kill()
                raise WorkerError(f"{what} ran past its time limit and was stopped; "
                                  "lower the work asked for or raise the limit (STUDIO_SANDBOX_TIMEOUT for loading)")
            ready, _, _ = select.select([self.fd_in], [], [], 0.1)
            if not ready:
                if not self.alive and not select.select([self.fd_in], [], [], 0)[0]:
                    raise self._death(what)
                continue
            try:
                header, parts = protocol.read(self.fd_in)
            except EOFError:
                raise self._death(what) from None
            except protocol.ProtocolError as exc:
                self.kill()
                raise WorkerError(f"{what} failed: the worker broke the protocol ({exc}); it was ended") from None
            if header["type"] == "progress":
                if progress is not None and raised is None:
                    try:
                        progress(float(header.get("fraction", 0.0)), str(header.get("message", "")))
                    except BaseException as exc:  # the caller wants out: stop the run so no reply is left unread
                        raised = exc
                        if cancel_sent is None:
                            protocol.write(self.fd_out, {"type": "cancel"})
                            cancel_sent = now
                continue
            if raised is not None:  # the reply to the abandoned request is read; the pipe is clean for the next
                raise raised
            if header["type"] == "error":
                error = header.get("error")
                if error == "memory":
                    raise WorkerError(f"{what} ran out of memory in the sandbox (limit {_gib(launcher.memory_limit())}); "
                                      "use fewer rows or smaller settings, or raise STUDIO_SANDBOX_MEMORY")
                if header.get("cancelled"):
                    from studio.explainers.base import Cancelled

                    raise Cancelled(header["message"])
                if error == "studio":
                    raise StudioError(header["message"])
                raise ModelFailure(header["message"])
            return header, parts

    def _death(self, what: str) -> WorkerError:
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        if code is not None and code > 128 and self.kind == "bubblewrap":  # bwrap reports a signal as 128 + its number
            code = 128 - code
        if code is not None and code < 0:
            how = _SIGNALS.get(-code, f"was ended by signal {-code}")
        elif code in (None, 0):
            how = "closed its pipe"
        else:
            how = f"exited with status {code}"
            tail = bytes(self._stderr).decode(errors="replace").strip().splitlines()
            if tail and "MemoryError" in tail[-1]:
                how = f"ran out of memory (limit {_gib(launcher.memory_limit())})"
        return WorkerError(f"{what} failed: the model's worker {how}; the studio and other models are unaffected")

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for fd in (self.fd_in, self.fd_out):
            try:
                os.close(fd)
            except OSError:
                pass
        self.fd_in = self.fd_out = -1

    def close(self) -> None:
        """Ask the worker to exit, then make sure it has."""
        with self.lock:
            if self.alive and self.fd_out >= 0:
                try:
                    protocol.write(self.fd_out, {"type": "shutdown"})
                    self.proc.wait(timeout=2)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            self.kill()

    @property
    def stderr_tail(self) -> str:
        return bytes(self._stderr).decode(errors="replace")


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g} GiB"


# ---- spare workers ------------------------------------------------------------------------------
WARM_MODULES = ("numpy", "studio.models.loaders", "studio.explainers.registry", "sklearn.ensemble", "torch",
                "onnxruntime", "skops.io")
_spares: dict = {}
_spares_lock = threading.Lock()
_keep_spare = False


def keep_spare(on: bool = True) -> None:
    """Keep one started worker with its libraries imported ready for the next load (servers).

    A long-running server (the app, ``serve``) calls this so that loading a
    model does not wait for a fresh interpreter to import torch; one-shot
    commands leave it off.
    """
    global _keep_spare
    _keep_spare = on and os.environ.get("STUDIO_SANDBOX_SPARE", "1") != "0"
    on = _keep_spare
    if on:
        threading.Thread(target=_refill, args=(launcher.choose(),), daemon=True).start()


_refilling: set = set()


def _refill(kind: str) -> None:
    """Start a spare worker of ``kind`` and offer it once it is ready (one refill per kind at a time)."""
    if kind == "off":
        return
    with _spares_lock:
        current = _spares.get(kind)
        if kind in _refilling or (current is not None and current.alive):
            return
        _refilling.add(kind)
    try:
        worker = WorkerProcess(kind, WARM_MODULES)
        try:
            worker.wait_ready(120)
        except StudioError:
            worker.kill()
            return
        with _spares_lock:
            _spares[kind] = worker
    except StudioError:
        return
    finally:
        with _spares_lock:
            _refilling.discard(kind)


def _take_worker(kind: str, timeout: float) -> WorkerProcess:
    with _spares_lock:
        worker = _spares.pop(kind, None)
    if worker is not None and not worker.alive:
        worker.kill()
        worker = None
    if worker is None:
        worker = WorkerProcess(kind)
        try:
            worker.wait_ready(timeout)
        except StudioError:
            worker.kill()
            raise
    if _keep_spare:
        threading.Thread(target=_refill, args=(kind,), daemon=True).start()
    return worker


# ---- data over the wire --------------------------------------------------------------------------
def array_parts(x) -> tuple[dict, dict]:
    """An input batch as (header fields, parts): numeric arrays as .npy, object arrays as JSON rows."""
    x = np.asarray(x)
    if x.dtype.hasobject:
        return {"x_json": _json_rows(x)}, {}
    return {}, {"x": x}


def _json_rows(x) -> list:
    return json.loads(json.dumps(x.tolist(), default=_scalar))


def _scalar(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def dataset_message(data) -> tuple[dict, dict]:
    """A Dataset as (meta, parts); the worker rebuilds it with the same fingerprint."""
    meta = {k: getattr(data, k) for k in ("kind", "feature_names", "label", "class_names", "categorical", "names", "name")}
    meta = json.loads(json.dumps(meta, default=_scalar))
    parts = {}
    if data.kind == "tabular" and data.frame is not None:
        text = {}
        for i, col in enumerate(data.feature_names):
            series = data.frame[col]
            if series.dtype.kind in "biufb":
                parts[f"c{i}"] = series.to_numpy()
            else:
                text[f"c{i}"] = json.loads(json.dumps(series.astype(object).tolist(), default=_scalar))
        meta["text_columns"] = text
    if not np.asarray(data.x).dtype.hasobject:
        parts["x"] = np.asarray(data.x)
    if data.y is not None:
        y = np.asarray(data.y)
        if y.dtype.hasobject:
            meta["y_json"] = json.loads(json.dumps(y.tolist(), default=_scalar))
        else:
            parts["y"] = y
    return meta, parts


# ---- the Model the studio holds --------------------------------------------------------------------
class RemoteModel(Model):
    """A Model whose file is loaded and run in a sandboxed worker.

    Attributes
    ----------
    sandbox : str
        The launcher kind the worker runs under.
    notes : list of str
        What the worker noticed while loading (shown on the Load page).
    """

    remote = True

    def __init__(self, worker: WorkerProcess, blob: bytes, fmt: str, card, name: str, trust_pickle: bool,
                 extra_files: dict | None, describe: dict):
        super().__init__(None, describe["format"], describe["fingerprint"], card, name)
        self.sandbox = worker.kind
        self._worker = worker
        self._blob = blob
        self._load_fmt = fmt
        self._trust_pickle = trust_pickle
        self._extra_files = dict(extra_files or {})
        self._device = "cpu"
        self._data_sent: set = set()
        self._sent_card = self.card.canonical_json()
        self._apply(describe)
        self._finalizer = weakref.finalize(self, WorkerProcess.close, worker)

    def _apply(self, describe: dict) -> None:
        self._desc = describe
        self.differentiable = bool(describe.get("differentiable"))
        self.notes = list(describe.get("notes") or [])
        if describe.get("n_outputs"):
            self._n_outputs = int(describe["n_outputs"])

    # ---- the adapter's hooks, answered from the worker's description ----------------------
    def _infer_task(self) -> str:
        return self._desc.get("task") or "classification"

    def _native_feature_names(self):
        return self._desc.get("feature_names")

    def _native_class_names(self):
        return self._desc.get("class_names")

    def _native_kind(self):
        return self._desc.get("kind")

    @property
    def n_features(self) -> int | None:
        return self._desc.get("n_features")

    @property
    def device(self) -> str:
        return self._device

    def to(self, device: str) -> "RemoteModel":
        """Where the worker runs gradient methods (resolved from ``auto``); returns self."""
        from studio.device import resolve_device

        self._device = resolve_device(device)
        return self

    # ---- calls -------------------------------------------------------------------------------
    def _call(self, header, parts=None, timeout=None, what=None, progress=None, cancel=None):
        self._sync_card()
        worker = self._live_worker()
        return worker.request(header, parts, timeout=timeout, what=what or f"running {self.name!r}",
                              progress=progress, cancel=cancel)

    def _live_worker(self) -> WorkerProcess:
        """The worker, started again (and the model reloaded) when an earlier call ended it."""
        worker = self._worker
        if worker.alive and worker.fd_out >= 0:
            return worker
        worker.kill()
        worker = _take_worker(self.sandbox, launcher.load_timeout())
        try:
            header, _ = worker.request(_load_header(self.name, self._load_fmt, self.card, self._trust_pickle),
                                       _load_parts(self._blob, self._extra_files), timeout=launcher.load_timeout(),
                                       what=f"reloading {self.name!r}")
        except StudioError:
            worker.kill()
            raise
        self._finalizer.detach()
        self._worker = worker
        self._finalizer = weakref.finalize(self, WorkerProcess.close, worker)
        self._data_sent = set()
        self._sent_card = self.card.canonical_json()
        self._apply(header["describe"])
        return worker

    def _sync_card(self) -> None:
        card = self.card.canonical_json()
        if card != self._sent_card:
            worker = self._live_worker()
            header, _ = worker.request({"type": "card", "card": self.card.to_dict()}, what=f"updating {self.name!r}")
            self._sent_card = card
            self._apply(header["describe"])

    def output(self, x, batch_size: int | None = None) -> np.ndarray:
        """The explained output, computed in the worker (see :meth:`Model.output`)."""
        x = self._check_input(x)
        if len(x) == 0:
            return np.zeros((0, self.n_outputs_or(1)))
        head, parts = array_parts(x)
        header, out = self._call(dict(head, type="output", batch_size=batch_size), parts,
                                 timeout=_call_timeout(), what=f"running {self.name!r}")
        result = np.asarray(out["out"], dtype=np.float64)
        self._n_outputs = result.shape[1] if result.ndim == 2 else self._n_outputs
        return result

    def _with_data(self, header: dict, data, **kw):
        """A request about ``data``: the worker gets the dataset once (and again if it let it go)."""
        if data is None:
            return self._call(header, **kw)
        header = dict(header, data_id=data.fingerprint)
        for _ in range(3):
            if data.fingerprint not in self._data_sent:
                meta, parts = dataset_message(data)
                self._call({"type": "data", "id": data.fingerprint, "meta": meta}, parts,
                           timeout=_call_timeout(), what=f"sending {data.name!r} to the model's worker")
                self._data_sent.add(data.fingerprint)
            reply = self._call(header, **kw)
            if reply[0]["type"] != "need_data":
                return reply
            self._data_sent.discard(data.fingerprint)
        raise WorkerError("the model's worker keeps dropping the dataset; it may be too large for the sandbox's memory")

    def compatible(self, names: list, data_kind: str, data) -> dict:
        """``is_compatible`` of each named method, asked in the worker (which holds the model)."""
        header, _ = self._with_data({"type": "compatible", "methods": list(names), "data_kind": data_kind}, data,
                                    timeout=_call_timeout(), what=f"checking methods on {self.name!r}")
        return {k: (bool(v[0]), str(v[1])) for k, v in header["results"].items()}

    def run_explainer(self, explainer, data, params: dict, ctx):
        """Run ``explainer`` on this model in the worker; the result comes back as ``Explanation.to_bytes``.

        The worker polls the same cancel flag and deadline as an in-process run
        (``ctx``); past the deadline plus :data:`GRACE_SECONDS` it is killed.
        """
        from studio.explanation import Explanation

        from studio.quality import memory

        seconds = None if ctx.deadline is None else max(ctx.deadline - time.monotonic(), 0.0)
        header = {"type": "explain", "method": explainer.name, "data_kind": data.kind, "params": params,
                  "rows": list(ctx.rows), "targets": ctx.targets, "device": ctx.device, "seconds": seconds,
                  "memory": memory.active()}
        reply, parts = self._with_data(
            json.loads(json.dumps(header, default=_scalar)), data,
            timeout=None if seconds is None else seconds + GRACE_SECONDS,
            what=f"{explainer.name} on {self.name!r}", progress=ctx.on_progress, cancel=ctx.cancel,
        )
        memory.report(reply.get("memory") or {})
        try:
            return Explanation.from_bytes(parts["explanation"])
        except (KeyError, ValueError) as exc:
            raise WorkerError(f"{explainer.name} sent back a result that is not an explanation ({exc})") from None

    def timing(self, data, batch: int = 256):
        """The model's cost per call and per row, measured in the worker (no pipe overhead)."""
        from studio.cost import Timing

        header, _ = self._with_data({"type": "timing", "batch": batch}, data, timeout=_call_timeout(),
                                    what=f"timing {self.name!r}")
        return Timing(per_call=header["per_call"], per_row=header["per_row"])

    def explainer_cost(self, explainer, data, params: dict, n_rows: int):
        """``explainer.cost`` on this model, computed in the worker (cost models may read the model's internals)."""
        from studio.explainers.base import Cost

        header = json.loads(json.dumps({"type": "cost", "method": explainer.name, "data_kind": data.kind,
                                        "params": params, "n_rows": int(n_rows)}, default=_scalar))
        reply, _ = self._with_data(header, data, timeout=_call_timeout(), what=f"costing {explainer.name}")
        return Cost.from_dict(reply["cost"])

    def call_timing(self, data, batch: int, backward: bool = False):
        """Seconds per call and per row of a ``batch``-row call (forward, or forward+backward), in the worker."""
        from studio.cost import Timing

        header, _ = self._with_data({"type": "call_timing", "batch": int(batch), "backward": bool(backward)}, data,
                                    timeout=_call_timeout(), what=f"timing {self.name!r}")
        return Timing(per_call=header["per_call"], per_row=header["per_row"])

    def graph(self, data=None):
        """The model's computation graph, built in the worker (see :func:`studio.activations.graph`)."""
        from studio.activations import Graph

        header, _ = self._with_data({"type": "graph"}, data, timeout=_call_timeout(), what=f"reading the graph of {self.name!r}")
        return Graph.from_dict(header["graph"])

    def activations(self, data, layer: str, rows=None, reduce: str = "mean", batch_size: int | None = None):
        """One layer's activations, captured in the worker (see :func:`studio.activations.activations`)."""
        from studio.activations import Activations

        header = {"type": "activations", "layer": str(layer), "reduce": reduce,
                  "batch_size": None if batch_size is None else int(batch_size),
                  "rows": None if rows is None else [int(r) for r in np.asarray(list(rows)).reshape(-1)]}
        reply, parts = self._with_data(header, data, timeout=_call_timeout(),
                                       what=f"capturing layer {layer!r} of {self.name!r}")
        try:
            return Activations.from_wire(reply["meta"], parts)
        except (KeyError, TypeError) as exc:
            raise WorkerError(f"the model's worker sent back activations that cannot be read ({exc})") from None

    def dead_neurons(self, data, rows=None, batch_size: int | None = None) -> dict:
        """Dead neurons per layer, counted in the worker (see :func:`studio.activations.dead_neurons`)."""
        header = {"type": "dead", "batch_size": None if batch_size is None else int(batch_size),
                  "rows": None if rows is None else [int(r) for r in np.asarray(list(rows)).reshape(-1)]}
        reply, _ = self._with_data(header, data, timeout=_call_timeout(), what=f"counting dead neurons of {self.name!r}")
        return {str(k): (int(v[0]), int(v[1])) for k, v in reply["layers"]}

    def attack(self, x, kind: str, attack: str, severity: int, target, scale=None) -> np.ndarray:
        """FGSM or PGD against ``target``, computed in the worker (see :func:`studio.quality.attacks.adversarial`)."""
        parts = {"x": np.ascontiguousarray(x), "target": np.asarray(target, dtype=np.int64)}
        if scale is not None:
            parts["scale"] = np.asarray(scale, dtype=np.float64)
        header = {"type": "attack", "attack": str(attack), "severity": int(severity), "kind": str(kind)}
        reply, out = self._call(header, parts, timeout=_call_timeout(), what=f"{attack} on {self.name!r}")
        result = np.asarray(out["x"])
        if result.shape != np.shape(x):
            raise WorkerError(f"the model's worker sent back an attacked input of shape {result.shape}, not {np.shape(x)}")
        return result

    def close(self) -> None:
        """End the worker now (it also ends when this model is garbage-collected)."""
        self._finalizer()

    @property
    def worker_pid(self) -> int | None:
        return self._worker.proc.pid if self._worker.alive else None

    def __repr__(self) -> str:
        return f"<Model {self.name!r} format={self.format} task={self.task} kind={self.kind} sandbox={self.sandbox}>"


def _call_timeout() -> float | None:
    raw = os.environ.get("STUDIO_SANDBOX_CALL_TIMEOUT")
    return float(raw) if raw else None


def _load_header(name, fmt, card, trust_pickle) -> dict:
    env = {k: v for k, v in os.environ.items() if k.startswith("STUDIO_")}  # limits as they are now
    return {"type": "load", "name": name, "format": fmt, "card": card.to_dict(), "trust_pickle": trust_pickle,
            "env": env}


def _load_parts(blob, extra_files) -> dict:
    """The model's bytes under ``model`` and each extra file under ``extra/<its name>`` (no name can shadow the model)."""
    parts = {"model": blob}
    for key, value in (extra_files or {}).items():
        parts["extra/" + str(key)] = bytes(value)
    return parts


def open_model(blob: bytes, name: str, card, fmt: str, trust_pickle: bool, kind: str,
               extra_files: dict | None = None) -> RemoteModel:
    """Start a worker of ``kind``, load the model there, and return its :class:`RemoteModel`.

    Loading and the first probe of the model are bounded by ``STUDIO_SANDBOX_TIMEOUT`` seconds (default 60).

    Raises
    ------
    StudioError
        The loader's own refusal, or a :class:`WorkerError` (crash, hang, memory) while loading.
    """
    timeout = launcher.load_timeout()
    worker = _take_worker(kind, timeout)
    try:
        header, _ = worker.request(_load_header(name, fmt, card, trust_pickle), _load_parts(blob, extra_files),
                                   timeout=timeout, what=f"loading {name!r}")
    except BaseException:  # a refusal, a crash or an interrupt: the worker holds nothing worth keeping
        worker.kill()
        raise
    return RemoteModel(worker, blob, fmt, card, name, trust_pickle, extra_files, header["describe"])
