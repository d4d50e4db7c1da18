"""The agent in this process, fed by a training thread of the test: cost with no stream, drops, windows,
reducers, filters, reconnection, recording and replay, refusals."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from studio.errors import StudioError
from studio.watch import Extractor, Param, Watcher, connect, replay
from studio.watch.wire import WireError, decode, encode


def _poll_until(client, n, stream=None, timeout=10.0):
    """At least ``n`` windows of ``stream`` (or of any stream); other streams' windows wait for their own call."""
    kept = client.__dict__.setdefault("_kept", [])
    mine = lambda v: stream is None or v.stream == stream  # noqa: E731
    deadline = time.monotonic() + timeout
    while sum(map(mine, kept)) < n and time.monotonic() < deadline:
        kept += client.poll(0.2)
    got = [v for v in kept if mine(v)]
    kept[:] = [v for v in kept if not mine(v)]
    return got


class Counting:
    """A script-side extractor that counts its calls (capture on the training thread, compute on the agent's)."""

    def __init__(self, block: threading.Event | None = None):
        self.captures = self.computes = 0
        self.block, self.entered = block, threading.Event()

    def extractor(self):
        def capture(values, params):
            self.captures += 1
            return values

        def compute(values, params):
            self.computes += 1
            if self.block is not None:
                self.entered.set()
                self.block.wait(30)
            return float(values["x"])

        return Extractor("counting", "scalar", (Param("unused", int, 0),), compute, capture)


@pytest.fixture
def watcher():
    made = []

    def make(**kw):
        w = Watcher(announce=False, **kw)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def test_observe_with_no_stream_open_does_no_work(watcher):
    counting = Counting()
    w = watcher(extractors={"counting": counting.extractor()})
    with connect(w.address, w.token) as client:
        for i in range(1000):
            w.observe("batch", x=i)
        client.open_stream("other", "counting")  # a stream on another event costs this one nothing
        time.sleep(0.1)
        for i in range(1000):
            w.observe("batch", x=i)
        assert counting.captures == counting.computes == 0
        assert len(w._queue) == 0 and w.dropped == 0
        client.open_stream("batch", "counting", every=10)  # control: with a stream open the extractor runs
        time.sleep(0.1)
        for i in range(100):
            w.observe("batch", x=i)
        assert _poll_until(client, 10)
        assert counting.captures == 100 and counting.computes == 100


def test_a_full_queue_drops_and_counts_without_blocking_the_training_thread(watcher):
    block = threading.Event()
    counting = Counting(block)
    w = watcher(queue_size=8, extractors={"counting": counting.extractor()})
    with connect(w.address, w.token) as client:
        client.open_stream("batch", "counting", every=1)
        time.sleep(0.1)
        w.observe("batch", x=0)
        assert counting.entered.wait(10)  # the agent's thread is now stuck in the first event's compute
        done = threading.Event()

        def train():
            for i in range(1, 1001):
                w.observe("batch", x=i)
            done.set()

        threading.Thread(target=train, daemon=True).start()
        assert done.wait(10), "observe blocked on a full queue"
        assert w.dropped == 1000 - 8 and len(w._queue) == 8
        block.set()
        got = _poll_until(client, 9)
        assert [v.value for v in got] == [0.0, *range(1, 9)]
        assert got[-1].dropped == 992


def test_windows_closed_by_the_client_every_n_and_every_t_seconds(watcher):
    w = watcher()
    stop = threading.Event()

    def train():
        i = 0
        while not stop.is_set():
            w.observe("batch", loss=float(i), step=i)
            i += 1
            time.sleep(0.001)

    with connect(w.address, w.token) as client:
        t = threading.Thread(target=train, daemon=True)
        t.start()
        every = client.open_stream("batch", "scalar", {"name": "loss"}, reduce="max", every=7)
        timed = client.open_stream("batch", "scalar", {"name": "loss"}, reduce="min", seconds=0.2)
        hist = client.open_stream("batch", "scalar", {"name": "loss"}, reduce="histogram", reduce_params={"bins": 4},
                                  every=8)
        got = _poll_until(client, 3, timed)
        got += _poll_until(client, 10**9, timeout=0.5)
        stop.set()
        t.join()
    for v in [v for v in got if v.stream == every]:
        assert v.events == 7 and v.step - v.first_step == 6 and v.value == v.step
    windows = [v for v in got if v.stream == timed]
    assert len(windows) >= 3 and all(v.value == v.first_step for v in windows)
    assert all(b.first_step == a.step + 1 for a, b in zip(windows, windows[1:]))  # consecutive, no gap
    for v in [v for v in got if v.stream == hist]:
        assert v.kind == "histogram" and v.value["counts"].sum() == 8 and v.value["edges"][0] == v.first_step


