"""The client side: :func:`connect` to a running :class:`~studio.watch.Watcher` (stored runs: :mod:`studio.watch.stored`).

A client's own thread owns its ZeroMQ DEALER socket: it sends requests, sends a
heartbeat every second, collects window values into a buffer that
:meth:`Client.poll` drains, and re-opens its streams when the agent no longer
has them (the agent closed them after a silence longer than its lease, or the
client reconnected with :meth:`Client.reconnect`).
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field


from studio.errors import StudioError
from studio.watch.wire import WireError, decode, encode


@dataclass
class WindowValue:
    """One closed window of one stream.

    Attributes
    ----------
    stream : str
        The stream's id (given by the client that opened it).
    run : str
        The run's name (``Watcher(name)``), or the recording's.
    kind : str
        ``scalar`` (float), ``layers`` (dict of layer to float), ``histogram`` (dict with ``counts``
        of shape (bins,) and ``edges`` of shape (bins + 1,)), ``images`` (dict with ``images`` of shape
        (n, ...), ``pred``/``target``/``loss`` of shape (n,) where present).
    value : float or dict
    step : int
        The last event's ``step`` observable in the window (or the stream's event count).
    first_step : int
    window : int
        Index of this window in the stream (0, 1, ...).
    events : int
        Events reduced (after the filter).
    dropped : int
        Events the agent had dropped so far (queue full).
    time : float
        Unix time the window closed.
    """

    stream: str
    run: str
    kind: str
    value: object
    step: object = None
    first_step: object = None
    window: int = 0
    events: int = 0
    dropped: int = 0
    time: float = 0.0
    errors: int = 0

    @classmethod
    def from_message(cls, header: dict, arrays: dict) -> WindowValue:
        value = header.get("value") if header.get("kind") in ("scalar", "layers") else dict(arrays)
        return cls(stream=header.get("stream"), run=header.get("run"), kind=header.get("kind"), value=value,
                   step=header.get("step"), first_step=header.get("first_step"), window=header.get("window", 0),
                   events=header.get("events", 0), dropped=header.get("dropped", 0), time=header.get("time", 0.0),
                   errors=header.get("errors", 0))

    def to_message(self) -> tuple[dict, dict]:
        header = {"type": "value", "stream": self.stream, "run": self.run, "kind": self.kind, "step": self.step,
                  "first_step": self.first_step, "window": self.window, "events": self.events,
                  "dropped": self.dropped, "time": self.time, "errors": self.errors}
        if self.kind in ("scalar", "layers"):
            return dict(header, value=self.value), {}
        return header, dict(self.value)


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    reply: dict | None = None


class Client:
    """A connection to one training process's watcher; make it with :func:`connect`.

    Attributes
    ----------
    info : dict
        The agent's welcome: ``run``, ``seen`` (event -> observable -> type), ``extractors``,
        ``reducers``, ``commands``, ``params`` (name -> current value).
    errors : list of str
        Stream errors the agent reported (a missing observable, a layer that does not exist).
    """

    def __init__(self, address: str, token: str, *, timeout: float = 5.0, heartbeat: float = 1.0,
                 client_id: str | None = None):
        self.address, self.token, self.timeout, self.heartbeat = address, token, float(timeout), float(heartbeat)
        self.client_id = client_id or secrets.token_hex(8)
        self.errors: list[str] = []
        self.resubscribed = 0
        self._specs: dict = {}
        self._values: deque = deque(maxlen=100_000)
        self._recorders: dict = {}
        self._out: deque = deque()
        self._pending: dict = {}
        self._pings: set = set()
        self._ids = itertools.count(1)
        self._sids = itertools.count(1)
        self._new_socket = threading.Event()
        self._stop = threading.Event()
        self._arrived = threading.Condition()
        self._last_reply = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"studio.watch client {address}", daemon=True)
        self._thread.start()
        try:
            self.info = self._request({"type": "hello", "streams": []})
        except StudioError:
            self.close()
            raise
        self.run = self.info.get("run")

    # ---- public API ------------------------------------------------------------------------------------------

    def open_stream(self, event: str, map: str, params: dict | None = None, *, reduce: str = "last",
                    reduce_params: dict | None = None, until: str | None = None, every: int | None = None,
                    seconds: float | None = None, where: dict | None = None, stream: str | None = None) -> str:
        """Open a stream: ``event -> map(params) -> [where] -> reduce`` over a window.

        Parameters
        ----------
        event : str
            Event name the script passes to ``observe`` (``"batch"``).
        map : str
            A named extractor (``scalar``, ``grad_norm``, ``weight_histogram``, ``sample``, ``top_loss``,
            or one the script added); ``params`` are its typed parameters (``{"name": "loss"}``).
        reduce : str, default "last"
            ``mean``, ``min``, ``max``, ``last``, ``histogram``, ``topk``; ``reduce_params`` are its own.
        until, every, seconds
            The window: closed by the script's ``end_window(until)``, every ``every`` events, or every
            ``seconds`` seconds. At most one; default ``every=1``.
        where : dict, optional
            Filter ``{"op": ">", "value": 1.0}`` on the mapped value, or ``{"op", "value", "on": name}``
            on a scalar observable.
        stream : str, optional
            The stream's id (default ``s1``, ``s2``, ...).

        Returns
        -------
        str
            The stream's id, found on each :class:`WindowValue`.

        Raises
        ------
        StudioError
            What the agent refused (an unknown map step, a reducer that does not fit the value).
        """
        given = {k: v for k, v in (("until", until), ("every", every), ("seconds", seconds)) if v is not None}
        if len(given) > 1:
            raise StudioError(f"give one window, not {sorted(given)}: until=, every= or seconds=.")
        sid = stream or f"s{next(self._sids)}"
        spec = {"event": event, "map": map, "params": params or {}, "reduce": reduce,
                "reduce_params": reduce_params or {}, "window": given or {"every": 1}, "filter": where}
        reply = self._request({"type": "open", "stream": sid, "spec": spec})
        self._specs[sid] = reply["spec"]
        return sid

    def close_stream(self, stream: str) -> None:
        """Close a stream (values already in flight may still arrive)."""
        self._specs.pop(stream, None)
        self._request({"type": "close", "stream": stream})
        rec = self._recorders.pop(stream, None)
        if rec is not None:
            rec.close()

    @property
    def streams(self) -> dict:
        """Open streams: id -> spec as the agent completed it."""
        return dict(self._specs)

    def poll(self, timeout: float = 0.0) -> list[WindowValue]:
        """Window values received since the last poll; waits up to ``timeout`` seconds for the first."""
        with self._arrived:
            if not self._values and timeout > 0:
                self._arrived.wait(timeout)
            out = list(self._values)
            self._values.clear()
        return out

    def values(self, timeout: float | None = None):
        """Iterate over window values as they arrive; stops after ``timeout`` seconds without one."""
        while not self._stop.is_set():
            got = self.poll(timeout if timeout is not None else 3600.0)
            if not got and timeout is not None:
                return
            yield from got

    __iter__ = values

    def send_command(self, name: str, value=None, timeout: float | None = None) -> dict:
        """Run a command the script registered, or set a named parameter, and wait for the acknowledgement.

        Parameters
        ----------
        name : str
            ``w.command(name, fn)`` or ``w.param(name, getter, setter)`` in the script.
        value : number, str or bool, optional
            The new value of a parameter (omit to read it), or the command's argument.

        Returns
        -------
        dict
            ``{"ok": True, "name": ..., "value": ..., "time": ...}``; for a parameter ``value`` is
            the script's getter read back after the setter.

        Raises
        ------
        StudioError
            If the script has no such command, its setter refused the value, or no answer came.
        """
        return self._request({"type": "command", "name": name, "value": value}, timeout)

    def record(self, stream: str, path, **flush):
        """Append every later window of ``stream`` to the folder ``path`` as Parquet parts.

        Parameters
        ----------
        stream : str
            An open stream's id.
        path : str or Path
            The recording's folder (:class:`studio.watch.stored.Recorder`; ``flush_rows``, ``flush_seconds``
            pass through). Read it back with :func:`studio.watch.replay`.

        Returns
        -------
        Recorder
        """
        from studio.watch.stored import Recorder

        if stream not in self._specs:
            raise StudioError(f"no open stream {stream!r}; open it first (open: {sorted(self._specs)}).")
        rec = Recorder(path, run=self.run, stream=stream, spec=self._specs[stream], address=self.address, **flush)
        self._recorders[stream] = rec
        return rec

    def reconnect(self) -> None:
        """Close the socket, open a new one and re-subscribe every stream this client holds."""
        self._new_socket.set()
        deadline = time.monotonic() + self.timeout
        while self._new_socket.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.info = self._request({"type": "hello", "streams": self._subscriptions()})

    def close(self) -> None:
        """Tell the agent to close this client's streams, stop the client's thread and close its socket."""
        for rec in self._recorders.values():
            rec.close()
        self._recorders.clear()
        if self._specs and self._thread.is_alive():
            self._out.append(self._message({"type": "bye", "id": next(self._ids)}))
        self._specs.clear()
        self._stop.set()
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- internals -------------------------------------------------------------------------------------------

    def _subscriptions(self):
        return [{"stream": sid, "spec": spec} for sid, spec in self._specs.items()]

    def _message(self, msg):
        return dict(msg, token=self.token, client=self.client_id)

    def _request(self, msg, timeout=None):
        rid = next(self._ids)
        pending = self._pending[rid] = _Pending()
        self._out.append(self._message(dict(msg, id=rid)))
        wait = self.timeout if timeout is None else timeout
        if not pending.done.wait(wait):
            self._pending.pop(rid, None)
            raise StudioError(f"no answer from the watcher at {self.address} within {wait:g} s; is the training "
                              "script running, and is the address the one it printed?")
        reply = pending.reply
        if reply.get("type") == "refused" or not reply.get("ok"):
            raise StudioError(f"the watcher refused: {reply.get('error')}")
        return reply

    def _socket(self, zmq, ctx):
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTING_ID, self.client_id.encode())
        sock.setsockopt(zmq.RCVHWM, 10_000)
        sock.connect(self.address)
        return sock

    def _run(self):
        import zmq

        ctx = zmq.Context()
        sock = self._socket(zmq, ctx)
        last_ping = time.monotonic()
        try:
            while not self._stop.is_set():
                if self._new_socket.is_set():
                    sock.close(0)
                    sock = self._socket(zmq, ctx)
                    self._new_socket.clear()
                while self._out:
                    msg = self._out.popleft()
                    try:
                        sock.send_multipart(encode(msg), zmq.NOBLOCK)
                    except zmq.Again:
                        self._out.appendleft(msg)
                        break
                if sock.poll(20):
                    for _ in range(1000):
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._receive(frames)
                now = time.monotonic()
                for rec in list(self._recorders.values()):
                    rec.tick(now)  # a recording's buffer reaches disk within its flush_seconds
                if now - last_ping >= self.heartbeat:
                    last_ping = now
                    self._ping()
        finally:
            while self._out:  # a last bye (or anything queued) goes out before the socket closes
                try:
                    sock.send_multipart(encode(self._out.popleft()), zmq.NOBLOCK)
                except zmq.Again:
                    break
            sock.close(linger=500)
            ctx.term()

    def _ping(self):
        rid = next(self._ids)
        self._pending[rid] = _Pending()
        self._pings.add(rid)
        self._out.append(self._message({"type": "ping", "id": rid}))

    def _receive(self, frames):
        try:
            header, arrays = decode(frames)
        except WireError as exc:
            self.errors.append(f"unreadable message from the agent: {exc}")
            return
        kind = header["type"]
        if kind == "value":
            v = WindowValue.from_message(header, arrays)
            if v.stream not in self._specs:
                return
            rec = self._recorders.get(v.stream)
            if rec is not None:
                rec.write(v)
            with self._arrived:
                self._values.append(v)
                self._arrived.notify_all()
        elif kind == "stream_error":
            self.errors.append(f"stream {header.get('stream')}: {header.get('error')}")
        elif kind in ("reply", "refused"):
            self._last_reply = time.monotonic()
            pending = self._pending.pop(header.get("re"), None)
            if pending is None:
                return
            if header.get("re") in self._pings and header.get("ok"):
                self._pings.discard(header.get("re"))
                missing = [s for s in self._subscriptions() if s["stream"] not in header.get("open", [])]
                if missing:
                    self.resubscribed += len(missing)
                    self._out.append(self._message({"type": "hello", "id": next(self._ids), "streams": missing}))
            pending.reply = header
            pending.done.set()


def connect(address: str, token: str, *, timeout: float = 5.0, heartbeat: float = 1.0) -> Client:
    """Attach to a training process's :class:`~studio.watch.Watcher`.

    Parameters
    ----------
    address : str
        ``tcp://127.0.0.1:PORT`` as the script printed it.
    token : str
        The run's token as the script printed it.
    timeout : float, default 5.0
        Seconds to wait for each answer.
    heartbeat : float, default 1.0
        Seconds between pings; each answer lists the streams the agent holds for this client,
        and the client re-opens any it lost.

    Returns
    -------
    Client

    Raises
    ------
    StudioError
        If nothing answers at ``address`` or the token is wrong.
    """
    if not isinstance(address, str) or not address.startswith("tcp://"):
        raise StudioError(f"a watcher address looks like tcp://127.0.0.1:PORT, got {address!r}.")
    return Client(address, token, timeout=timeout, heartbeat=heartbeat)
