"""A real training subprocess with the Watcher embedded, and a client attached to it over loopback.

Streams opened mid-run deliver windows equal to the same reduction of the process's own log; a learning-rate
command is acknowledged and used by the following batches; a stop command ends training early; a wrong token
and a pickle are refused while the process keeps training.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import zmq

from studio.errors import StudioError
from studio.watch import connect
from tests.watch.conftest import read_log

LAYERS = {"conv", "fc1", "fc2"}


def _collect(client, stream, n, timeout=30.0):
    import time

    got, deadline = [], time.monotonic() + timeout
    while len([v for v in got if v.stream == stream]) < n and time.monotonic() < deadline:
        got += client.poll(0.5)
    assert len([v for v in got if v.stream == stream]) >= n, f"only {len(got)} windows in {timeout} s"
    return got


def test_wrong_token_is_refused(trainer):
    with pytest.raises(StudioError, match="wrong token"):
        connect(trainer["address"], "0" * 32, timeout=10)
    assert trainer["proc"].poll() is None


def test_a_pickle_is_refused_and_the_agent_keeps_running(trainer):
    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(trainer["address"])
    try:
        sock.send_multipart([pickle.dumps({"type": "hello", "token": trainer["token"], "x": Evil()})])
        assert sock.poll(10_000), "no answer to a pickle"
        reply = sock.recv_multipart()
        assert b'"refused"' in reply[0] and b"not a watch message" in reply[0]
        # a JSON header with the token whose array frame is a pickled object array is refused too
        bad = np.array([Evil()], dtype=object)
        import io

        buf = io.BytesIO()
        np.save(buf, bad, allow_pickle=True)
        sock.send_multipart([b'{"type": "hello", "token": "%s", "client": "abcd", "arrays": ["a"]}'
                             % trainer["token"].encode(), buf.getvalue()])
        assert sock.poll(10_000)
        assert b"pickle-free" in sock.recv_multipart()[0]
    finally:
        sock.close()
        ctx.term()
    with connect(trainer["address"], trainer["token"], timeout=10) as client:  # still answering
        assert client.run == "digits-cnn"
    assert trainer["proc"].poll() is None


def test_streams_learning_rate_and_stop_on_a_real_training_process(trainer):
    proc = trainer["proc"]
    client = connect(trainer["address"], trainer["token"], timeout=10)
    assert set(client.info["seen"].get("batch", {})) >= {"loss", "model", "step", "inputs"}
    assert client.info["commands"] == ["stop"] and client.info["params"]["lr"] == pytest.approx(0.05)
    loss = client.open_stream("batch", "scalar", {"name": "loss"}, reduce="mean", until="epoch")
    grad = client.open_stream("batch", "grad_norm", {}, reduce="max", every=4)
    got = _collect(client, loss, 3)

    ack = client.send_command("lr", 0.01)
    assert ack["ok"] and ack["value"] == pytest.approx(0.01)
    with pytest.raises(StudioError, match="refused lr=-1"):
        client.send_command("lr", -1)
    got += _collect(client, loss, 3)
    stopped = client.send_command("stop")
    assert stopped["ok"]
    assert proc.wait(30) == 0
    got += client.poll(0.2)
    client.close()

    log = read_log(trainer["log"])
    assert log[-1]["stopped"] is True
    batches = {r["step"]: r for r in log if "step" in r}
    losses = [v for v in got if v.stream == loss]
    grads = [v for v in got if v.stream == grad]
    assert len(losses) >= 6 and len(grads) >= 6
    for v in losses:  # mean over the window's batches, as the process logged them
        steps = range(v.first_step, v.step + 1)
        assert v.events == len(steps)
        assert len({batches[s]["epoch"] for s in steps}) == 1  # a window is (part of) one epoch
        assert v.value == pytest.approx(np.mean([batches[s]["loss"] for s in steps]), rel=1e-12)
    for v in grads:  # max over each 4 batches of the per-layer norms the process computed itself
        steps = range(v.first_step, v.step + 1)
        assert v.kind == "layers" and set(v.value) == LAYERS and v.events == 4 == len(steps)
        for layer in LAYERS:
            assert v.value[layer] == pytest.approx(max(batches[s]["grad"][layer] for s in steps), rel=1e-6)
    # the learning rate: one switch from 0.05 to 0.01, acknowledged by the setter, every later batch uses it
    lrs = [batches[s]["lr"] for s in sorted(batches)]
    switch = lrs.index(0.01)
    assert set(lrs[:switch]) == {0.05} and set(lrs[switch:]) == {0.01}
    [set_at] = [r["at_step"] for r in log if "lr_set" in r]
    assert switch in (set_at, set_at + 1)
    epochs_after = {batches[s]["epoch"] for s in sorted(batches)[switch:]}
    assert len(epochs_after) >= 2  # whole epochs ran at the new rate before the stop
    # stopped early: far fewer epochs than --epochs, right after the stop command
    assert log[-1]["end"] < 1000