def test_top_loss_with_topk_reducer_and_a_filter(watcher):
    w = watcher()
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(6, 1, 4, 4)).astype(np.float32), rng.random(6), rng.normal(size=(6, 3)),
                rng.integers(0, 3, 6)) for _ in range(4)]
    with connect(w.address, w.token) as client:
        w.observe("batch", loss=0.0)  # discovered
        top = client.open_stream("batch", "top_loss", {"k": 2}, reduce="topk", reduce_params={"k": 3}, until="epoch")
        big = client.open_stream("batch", "scalar", {"name": "loss"}, reduce="last", every=1,
                                 where={"op": ">", "value": 0.5})
        time.sleep(0.1)
        for x, losses, out, y in batches:
            w.observe("batch", inputs=x, losses=losses, outputs=out, targets=y, loss=float(losses.mean()))
        w.end_window("epoch")
        [v] = _poll_until(client, 1, top)
        kept = _poll_until(client, 1, big, timeout=1.0)
    x = np.concatenate([b[0] for b in batches])
    loss = np.concatenate([b[1] for b in batches])
    pred = np.concatenate([b[2].argmax(1) for b in batches])
    target = np.concatenate([b[3] for b in batches])
    in_top2 = np.concatenate([np.argsort(-b[1])[:2] + 6 * i for i, b in enumerate(batches)])
    best = in_top2[np.argsort(-loss[in_top2], kind="stable")[:3]]
    assert v.kind == "images" and v.events == 4
    np.testing.assert_array_equal(v.value["loss"], loss[best])
    np.testing.assert_array_equal(v.value["images"], x[best])
    np.testing.assert_array_equal(v.value["pred"], pred[best])
    np.testing.assert_array_equal(v.value["target"], target[best])
    assert [k.value for k in kept] == [float(b[1].mean()) for b in batches if b[1].mean() > 0.5]


def test_a_reconnecting_client_gets_its_streams_back(watcher):
    w = watcher(lease=0.3)
    stop = threading.Event()

    def train():
        while not stop.is_set():
            w.observe("batch", loss=1.0)
            time.sleep(0.002)

    def agent_streams(n):
        deadline = time.monotonic() + 10
        while w.stats()["streams"] != n and time.monotonic() < deadline:
            time.sleep(0.02)
        return w.stats()["streams"]

    t = threading.Thread(target=train, daemon=True)
    t.start()
    client = connect(w.address, w.token, heartbeat=3600.0)  # silent: the agent closes its streams after its lease
    try:
        a = client.open_stream("batch", "scalar", {"name": "loss"}, every=5)
        b = client.open_stream("batch", "scalar", {"name": "loss"}, reduce="mean", every=3)
        assert _poll_until(client, 1, a)
        assert agent_streams(0) == 0
        client.heartbeat = 0.05  # back: the next ping's answer lacks both streams, and the client re-opens them
        assert agent_streams(2) == 2 and client.resubscribed == 2
        client.poll()
        assert _poll_until(client, 2, a) and _poll_until(client, 2, b)
        client.heartbeat = 3600.0
        assert agent_streams(0) == 0
        client.reconnect()  # a new socket: the hello carries every stream the client holds
        assert w.stats()["streams"] == 2 and sorted(client.streams) == [a, b]
        client.poll()
        got = _poll_until(client, 2, a) + _poll_until(client, 2, b)
        assert {v.stream for v in got} == {a, b}
    finally:
        stop.set()
        client.close()


