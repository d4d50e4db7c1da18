"""Issue 13, kind 2: the output kind is read from the model, not assumed.

TorchScript models (``torch.jit.script(...).save``) ending in Softmax,
returning dicts and tuples, and multi-output regressors (torch, and a
scikit-learn RandomForestRegressor on two targets saved with skops). Each
test states the right value from the network itself or the direct library.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import studio
from studio.data.tabular import table_dataset
from studio.errors import StudioError
from tests.regressions.in_process import load, one_thread  # noqa: F401 -- autouse fixture

F = 4
NAMES = [f"f{i}" for i in range(F)]


_load = load


class SoftmaxNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(F, 3)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        return self.softmax(self.linear(x))


class DictNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(F, 3)

    def forward(self, x):
        return {"features": x, "logits": self.linear(x)}


class TupleNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(F, 3)

    def forward(self, x):
        return x.sum(dim=1, keepdim=True), self.linear(x)


class TwoOutputRegressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(F, 2)

    def forward(self, x):
        return self.linear(x)


def _save(net, tmp_path, name="m.pt"):
    torch.manual_seed(0)
    for p in net.parameters():
        nn.init.normal_(p, std=0.8)
    net = net.eval()
    path = tmp_path / name
    torch.jit.script(net).save(str(path))
    return net, path


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).normal(size=(12, F)).astype(np.float32)


@pytest.fixture(scope="module")
def table(x):
    return table_dataset(pd.DataFrame(x, columns=NAMES), name="t.csv", label=None)


def _net(net, x):
    with torch.no_grad():
        return net(torch.as_tensor(x))


# ---- outputs that already are probabilities ---------------------------------------------------
def test_softmax_model_gets_no_second_softmax(tmp_path, x):
    net, path = _save(SoftmaxNet(), tmp_path)
    model = _load(path, card={"feature_names": NAMES})
    want = _net(net, x).numpy()
    np.testing.assert_allclose(model.predict_proba(x), want, atol=1e-6)  # the network's own probabilities
    assert not np.allclose(model.predict_proba(x), torch.softmax(torch.as_tensor(want), 1).numpy(), atol=1e-3)
    assert any("already are probabilities" in n for n in model.notes)
    # the card can force a softmax
    forced = _load(path, card={"feature_names": NAMES, "outputs": "logits"})
    np.testing.assert_allclose(forced.predict_proba(x), torch.softmax(torch.as_tensor(want), 1).numpy(), atol=1e-6)
    assert not forced.notes
    # logits are never mistaken for probabilities
    logits_net, logits_path = _save(TwoOutputRegressor(), tmp_path, "logits.pt")
    plain = _load(logits_path, card={"feature_names": NAMES})
    assert plain.is_classifier and not plain.notes
    np.testing.assert_allclose(plain.predict_proba(x), torch.softmax(_net(logits_net, x), 1).numpy(), atol=1e-6)


def test_gradients_explain_the_networks_own_probability(tmp_path, x, table):
    """Integrated gradients on a Softmax-ended network: completeness against the network's output itself."""
    net, path = _save(SoftmaxNet(), tmp_path)
    model = _load(path, card={"feature_names": NAMES})
    exp = studio.explain(model, table, "integrated_gradients", rows=[0, 1], target=2,
                         params={"baseline": "zeros"}, cache=False)
    f = _net(net, x[[0, 1]])[:, 2] - _net(net, np.zeros((2, F), np.float32))[:, 2]
    np.testing.assert_allclose(exp.values.sum(axis=1), f.numpy(), atol=1e-4)


# ---- structured outputs -----------------------------------------------------------------------
def test_dict_output_named_by_the_card(tmp_path, x):
    net, path = _save(DictNet(), tmp_path)
    model = _load(path, card={"feature_names": NAMES, "output": "logits"})
    np.testing.assert_allclose(model.predict_proba(x), torch.softmax(_net(net, x)["logits"], 1).numpy(), atol=1e-6)
    with pytest.raises(StudioError, match=r"dict with keys 'features', 'logits'; set the card's 'output'"):
        _load(path, card={"feature_names": NAMES})
    with pytest.raises(StudioError, match="'scores' is not one of them"):
        _load(path, card={"feature_names": NAMES, "output": "scores"})


