"""Issue 13, kind 3: what the load probe reads (dtype, batch limit) instead of advising to "fix the card".

TorchScript models saved with ``torch.jit.script(...).save``: a float64
network (``model.double()``), one that takes float64 without parameters
saying so, and networks that run one row per call. The right values come
from the network itself (row by row, in its dtype) or from a batching twin
with the same weights.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import studio
from studio.data.tabular import table_dataset
from tests.regressions.in_process import load, one_thread  # noqa: F401 -- autouse fixture

F = 4
NAMES = [f"f{i}" for i in range(F)]
CARD = {"feature_names": NAMES}


_load = load


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(F, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)))


class FlatMlp(Mlp):
    """The same network, written for one row: ``x.view(-1)`` (fails on a batch of two)."""

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x.view(-1))))


class OneRowOnly(Mlp):
    """Asserts a batch of one."""

    def forward(self, x):
        assert x.shape[0] == 1, "one row at a time"
        return self.out(torch.tanh(self.hidden(x)))


class DoubleOnly(nn.Module):
    """No parameters; refuses anything but float64."""

    def forward(self, x):
        if x.dtype != torch.float64:
            raise RuntimeError("expected scalar type Double but found Float")
        return torch.stack([x.sum(dim=1), (x * x).sum(dim=1)], dim=1)


def _weights(net):
    torch.manual_seed(0)
    for p in net.parameters():
        nn.init.normal_(p, std=0.7)
    return net.eval()


def _save(net, tmp_path, name):
    path = tmp_path / name
    torch.jit.script(net).save(str(path))
    return path


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).normal(size=(6, F))


@pytest.fixture(scope="module")
def table(x):
    return table_dataset(pd.DataFrame(x, columns=NAMES), name="t.csv", label=None)


# ---- dtype -----------------------------------------------------------------------------------
def test_float64_network_is_fed_float64(tmp_path, x, table):
    net = _weights(Mlp()).double()
    model = _load(_save(net, tmp_path, "double.pt"), card=CARD)  # was: "got Float and Double; fix the card"
    assert str(model.input_dtype) == "torch.float64" and any("float64" in n for n in model.notes)
    with torch.no_grad():
        want = torch.softmax(net(torch.as_tensor(x)), 1).numpy()
    np.testing.assert_allclose(model.predict_proba(x), want, atol=1e-12)  # computed in float64 throughout
    # the Captum path (torch_module) casts too: saliency equals torch's own float64 gradient
    exp = studio.explain(model, table, "saliency", rows=[0, 1], target=2, params={"absolute": False}, cache=False)
    t = torch.as_tensor(x[[0, 1]]).requires_grad_(True)
    torch.softmax(net(t), 1)[:, 2].sum().backward()
    np.testing.assert_allclose(exp.values, t.grad.numpy(), atol=1e-6)
    ig = studio.explain(model, table, "integrated_gradients", rows=[0], target=1, cache=False)
    assert ig.checks["completeness_gap"] < 0.01


def test_parameterless_float64_network_is_found_by_retrying_the_probe(tmp_path, x):
    model = _load(_save(DoubleOnly(), tmp_path, "double_only.pt"),
                              card=CARD | {"task": "regression", "output_names": ["sum", "sum of squares"]})
    assert str(model.input_dtype) == "torch.float64"
    np.testing.assert_allclose(model.output(x), np.column_stack([x.sum(1), (x * x).sum(1)]), atol=1e-6)


# ---- batch limit -----------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [FlatMlp, OneRowOnly])
def test_one_row_model_runs_one_row_per_call(tmp_path, x, table, cls):
    net = _weights(cls())
    twin = _weights(Mlp())  # same weights, batches
    twin.load_state_dict(net.state_dict())
    model = _load(_save(net, tmp_path, f"{cls.__name__}.pt"), card=CARD)
    assert model.max_batch == 1
    assert any("one row per call" in n and "slower" in n for n in model.notes)  # the cost, stated
    with torch.no_grad():
        want = torch.softmax(twin(torch.as_tensor(x, dtype=torch.float32)), 1).numpy()
    np.testing.assert_allclose(model.predict_proba(x), want, atol=1e-6)
    # tabular methods that batch internally (PDP) and Captum's methods run, equal to the batching twin's
    batching = studio.wrap_model(twin, card=CARD)
    assert batching.max_batch is None and not batching.notes
    for method, params in (("integrated_gradients", {"n_steps": 16}), ("saliency", {})):
        got = studio.explain(model, table, method, rows=[0, 3], target=1, params=params, cache=False)
        ref = studio.explain(batching, table, method, rows=[0, 3], target=1, params=params, cache=False)
        np.testing.assert_allclose(got.values, ref.values, atol=1e-5)
    pdp = studio.explain(model, table, "pdp", target=1, params={"features": [NAMES[0]], "grid_resolution": 5},
                         cache=False)
    ref = studio.explain(batching, table, "pdp", target=1, params={"features": [NAMES[0]], "grid_resolution": 5},
                         cache=False)
    np.testing.assert_allclose(pdp.curves[0].average, ref.curves[0].average, atol=1e-6)


def test_one_row_model_gets_one_row_per_call(tmp_path, x):
    """Every call the network sees holds one row."""
    calls = []

    class Counting(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            calls.append(x.shape[0])
            return self.inner(x)

    net = torch.jit.load(str(_save(_weights(FlatMlp()), tmp_path, "flat.pt")))
    model = studio.wrap_model(Counting(net), card=CARD)
    calls.clear()
    model.output(x)
    assert calls == [1] * len(x)


def test_onnx_exported_with_a_fixed_batch_of_one_runs_one_row_per_call(tmp_path, x, table):
    """``torch.onnx.export`` without dynamic shapes fixes the batch at the example's 1 row (the TorchScript-based
    exporter, ``dynamo=False``: the same fixed shape as the default exporter, 50x quicker here): onnxruntime refuses a
    batch of 3 at the probe, so the model runs one row per call (the cost stated in its notes) and answers like
    the torch network it came from, through the methods that batch internally."""
    net = _weights(Mlp())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (torch.zeros(1, F),), str(tmp_path / "batch1.onnx"), dynamo=False)
    model = _load(tmp_path / "batch1.onnx", card=CARD | {"task": "classification"})
    assert model.format == "onnx" and model.max_batch == 1
    assert any("one row per call" in n and "one model call per evaluated row" in n for n in model.notes)
    with torch.no_grad():
        want = torch.softmax(net(torch.as_tensor(x, dtype=torch.float32)), 1).numpy()
    np.testing.assert_allclose(model.predict_proba(x), want, atol=1e-5)
    batching = studio.wrap_model(net, card=CARD)
    params = {"features": [NAMES[1]], "grid_resolution": 5}
    got = studio.explain(model, table, "pdp", target=2, params=params, cache=False)
    ref = studio.explain(batching, table, "pdp", target=2, params=params, cache=False)
    np.testing.assert_allclose(got.curves[0].average, ref.curves[0].average, atol=1e-5)
    got = studio.explain(model, table, "ice", target=0, params=params | {"max_rows": 4}, cache=False)
    ref = studio.explain(batching, table, "ice", target=0, params=params | {"max_rows": 4}, cache=False)
    np.testing.assert_allclose(got.curves[0].individual, ref.curves[0].individual, atol=1e-5)
