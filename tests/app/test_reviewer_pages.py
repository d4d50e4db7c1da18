"""Pages as a reviewer reads them: the explained class named and shared, classes and units in words,
regression targets as distributions, metrics labelled with their data (issue 14)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

import studio
from tests.app.test_pages import _app, _captions, _ok, _press
from tests.app.uploads import wine_files


@pytest.fixture(scope="module")
def wine_without_class_0(tmp_path_factory):
    """A 3-class model (cultivars 0, 1, 2) and data holding only cultivars 1 and 2."""
    files = wine_files()
    d = tmp_path_factory.mktemp("wine")
    (d / "wine.skops").write_bytes(files["model"])
    (d / "wine.card.json").write_bytes(files["card"])
    frame = pd.read_csv(io.BytesIO(files["csv"]))
    frame = frame[frame["target"] != "cultivar class_0"]
    frame.to_csv(d / "wine.csv", index=False)
    model = studio.load_model(d / "wine.skops", card=d / "wine.card.json")
    return model, studio.load_dataset(d / "wine.csv", feature_names=model.feature_names)


def test_the_explained_class_is_one_control_shared_by_local_and_global(gbt, table):
    at = _app(gbt, table, row=3)
    at.switch_page("pages/local.py").run()
    _ok(at)
    assert at.selectbox(key="local-target").value == "predicted class"
    assert any("each row's predicted class" in c for c in _captions(at))
    at.switch_page("pages/global.py").run()
    _ok(at)
    # global methods need one class: the positive class, and the caption says why
    assert at.selectbox(key="global-target").value == "benign"
    assert any('"benign"' in c and "Local explains each row" in c for c in _captions(at)), _captions(at)
    at.selectbox(key="global-target").select("malignant").run()
    at.switch_page("pages/local.py").run()
    _ok(at)
    assert at.selectbox(key="local-target").value == "malignant"  # shared: picked on Global, explained on Local
    assert any('"malignant"' in c and "Global explanations page explains the same class" in c for c in _captions(at))


def test_a_three_class_ebm_on_data_without_class_0_has_a_class_to_fit(wine_without_class_0):
    model, data = wine_without_class_0
    at = _app(model, data)
    at.switch_page("pages/global.py").run()
    _ok(at)
    picker = at.selectbox(key="global-target")
    assert list(picker.options) == model.class_names and picker.value != model.class_names[0]
    at.multiselect(key="global-methods").set_value(["ebm"]).run()
    at.number_input(key="global-ebm-max_rounds").set_value(50).run()
    at.number_input(key="global-ebm-outer_bags").set_value(1).run()
    at.number_input(key="global-ebm-interactions").set_value(0).run()
    _press(at, "Run explainers")
    _ok(at)
    assert not at.error, [e.value for e in at.error]
    [ebm] = [r.explanation for r in at.session_state["results"].values() if r.method == "ebm"]
    assert model.class_names[ebm.target[0]] == picker.value


def test_data_page_names_classes_and_draws_a_regression_target_as_a_distribution(gbt, table):
    import json

    at = _app(gbt, table)
    at.switch_page("pages/data.py").run()
    _ok(at)
    [balance] = at.get("vega_lite_chart")
    raw = b"".join(d.data.data for d in balance.proto.datasets)  # the chart's rows (Arrow)
    assert json.loads(balance.proto.spec)["title"] == "Class balance"
    assert b"malignant" in raw and b"benign" in raw  # the model's names, not 0/1

    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["price"] = x @ [3.0, -2.0, 1.0] + rng.normal(scale=0.1, size=300)
    model = studio.wrap_model(Ridge().fit(frame[["a", "b", "c"]], frame["price"]))
    data = studio.data.tabular.table_dataset(frame, name="prices.csv", label="price")
    at = _app(model, data)
    at.switch_page("pages/data.py").run()
    _ok(at)
    [hist] = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert hist["title"]["text"] == "Target: price" and hist["encoding"]["x"]["bin"] == "binned"
    assert not any("imbalance" in w.value or "class" in w.value for w in at.warning)
    assert any("quantity (regression)" in c for c in _captions(at))
    at.switch_page("pages/local.py").run()
    _ok(at)
    import re

    shown = [m.value for m in at.markdown if "prediction **" in m.value]
    [value] = re.findall(r"prediction \*\*([^*]+)\*\*", shown[0])
    value = value.replace("\\", "")  # markdown escapes the point
    assert float(value) == pytest.approx(model.output(data.x[:1])[0, 0], rel=1e-3)
    assert len(value.lstrip("-").replace(".", "").lstrip("0")) <= 4, value  # four figures, not fifteen


def test_model_page_says_which_data_each_metric_is_on(cnn, digits):
    at = _app(cnn, digits)
    at.switch_page("pages/model.py").run()
    _ok(at)
    assert any("From the model card" in c and "held" in c for c in _captions(at))
    assert any(m.value.startswith("**Metrics on the loaded data**: digits") for m in at.markdown)