def test_tuple_output_named_by_the_card(tmp_path, x):
    net, path = _save(TupleNet(), tmp_path)
    model = _load(path, card={"feature_names": NAMES, "output": 1})
    np.testing.assert_allclose(model.predict_proba(x), torch.softmax(_net(net, x)[1], 1).numpy(), atol=1e-6)
    with pytest.raises(StudioError, match=r"tuple of 2 items \(tensor \[1, 1\], tensor \[1, 3\]\); set the card's 'output'"):
        _load(path, card={"feature_names": NAMES})


def test_card_output_field_is_checked():
    with pytest.raises(StudioError, match="'output' must be a dict key"):
        studio.load_model.__globals__["load_card"]({"output": [1]})
    with pytest.raises(StudioError, match="output_names"):
        studio.load_model.__globals__["load_card"]({"output_names": "a"})


# ---- multi-output regression ------------------------------------------------------------------
@pytest.fixture(scope="module")
def forest(tmp_path_factory):
    """A RandomForestRegressor on two targets (skops) and its table."""
    import skops.io as sio
    from sklearn.ensemble import RandomForestRegressor

    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3))
    y = np.column_stack([3 * x[:, 0] + 0.1 * x[:, 1], -2 * x[:, 2] + x[:, 1] ** 2])
    est = RandomForestRegressor(n_estimators=10, max_depth=4, random_state=0).fit(x, y)
    path = tmp_path_factory.mktemp("forest") / "forest.skops"
    sio.dump(est, path)
    frame = pd.DataFrame(x, columns=["x0", "x1", "x2"]).assign(y0=y[:, 0])
    return _load(path), est, table_dataset(frame, name="two.csv", label="y0")


def test_two_output_regressor_offers_both_outputs(forest):
    from studio.api import requested_target, resolve_target

    model, est, data = forest
    assert model.task == "regression" and model.output_names == ["output 0", "output 1"]
    np.testing.assert_allclose(model.output(data.x), est.predict(data.x))
    assert requested_target(model, data, None, "local") == 0
    assert requested_target(model, data, "output 1", "global") == 1
    assert resolve_target(model, data, 1, [0, 3], "local") == [1, 1]
    with pytest.raises(StudioError, match="out of range; the model has 2 outputs"):
        requested_target(model, data, 2, "local")


@pytest.mark.parametrize("target", [0, 1])
def test_shap_explains_the_requested_output(forest, target):
    import shap

    model, est, data = forest
    exp = studio.explain(model, data, "shap", rows=[0, 1], target=target, params={"background": 30}, cache=False)
    assert exp.target == [target, target]
    bg = data.x[np.sort(np.random.default_rng(0).choice(len(data), 30, replace=False))]
    sv = shap.TreeExplainer(est, data=bg, feature_perturbation="interventional")(data.x[[0, 1]], check_additivity=False)
    np.testing.assert_allclose(exp.values, sv.values[:, :, target], atol=1e-8)
    np.testing.assert_allclose(exp.base_values + exp.values.sum(axis=1), est.predict(data.x[[0, 1]])[:, target],
                               atol=1e-8)


@pytest.mark.parametrize("target", [0, 1])
def test_pdp_of_the_requested_output_equals_sklearns(forest, target):
    from sklearn.inspection import partial_dependence

    model, est, data = forest
    exp = studio.explain(model, data, "pdp", target=target, params={"features": ["x2"], "max_rows": 0}, cache=False)
    curve = exp.curves[0]
    want = partial_dependence(est, data.x, [2], custom_values={2: np.asarray(curve.grid[0])}, method="brute")
    np.testing.assert_allclose(curve.average, want["average"][target], atol=1e-10)
    assert exp.target == [target] and exp.output_names == ["output 0", "output 1"]


def test_lime_and_surrogate_follow_the_target(forest):
    model, est, data = forest
    # output 0 is mostly 3 x0, output 1 mostly -2 x2: each target's largest LIME weight is its own feature
    for target, feature in ((0, 0), (1, 2)):
        lime = studio.explain(model, data, "lime", rows=[0], target=target, params={"num_samples": 500}, cache=False)
        assert np.argmax(np.abs(lime.values[0])) == feature and lime.target == [target]
    ebm = studio.explain(model, data, "ebm_surrogate", target=1,
                         params={"max_rounds": 30, "outer_bags": 1, "interactions": 0}, cache=False)
    assert ebm.checks["fidelity"] > 0.5  # fitted to output 1: a surrogate of output 0 scores far lower on it
    shape = {c.feature: np.ptp(c.average) for c in ebm.curves}
    assert shape["x2"] > shape["x0"]