def test_commands_and_params_are_acknowledged(watcher):
    w = watcher()
    state = {"lr": 0.1, "stopped": False}
    w.command("stop", lambda: state.update(stopped=True))
    w.param("lr", lambda: state["lr"], lambda v: state.update(lr=float(v)))
    with connect(w.address, w.token) as client:
        assert client.info["params"] == {"lr": 0.1} and client.info["commands"] == ["stop"]
        assert client.send_command("lr", 0.02)["value"] == 0.02 and state["lr"] == 0.02
        assert client.send_command("lr")["value"] == 0.02  # read without setting
        assert client.send_command("stop")["ok"] and state["stopped"]
        with pytest.raises(StudioError, match="no command or parameter 'momentum'"):
            client.send_command("momentum", 0.9)
        with pytest.raises(StudioError, match="takes a number"):
            client.send_command("lr", [1, 2])
        client.open_stream("batch", "scalar", {"name": "loss"})
        assert w.stats()["streams"] == 1
    deadline = time.monotonic() + 5  # a closed client's streams end at once, not after the lease
    while w.stats()["streams"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert w.stats()["streams"] == 0 and w.lease == 30.0


def test_bad_specs_are_refused_with_what_to_do(watcher):
    w = watcher()
    with connect(w.address, w.token) as client:
        with pytest.raises(StudioError, match="unknown map step 'eval'"):
            client.open_stream("batch", "eval", {"code": "__import__('os')"})
        with pytest.raises(StudioError, match="reducer 'mean' does not apply to images"):
            client.open_stream("batch", "sample", reduce="mean")
        with pytest.raises(StudioError, match="needs parameter 'name'"):
            client.open_stream("batch", "scalar")
        with pytest.raises(StudioError, match="must be a int"):
            client.open_stream("batch", "sample", {"n": "8"})
        with pytest.raises(StudioError, match="give one window"):
            client.open_stream("batch", "scalar", {"name": "loss"}, every=2, seconds=1.0)
        assert client.streams == {}
        w.observe("batch", notloss=1.0)
        client.open_stream("batch", "scalar", {"name": "loss"})
        time.sleep(0.1)
        w.observe("batch", notloss=1.0)
        deadline = time.monotonic() + 5
        while not client.errors and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "observable 'loss' is not in this event" in client.errors[0]


def test_a_recorded_stream_replays_through_the_same_api(watcher, tmp_path):
    w = watcher()
    with connect(w.address, w.token) as client:
        w.observe("batch", loss=0.0)
        s = client.open_stream("batch", "scalar", {"name": "loss"}, reduce="histogram", reduce_params={"bins": 3},
                               every=3)
        m = client.open_stream("batch", "scalar", {"name": "loss"}, reduce="mean", every=3)
        client.record(s, tmp_path / "hist")
        client.record(m, tmp_path / "mean")
        time.sleep(0.1)
        for i in range(9):
            w.observe("batch", loss=float(i) ** 2, step=i)
        live = _poll_until(client, 3, s) + _poll_until(client, 3, m)
    stored = replay(tmp_path / "hist").poll() + replay(tmp_path / "mean", run="stored").poll()
    assert [v.stream for v in stored] == [s] * 3 + [m] * 3 and stored[-1].run == "stored"
    for a, b in zip(live, stored):
        assert (a.kind, a.step, a.first_step, a.window) == (b.kind, b.step, b.first_step, b.window)
        if a.kind == "scalar":
            assert a.value == b.value
        else:
            np.testing.assert_array_equal(a.value["counts"], b.value["counts"])
            np.testing.assert_array_equal(a.value["edges"], b.value["edges"])


def test_the_wire_refuses_pickles_and_object_arrays():
    import pickle

    with pytest.raises(WireError, match="pickles are never read"):
        decode([pickle.dumps({"type": "hello"})])
    with pytest.raises(WireError, match="object dtype"):
        encode({"type": "x"}, {"a": np.array([object()], dtype=object)})
    header, arrays = decode(encode({"type": "x", "v": np.float32(1.5)}, {"a": np.arange(3)}))
    assert header["v"] == 1.5 and arrays["a"].tolist() == [0, 1, 2]
    with pytest.raises(WireError, match="does not match"):
        decode(encode({"type": "x"}, {"a": np.arange(3)})[:1])


def test_the_agent_binds_loopback_and_a_token_per_run(watcher):
    a, b = watcher(), watcher()
    assert a.address.startswith("tcp://127.0.0.1:") and a.address != b.address
    assert len(a.token) == 32 and a.token != b.token


def test_gradient_norms_and_weight_histogram_of_a_torch_model(watcher):
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    w = watcher()
    with connect(w.address, w.token) as client:
        w.observe("batch", model=model)
        one = client.open_stream("batch", "grad_norm", {"layer": "2"}, reduce="mean", every=2)
        hist = client.open_stream("batch", "weight_histogram", {"layer": "0", "bins": 5}, every=1)
        time.sleep(0.1)
        expected = []
        for i in range(2):
            model.zero_grad()
            model(torch.randn(8, 4)).pow(2).mean().backward()
            expected.append(float(torch.linalg.vector_norm(torch.cat([p.grad.reshape(-1)
                                                                       for p in model[2].parameters()]))))
            weights = torch.cat([p.detach().reshape(-1) for p in model[0].parameters()]).numpy()
            w.observe("batch", model=model)
            with torch.no_grad():
                model[0].weight.add_(1.0)  # the histogram was taken before this change
        [g] = _poll_until(client, 1, one)
        hists = _poll_until(client, 2, hist)
    assert g.kind == "layers" and g.value["2"] == pytest.approx(np.mean(expected), rel=1e-6)
    counts, edges = np.histogram(weights.astype(np.float64), bins=5)
    np.testing.assert_array_equal(hists[1].value["counts"], counts)
    np.testing.assert_allclose(hists[1].value["edges"], edges, rtol=1e-6)
