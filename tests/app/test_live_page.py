"""AppTest of the Live page with a real agent: a torch training loop runs in a thread of this test."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pytest
import torch
from streamlit.testing.v1 import AppTest

from studio.ui.state import OPEN_PAGE
from studio.watch import Watcher
from tests.conftest import ROOT

APP = str(ROOT / "app.py")


@pytest.fixture
def training():
    """A small torch loop observed by a Watcher; yields the watcher and a dict of what the loop saw."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(32, 1, 4, 4), torch.randint(0, 3, (32,))
    w = Watcher("thread-run", announce=False)
    stop = threading.Event()
    seen = {"losses": [], "stopped": False}
    w.command("stop", stop.set)
    w.param("lr", lambda: opt.param_groups[0]["lr"], lambda v: opt.param_groups[0].update(lr=float(v)))

    def loop():
        step = 0
        while not stop.is_set() and step < 20_000:
            out = model(x)
            losses = torch.nn.functional.cross_entropy(out, y, reduction="none")
            opt.zero_grad()
            losses.mean().backward()
            w.observe("batch", loss=losses.mean().item(), losses=losses.detach(), model=model, inputs=x,
                      outputs=out.detach(), targets=y, step=step)
            seen["losses"].append(losses.mean().item())
            opt.step()
            step += 1
            if step % 10 == 0:
                w.end_window("epoch")
            time.sleep(0.005)
        seen["stopped"] = stop.is_set()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    yield w, seen, stop
    stop.set()
    t.join(10)
    w.close()


def _ok(at):
    assert not at.exception, [e.value for e in at.exception]


def _button(at, label):
    [b] = [b for b in at.button if b.label == label]
    return b


def _chart_rows(at):
    return [pa.ipc.open_stream(d.data.data).read_all().to_pandas() for c in at.get("vega_lite_chart")
            for d in c.proto.datasets]


def _wait_for(at, predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        _ok(at)
        if predicate(at):
            return True
        time.sleep(0.5)
    return False


def _stored_run(path):
    """A recording of an earlier run's loss stream (what Client.record writes)."""
    from studio.watch import Recorder, WindowValue

    rec = Recorder(path, run="yesterday", stream="s1", address="",
                   spec={"event": "batch", "map": "scalar", "params": {"name": "loss"}, "reduce": "mean",
                         "reduce_params": {}, "window": {"every": 5}, "filter": None, "kind": "scalar"})
    for i in range(6):
        rec.write(WindowValue("s1", "yesterday", "scalar", 2.0 - 0.1 * i, step=5 * i + 4, first_step=5 * i, window=i,
                              events=5))
    rec.close()


def test_live_page_attaches_opens_streams_draws_by_kind_and_sends_commands(training, tmp_path):
    w, seen, stop = training
    _stored_run(tmp_path / "yesterday")
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[OPEN_PAGE] = "live"  # the router opens Live first (no sample model loads on the Load page)
    at.run()
    _ok(at)
    assert at.title[0].value == "Live" and any("No run attached" in i.value for i in at.info)

    at.text_input(key="live-token").input("0" * 32)
    at.text_input(key="live-address").input(w.address)
    _button(at, "Attach").click().run()
    assert any("wrong token" in e.value for e in at.error)
    at.text_input(key="live-token").input(w.token)
    _button(at, "Attach").click().run()
    _ok(at)
    assert any("Attached to thread-run" in s.value for s in at.success)

    # a scalar stream: loss, mean over every 5 batches, on the chart "loss"
    at.selectbox(key="live-map").select("scalar").run()
    at.selectbox(key="live-p-scalar-name").select("loss")
    at.selectbox(key="live-reduce").select("mean")
    at.radio(key="live-window").set_value("every N events").run()
    at.number_input(key="live-every").set_value(5)
    at.text_input(key="live-chart").input("loss")
    _button(at, "Open stream").click().run()
    _ok(at)
    # per-layer gradient norms (multi-line) and the top examples by loss (image grid)
    at.selectbox(key="live-map").select("grad_norm").run()
    at.selectbox(key="live-reduce").select("max")
    at.text_input(key="live-chart").input("gradients")
    _button(at, "Open stream").click().run()
    at.selectbox(key="live-map").select("top_loss").run()
    at.selectbox(key="live-reduce").select("topk")
    at.radio(key="live-window").set_value("the script (end_window)").run()
    at.text_input(key="live-chart").input("mistakes")
    _button(at, "Open stream").click().run()
    _ok(at)
    assert len(at.session_state["live"].views) == 3
    # a stored run on the same chart as the live loss
    at.text_input(key="live-replay-path").input(str(tmp_path / "yesterday"))
    at.text_input(key="live-replay-chart").input("loss")
    _button(at, "Add").click().run()
    _ok(at)
    assert any("Added yesterday (stored)" in s.value for s in at.success)

    def drawn(at):
        frames = _chart_rows(at)
        live = [f[~f["series"].str.startswith("yesterday")] for f in frames]
        return len(frames) >= 2 and all(len(f) >= 3 for f in live) and len(at.image) >= 1
    assert _wait_for(at, drawn), [len(f) for f in _chart_rows(at)]
    loss_frame, grad_frame = _chart_rows(at)[:2]
    assert set(grad_frame["layer"]) == {"1", "3"}  # the two Linear layers, one line each
    stored = loss_frame["series"].str.startswith("yesterday (stored)")
    assert loss_frame[stored]["value"].tolist() == pytest.approx([2.0 - 0.1 * i for i in range(6)])
    loss_frame = loss_frame[~stored]
    assert len(loss_frame) >= 3 and loss_frame["series"].str.startswith("thread-run").all()
    for _, row in loss_frame.iterrows():  # each point is the mean of the 5 losses the loop saw
        first = int(row["step"]) - 4
        assert row["value"] == pytest.approx(sum(seen["losses"][first:first + 5]) / 5, rel=1e-12)
    captions = at.image[0].proto.imgs
    assert len(captions) == 8 and all("loss" in i.caption and "pred" in i.caption for i in captions)

    # commands: set the learning rate, then stop; each is acknowledged
    at.number_input(key="live-param-thread-run-lr").set_value(0.025)
    _button(at, "Set lr").click().run()
    _ok(at)
    assert any("lr = 0.025 acknowledged" in s.value for s in at.success)
    _button(at, "stop").click().run()
    assert any("stop acknowledged" in s.value for s in at.success)
    deadline = time.monotonic() + 10
    while not seen["stopped"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen["stopped"]
    for client in at.session_state["live"].runs.values():
        client.close()
