"""The agent a training script embeds: :class:`Watcher`.

Two lines in a training script::

    w = Watcher("mnist-cnn")                 # prints its address and a per-run token
    w.observe("batch", loss=loss, model=model, step=i)   # in the loop, after backward()

plus ``w.end_window("epoch")`` at the end of each epoch, and, to take commands
from a client, ``w.command("stop", fn)`` and ``w.param("lr", getter, setter)``.

With no stream open on an event, :meth:`Watcher.observe` is one dictionary
lookup. With streams open, it takes what each stream's map step needs
(``capture``) and puts it on a bounded queue; when the queue is full the event
is dropped and counted (``Watcher.dropped``), never waited for. The agent's
own thread owns the ZeroMQ socket, evaluates the map, filter and reduce steps
and sends each closed window to the client that opened the stream.
"""

from __future__ import annotations

import atexit
import hmac
import re
import secrets
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field

from studio.errors import StudioError
from studio.watch import streams as S
from studio.watch.wire import SCHEMA, WireError, decode, encode

_CLIENT_ID = re.compile(r"^[0-9a-f]{4,64}$")
_STREAM_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_MESSAGE = 1 * 2**20
"""Largest message the agent accepts from a client (bytes); ZeroMQ drops the connection beyond it."""


@dataclass(eq=False)
class _Stream:
    client: str
    sid: str
    spec: dict
    extractor: S.Extractor
    reducer: S.Reducer
    identity: bytes
    items: list = field(default_factory=list)
    seen: int = 0                 # events in the current window, filtered or not
    count: int = 0                # events since the stream opened
    window: int = 0               # windows sent
    first_step: object = None
    last_step: object = None
    deadline: float = 0.0
    errors: int = 0
    last_error: str = ""
    closed: bool = False