def test_torch_two_output_regressor_names_and_gradients(tmp_path, x, table):
    net, path = _save(TwoOutputRegressor(), tmp_path)
    card = {"feature_names": NAMES, "task": "regression", "output_names": ["y1", "y2"]}
    model = _load(path, card=card)
    assert model.output_names == ["y1", "y2"]
    np.testing.assert_allclose(model.output(x), _net(net, x).numpy(), atol=1e-6)
    exp = studio.explain(model, table, "integrated_gradients", rows=[0], target="y2", params={"baseline": "zeros"},
                         cache=False)
    w = net.linear.weight.detach().numpy()[1]
    np.testing.assert_allclose(exp.values[0], w * x[0], atol=1e-4)  # IG of a linear output = w * (x - 0)
    with pytest.raises(StudioError, match="2 output names but the model returns 2|lists 3 output names"):
        _load(path, card=card | {"output_names": ["a", "b", "c"]})


def test_charts_name_the_explained_output(forest):
    from studio import charts

    model, _, data = forest
    shap = studio.explain(model, data, "shap", rows=[0], target=1, params={"background": 20}, cache=False)
    title = charts.attribution_bars(shap).to_dict()["encoding"]["x"]["title"]
    title = title if isinstance(title, str) else " ".join(title)  # long titles wrap into lines
    assert title == "contribution to output 1"
    pdp = studio.explain(model, data, "pdp", target=0, params={"features": ["x2"], "grid_resolution": 5}, cache=False)
    assert "output: output 0" in charts.curve_chart([pdp], "x2").to_dict()["title"]["subtitle"]


def test_the_sandboxed_model_carries_notes_and_output_names(tmp_path, x, forest):
    """Through the default loader (a worker process), the parent sees what the probe read."""
    net, path = _save(SoftmaxNet(), tmp_path)
    model = studio.load_model(path, card={"feature_names": NAMES}, trust=True)
    try:
        assert any("already are probabilities" in n for n in model.notes)
        np.testing.assert_allclose(model.predict_proba(x), _net(net, x).numpy(), atol=1e-6)
    finally:
        getattr(model, "close", lambda: None)()
    _, est, data = forest
    import skops.io as sio

    sio.dump(est, tmp_path / "forest.skops")
    remote = studio.load_model(tmp_path / "forest.skops", card={"output_names": ["first", "second"]})
    try:
        assert remote.output_names == ["first", "second"]
        exp = studio.explain(remote, data, "pdp", target="second", params={"features": ["x2"], "grid_resolution": 5},
                             cache=False)
        assert exp.target == [1] and exp.output_names == ["first", "second"]
    finally:
        getattr(remote, "close", lambda: None)()


def test_pages_offer_each_output_and_show_the_notes(tmp_path, forest):
    """Local page: a two-output regressor's outputs are the targets; Load page: the probe's notes are shown."""
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    def app(model, data):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
        at.session_state["model"], at.session_state["data"] = model, data.aligned_to(model)
        at.session_state["source"] = "test"
        return at.run()

    model, _, data = forest
    at = app(model, data)
    at.switch_page("pages/local.py").run()
    assert not at.exception
    select = at.selectbox(key="local-target")
    assert list(select.options) == ["output 0", "output 1"]
    select.set_value("output 1").run()
    at.multiselect(key="local-methods").set_value(["shap"]).run()
    [button] = [b for b in at.button if b.label == "Run explainers"]
    button.click().run()
    assert not at.exception
    [result] = [r.explanation for r in at.session_state["results"].values() if r.method == "shap"]
    assert result.target == [1]
    net, path = _save(SoftmaxNet(), tmp_path)
    softmax = _load(path, card={"feature_names": NAMES})
    table = table_dataset(pd.DataFrame(np.zeros((3, F)), columns=NAMES), name="z.csv", label=None)
    at = app(softmax, table)
    at.switch_page("pages/load.py").run()
    assert not at.exception
    assert any("already are probabilities" in i.value for i in at.info)