class Watcher:
    """A live view into a training process, after TensorWatch, without pickle or ``eval``.

    Parameters
    ----------
    name : str, optional
        The run's name, shown beside its streams (default ``run-<4 hex bytes>``).
    host : str, default "127.0.0.1"
        Interface to bind. Loopback by default: only processes on this machine can attach, and each
        message must carry the token. Bind another interface only on a network you trust.
    port : int, default 0
        TCP port; 0 picks a free one.
    token : str, optional
        The per-run token clients must send on every message (default ``secrets.token_hex(16)``).
    queue_size : int, default 1024
        Events waiting for the agent's thread; beyond it events are dropped and counted.
    extractors : dict of str to Extractor, optional
        The script's own named map steps, added to :data:`studio.watch.streams.EXTRACTORS`.
    lease : float, default 30.0
        Seconds without a message from a client after which its streams are closed (clients
        send a heartbeat every second and re-open their streams when they come back).
    announce : bool, default True
        Print ``studio.watch: <name> at <address> token <token>`` to stdout.

    Attributes
    ----------
    address : str
        ``tcp://host:port`` for :func:`studio.watch.connect`.
    token : str
    dropped : int
        Events dropped because the queue was full.
    refused : int
        Messages refused (wrong token, not the watch format, e.g. a pickle).

    Raises
    ------
    StudioError
        If the address cannot be bound.
    """

    def __init__(self, name: str | None = None, *, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 queue_size: int = 1024, extractors: dict | None = None, lease: float = 30.0,
                 announce: bool = True):
        self.name = name or f"run-{secrets.token_hex(4)}"
        self.token = token or secrets.token_hex(16)
        self.dropped = 0
        self.refused = 0
        self.lease = float(lease)
        self._maxsize = int(queue_size)
        self._queue: deque = deque()
        self._subs: dict = {}          # event -> tuple of _Stream; replaced whole by the agent thread
        self._until: frozenset = frozenset()
        self._seen: dict = {}          # event -> {observable: type name}, found on first observe
        self._extractors = dict(S.EXTRACTORS, **(extractors or {}))
        self._commands: dict = {}
        self._params: dict = {}
        self._streams: dict = {}       # (client, sid) -> _Stream; agent thread only
        self._clients: dict = {}       # client -> (identity, last seen)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.address = ""
        self._thread = threading.Thread(target=self._run, args=(host, port), name=f"studio.watch {self.name}",
                                        daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise StudioError(f"the watcher could not bind {host}:{port} ({self._error}); pick a free port or "
                              "port=0.") from None
        atexit.register(_close_ref(weakref.ref(self)))
        if announce:
            print(f"studio.watch: {self.name} at {self.address} token {self.token}", flush=True)

    # ---- training thread ---------------------------------------------------------------------------------------

    def observe(self, event: str, **values) -> None:
        """Offer one event's observables to the open streams.

        Parameters
        ----------
        event : str
            The event's name, e.g. ``"batch"``.
        **values
            Observables by name: numbers, tensors, arrays, the model (``model=model`` for gradient
            norms and weights), ``step=`` (an int that places windows on a shared x axis).

        Notes
        -----
        With no stream open on ``event`` this is one dictionary lookup (after the event's first call,
        which notes its observables' names and types for the clients' forms). Otherwise each stream's
        capture runs here and the rest on the agent's thread; a full queue drops the event.
        """
        try:
            subs = self._subs[event]
        except KeyError:
            return self._discover(event, values)
        if subs:
            self._enqueue(event, subs, values)

    def end_window(self, name: str = "epoch") -> None:
        """Close the window ``name`` (e.g. an epoch) for streams opened with ``until=name``."""
        if name in self._until:
            self._queue.append((None, name, None))  # never dropped: a lost marker would merge two windows

    def command(self, name: str, fn) -> None:
        """Let clients run ``fn()`` by name (e.g. ``"stop"``).

        ``fn`` runs on the agent's thread: keep it to setting a flag the loop reads.
        """
        self._commands[str(name)] = fn

    def param(self, name: str, getter, setter) -> None:
        """Let clients read and set a named hyper-parameter (e.g. ``"lr"``).

        ``setter(value)`` runs on the agent's thread (assigning ``optimizer.param_groups[i]["lr"]``
        is safe); the acknowledgement carries ``getter()`` read back after it.
        """
        self._params[str(name)] = (getter, setter)

    def close(self) -> None:
        """Stop the agent's thread and close the socket."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def stats(self) -> dict:
        """Dropped and refused counts, queue length and open streams."""
        return {"dropped": self.dropped, "refused": self.refused, "queued": len(self._queue),
                "streams": len(self._streams)}

    def _discover(self, event, values):
        subs = self._subs
        self._seen[event] = {k: _type_name(v) for k, v in values.items()}
        subs.setdefault(event, ())

    def _enqueue(self, event, subs, values):
        if len(self._queue) >= self._maxsize:
            self.dropped += 1
            return
        captured = []
        for s in subs:
            try:
                c = s.extractor.capture(values, s.spec["params"])
            except Exception as exc:  # noqa: BLE001 -- a stream's error must never stop training
                c = exc
            f = s.spec["filter"]
            captured.append((s, c, values.get(f["on"]) if f and f["on"] else None))
        self._queue.append((event, values.get("step"), captured))

    # ---- agent thread ------------------------------------------------------------------------------------------

    def _run(self, host, port):
        import zmq

        ctx = zmq.Context()
        sock = ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE)
        sock.setsockopt(zmq.SNDHWM, 10_000)
        try:
            if port:
                sock.bind(f"tcp://{host}:{port}")
            else:
                port = sock.bind_to_random_port(f"tcp://{host}")
        except zmq.ZMQError as exc:
            self._error = exc
            sock.close()
            ctx.term()
            self._ready.set()
            return
        self.address = f"tcp://{host}:{port}"
        self._sock = sock
        self._ready.set()
        try:
            while not self._stop.is_set():
                if sock.poll(self._wait_ms(time.monotonic())):  # a message wakes it at once
                    for _ in range(100):
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK, copy=True)
                        except zmq.Again:
                            break
                        self._handle(frames)
                self._drain()
                self._tick(time.monotonic())
        finally:
            sock.close(0)
            ctx.term()

    def _wait_ms(self, now) -> int:
        """How long the agent may sleep: 100 ms with no stream; 50 ms with streams (a queue of 1024 events drained
        every 50 ms keeps up with 20,000 events a second); 1 ms while the queue is a quarter full; never past a
        timed window's deadline.

        Every wake costs the process some CPU, so fewer wakes is what keeps the agent's cost per training step
        low (benchmark section "watch", CPU rows)."""
        if not self._streams:
            return 100
        if len(self._queue) * 4 >= self._maxsize:
            return 1
        deadlines = [s.deadline for s in self._streams.values() if "seconds" in s.spec["window"]]
        if deadlines:
            return max(1, min(50, int((min(deadlines) - now) * 1000) + 1))
        return 50

    def _send(self, identity, header, arrays=None):
        import zmq

        try:
            self._sock.send_multipart([identity] + encode(header, arrays), zmq.NOBLOCK)
        except zmq.Again:  # the client is not reading: its messages are dropped, the agent never waits
            pass

    def _refuse(self, identity, why, re_id=None):
        self.refused += 1
        self._send(identity, {"type": "refused", "re": re_id, "error": why})

    def _handle(self, frames):
        identity, body = frames[0], frames[1:]
        try:
            header, _ = decode(body)
        except WireError as exc:
            return self._refuse(identity, f"not a watch message: {exc}")
        re_id = header.get("id")
        token = header.get("token")
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self.token.encode()):
            return self._refuse(identity, "wrong token: give the token the training script printed", re_id)
        client = header.get("client")
        if not isinstance(client, str) or not _CLIENT_ID.match(client):
            return self._refuse(identity, "a message needs 'client': the client's hex id", re_id)
        self._clients[client] = (identity, time.monotonic())
        for s in self._streams.values():
            if s.client == client:
                s.identity = identity
        try:
            reply = self._dispatch(client, identity, header)
        except StudioError as exc:
            reply = {"ok": False, "error": str(exc)}
        self._send(identity, dict(reply, type="reply", re=re_id))

    def _dispatch(self, client, identity, h):
        kind = h["type"]
        if kind == "hello":
            for item in h.get("streams") or []:
                if isinstance(item, dict) and (client, item.get("stream")) not in self._streams:
                    self._open(client, identity, item.get("stream"), item.get("spec"))
            return dict(self._welcome(), ok=True, open=self._open_ids(client))
        if kind == "ping":
            return {"ok": True, "open": self._open_ids(client), "dropped": self.dropped, "refused": self.refused,
                    "seen": self._seen_copy()}
        if kind == "open":
            spec = self._open(client, identity, h.get("stream"), h.get("spec"))
            return {"ok": True, "stream": h.get("stream"), "spec": spec}
        if kind == "close":
            s = self._streams.pop((client, h.get("stream")), None)
            if s is not None:
                s.closed = True
                self._publish()
            return {"ok": True, "closed": s is not None}
        if kind == "bye":
            for key in [k for k in self._streams if k[0] == client]:
                self._streams.pop(key).closed = True
            self._clients.pop(client, None)
            self._publish()
            return {"ok": True}
        if kind == "command":
            return self._command(h.get("name"), h.get("value"))
        raise StudioError(f"unknown message type {kind!r}; the agent answers hello, ping, open, close, command, bye.")

    def _welcome(self):
        return {"schema": SCHEMA, "run": self.name, "seen": self._seen_copy(),
                "extractors": [e.describe() for e in self._extractors.values()],
                "reducers": [r.describe() for r in S.REDUCERS.values()],
                "commands": sorted(self._commands),
                "params": {k: _json_value(g) for k, (g, _) in self._params.items()}}

    def _seen_copy(self):
        return {k: dict(v) for k, v in list(self._seen.items())}

    def _open_ids(self, client):
        return sorted(sid for (c, sid) in self._streams if c == client)

    def _open(self, client, identity, sid, spec):
        if not isinstance(sid, str) or not _STREAM_ID.match(sid):
            raise StudioError("a stream needs an id of 1-64 letters, digits or _.:-")
        spec = S.check_spec(spec, self._extractors)
        s = _Stream(client, sid, spec, self._extractors[spec["map"]], S.REDUCERS[spec["reduce"]], identity)
        if "seconds" in spec["window"]:
            s.deadline = time.monotonic() + spec["window"]["seconds"]
        old = self._streams.get((client, sid))
        if old is not None:
            old.closed = True
        self._streams[(client, sid)] = s
        self._publish()
        return spec

    def _publish(self):
        """Hand the training thread a new event -> streams table (copy-on-write, never mutated after)."""
        subs = {event: () for event in list(self._seen)}
        for s in self._streams.values():
            subs[s.spec["event"]] = subs.get(s.spec["event"], ()) + (s,)
        self._until = frozenset(s.spec["window"]["until"] for s in self._streams.values()
                                if "until" in s.spec["window"])
        self._subs = subs

    def _command(self, name, value):
        if name in self._params:
            getter, setter = self._params[name]
            if value is not None:
                if not isinstance(value, (int, float, str, bool)):
                    raise StudioError(f"parameter {name!r} takes a number, a string or a boolean.")
                try:
                    setter(value)
                except Exception as exc:  # noqa: BLE001 -- the script's setter refused: say why
                    raise StudioError(f"the script refused {name}={value!r}: {exc}") from None
            return {"ok": True, "name": name, "value": _json_value(getter), "time": time.time()}
        if name in self._commands:
            try:
                result = self._commands[name]() if value is None else self._commands[name](value)
            except Exception as exc:  # noqa: BLE001
                raise StudioError(f"command {name!r} failed in the script: {exc}") from None
            return {"ok": True, "name": name, "value": result if isinstance(result, (int, float, str, bool))
                    else None, "time": time.time()}
        raise StudioError(f"the script registered no command or parameter {name!r}; it has "
                          f"{sorted(self._commands) + sorted(self._params)}.")

    def _drain(self):
        for _ in range(len(self._queue)):
            event, step, captured = self._queue.popleft()
            if event is None:  # end_window marker
                for s in list(self._streams.values()):
                    if s.spec["window"].get("until") == step:
                        self._close_window(s)
                continue
            for s, c, subject in captured:
                if not s.closed:
                    self._feed(s, step, c, subject)

    def _feed(self, s, step, c, subject):
        s.count += 1
        s.seen += 1
        step = s.count if step is None else step
        try:
            if isinstance(c, Exception):
                raise c
            value = s.extractor.compute(c, s.spec["params"])
            keep = S.passes(s.spec["filter"], {s.spec["filter"]["on"]: subject} if s.spec["filter"]
                            and s.spec["filter"]["on"] else {}, value)
        except Exception as exc:  # noqa: BLE001 -- reported to the client, the stream stays open
            s.errors += 1
            if s.errors == 1 or str(exc) != s.last_error:
                self._send(s.identity, {"type": "stream_error", "stream": s.sid, "run": self.name,
                                        "error": str(exc) or type(exc).__name__})
            s.last_error = str(exc)
            keep = False
        if keep:
            s.items.append(value)
            if s.first_step is None:
                s.first_step = step
            s.last_step = step
        every = s.spec["window"].get("every")
        if every and s.seen >= every:
            self._close_window(s)

    def _close_window(self, s):
        items, first, last = s.items, s.first_step, s.last_step
        s.items, s.seen, s.first_step, s.last_step = [], 0, None, None
        if not items:
            return
        try:
            kind, value = s.reducer.fn(items, s.spec["reduce_params"], s.extractor.kind)
        except Exception as exc:  # noqa: BLE001
            s.errors += 1
            self._send(s.identity, {"type": "stream_error", "stream": s.sid, "run": self.name, "error": str(exc)})
            return
        header = {"type": "value", "stream": s.sid, "run": self.name, "kind": kind, "window": s.window,
                  "events": len(items), "first_step": first, "step": last, "time": time.time(),
                  "dropped": self.dropped, "errors": s.errors}
        arrays = None
        if kind in ("scalar", "layers"):
            header["value"] = value
        else:
            arrays = value
        s.window += 1
        self._send(s.identity, header, arrays)

    def _tick(self, now):
        for s in list(self._streams.values()):
            sec = s.spec["window"].get("seconds")
            if sec and now >= s.deadline:
                s.deadline = now + sec
                self._close_window(s)
        gone = [c for c, (_, seen) in self._clients.items() if now - seen > self.lease]
        if gone:
            for c in gone:
                del self._clients[c]
            for key in [k for k in self._streams if k[0] in gone]:
                self._streams.pop(key).closed = True
            self._publish()


def _type_name(v) -> str:
    if isinstance(v, (int, float)):
        return "number"
    if hasattr(v, "named_parameters"):
        return "module"
    shape = getattr(v, "shape", None)
    if shape is not None:
        return "scalar tensor" if len(shape) == 0 else f"array {tuple(shape)}"
    return type(v).__name__


def _json_value(getter):
    try:
        v = getter()
    except Exception as exc:  # noqa: BLE001
        return f"(getter failed: {exc})"
    if hasattr(v, "item"):
        v = v.item()
    return v if isinstance(v, (int, float, str, bool)) or v is None else repr(v)


def _close_ref(ref):
    def close():
        w = ref()
        if w is not None:
            w.close()
    return close
