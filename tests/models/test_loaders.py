"""Every model format loads, round trips, and predicts like its own library."""

from __future__ import annotations

import json

import numpy as np
import pytest

import studio
from studio.errors import StudioError
from tests.conftest import MODELS


def test_skops_sample_matches_sklearn(gbt, table):
    import skops.io as sio

    native = sio.load(MODELS / "tabular_gbt.skops", trusted=sio.get_untrusted_types(file=MODELS / "tabular_gbt.skops"))
    expected = native.predict_proba(table.frame)
    np.testing.assert_allclose(gbt.predict_proba(table.x), expected, rtol=0, atol=1e-12)
    assert gbt.format == "skops" and gbt.task == "classification"
    assert gbt.class_names == ["malignant", "benign"]
    assert gbt.feature_names == table.feature_names


@pytest.mark.parametrize(
    "make",
    [
        lambda: __import__("sklearn.ensemble", fromlist=["x"]).HistGradientBoostingClassifier(max_iter=20),
        lambda: __import__("sklearn.ensemble", fromlist=["x"]).RandomForestClassifier(n_estimators=5, random_state=0),
        lambda: __import__("sklearn.linear_model", fromlist=["x"]).LogisticRegression(max_iter=5000),
    ],
    ids=["hist_gbt", "forest", "logistic"],
)
def test_skops_round_trip(tmp_path, table, make):
    import skops.io as sio

    est = make().fit(table.frame, table.y)
    path = tmp_path / "m.skops"
    sio.dump(est, path)
    model = studio.load_model(path)
    np.testing.assert_allclose(model.predict_proba(table.x[:50]), est.predict_proba(table.frame[:50]), atol=1e-12)
    assert (model.predict(table.x[:50]) == est.predict(table.frame[:50])).all()


def test_skops_regression_pipeline(tmp_path):
    import skops.io as sio
    from sklearn.datasets import load_diabetes
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True)
    est = make_pipeline(StandardScaler(), Ridge()).fit(x, y)
    sio.dump(est, tmp_path / "r.skops")
    model = studio.load_model(tmp_path / "r.skops")
    assert model.task == "regression" and model.class_names is None
    np.testing.assert_allclose(model.predict(x[:20]), est.predict(x[:20]), rtol=1e-12)


def test_skops_untrusted_type_refused_and_named(tmp_path):
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.linear_model import LogisticRegression

    import operator

    est = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression()).fit(np.random.rand(20, 3), [0, 1] * 10)
    sio.dump(est, tmp_path / "f.skops")
    with pytest.raises(StudioError, match="_operator.neg"):
        studio.load_model(tmp_path / "f.skops")


def test_tree_bounds_check_refuses_crafted_tree(tmp_path, table):
    """A tree whose child index points past the end is refused before use."""
    from sklearn.tree import DecisionTreeClassifier

    from studio.models import check_tree_bounds

    est = DecisionTreeClassifier(max_depth=3, random_state=0).fit(table.x, table.y)
    check_tree_bounds(est)  # a genuine tree passes
    state = est.tree_.__getstate__()
    nodes = state["nodes"].copy()
    internal = np.nonzero(nodes["left_child"] != -1)[0]
    nodes["left_child"][internal[0]] = 10_000
    state["nodes"] = nodes
    est.tree_.__setstate__(state)
    with pytest.raises(StudioError, match="malformed tree"):
        check_tree_bounds(est)


def test_torchscript_matches_torch(mlp, table):
    import torch

    net = torch.jit.load(str(MODELS / "tabular_mlp.pt"))
    with torch.no_grad():
        logits = net(torch.tensor(table.x[:40], dtype=torch.float32))
    np.testing.assert_allclose(mlp.predict_proba(table.x[:40]), torch.softmax(logits, 1).numpy(), rtol=1e-5, atol=1e-6)
    assert mlp.differentiable and mlp.format == "torchscript"


def test_onnx_matches_torchscript(mlp, mlp_onnx, table):
    np.testing.assert_allclose(mlp_onnx.predict_proba(table.x), mlp.predict_proba(table.x), atol=1e-5)
    assert mlp_onnx.format == "onnx" and not mlp_onnx.differentiable


def test_image_cnn_card_normalisation_applied_once(cnn, digits):
    import torch

    net = torch.jit.load(str(MODELS / "image_cnn.pt"))
    card = json.loads((MODELS / "image_cnn.card.json").read_text())
    x = torch.tensor(digits.x[:16])
    mean = torch.tensor(card["mean"]).reshape(1, -1, 1, 1)
    std = torch.tensor(card["std"]).reshape(1, -1, 1, 1)
    with torch.no_grad():
        expected = torch.softmax(net((x - mean) / std), 1).numpy()
    np.testing.assert_allclose(cnn.predict_proba(digits.x[:16]), expected, rtol=1e-5, atol=1e-6)
    assert (cnn.predict(digits.x) == digits.y).mean() > 0.85


def test_state_dict_with_studio_architecture_equals_torchscript(cnn, digits):
    model = studio.load_model(MODELS / "image_cnn_state.pt")
    assert model.format == "state_dict"
    np.testing.assert_allclose(model.output(digits.x[:32]), cnn.output(digits.x[:32]), atol=1e-6)


def test_torchvision_state_dict_infers_num_classes(tmp_path):
    import torch
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=3).eval()
    torch.save(net.state_dict(), tmp_path / "r.pt")
    card = {"task": "classification", "architecture": "resnet18", "input_size": [3, 64, 64]}
    model = studio.load_model(tmp_path / "r.pt", card=card)
    x = np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)
    with torch.no_grad():
        expected = torch.softmax(net(torch.tensor(x)), 1).numpy()
    np.testing.assert_allclose(model.predict_proba(x), expected, rtol=1e-4, atol=1e-6)
    assert model.class_names == ["0", "1", "2"]


def test_safetensors_state_dict(tmp_path, cnn, digits):
    import torch
    from safetensors.torch import save_file

    state = torch.load(MODELS / "image_cnn_state.pt", weights_only=True)
    save_file(state, tmp_path / "cnn.safetensors")
    card = json.loads((MODELS / "image_cnn_state.card.json").read_text())
    model = studio.load_model(tmp_path / "cnn.safetensors", card=card)
    np.testing.assert_allclose(model.output(digits.x[:8]), cnn.output(digits.x[:8]), atol=1e-6)


def test_state_dict_for_wrong_architecture_refused(tmp_path):
    import torch
    import torchvision

    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), tmp_path / "r.pt")
    with pytest.raises(StudioError, match="do not fit architecture 'resnet34'"):
        studio.load_model(tmp_path / "r.pt", card={"architecture": "resnet34"})
    with pytest.raises(StudioError, match="neither a torchvision model"):
        studio.load_model(tmp_path / "r.pt", card={"architecture": "os.system"})
    with pytest.raises(StudioError, match="holds only weights"):
        studio.load_model(tmp_path / "r.pt")


def test_torch_export_pt2(tmp_path, table):
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(30, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
    x = torch.tensor(table.x[:4], dtype=torch.float32)
    program = torch.export.export(net, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, tmp_path / "m.pt2")
    model = studio.load_model(tmp_path / "m.pt2", card={"feature_names": table.feature_names})
    assert model.format == "torch_export"
    with torch.no_grad():
        expected = torch.softmax(net(torch.tensor(table.x[:30], dtype=torch.float32)), 1).numpy()
    np.testing.assert_allclose(model.predict_proba(table.x[:30]), expected, rtol=1e-4, atol=1e-5)  # float32 logits of unscaled features, computed in another process


def test_regression_torch_model_has_one_output(table):
    import torch

    net = torch.nn.Linear(30, 1)
    model = studio.wrap_model(net, card={"task": "regression", "feature_names": table.feature_names})
    out = model.predict(table.x[:5])
    assert out.shape == (5,)
    assert model.output_names == ["prediction"]


class _Marker:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickle_refused_without_trust_and_never_runs(tmp_path):
    import pickle

    marker = tmp_path / "pwned"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(_Marker(str(marker))))
    with pytest.raises(StudioError, match="skops"):
        studio.load_model(path)
    assert not marker.exists()
    joblib_path = tmp_path / "model.joblib"
    joblib_path.write_bytes(path.read_bytes())
    with pytest.raises(StudioError, match="trust_pickle=True"):
        studio.load_model(joblib_path)
    assert not marker.exists()


def test_pickled_torch_model_in_pt_never_runs(tmp_path):
    import torch

    marker = tmp_path / "pwned"
    torch.save({"x": _Marker(str(marker))}, tmp_path / "evil.pt")
    with pytest.raises(StudioError, match="more than weights"):
        studio.load_model(tmp_path / "evil.pt", card={"architecture": "resnet18"})
    assert not marker.exists()


def test_pickle_loads_when_trusted(tmp_path, table):
    import joblib
    from sklearn.linear_model import LogisticRegression

    est = LogisticRegression(max_iter=1000).fit(table.frame, table.y)
    joblib.dump(est, tmp_path / "m.joblib")
    model = studio.load_model(tmp_path / "m.joblib", trust_pickle=True)
    np.testing.assert_allclose(model.predict_proba(table.x[:10]), est.predict_proba(table.frame[:10]))


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("m.pt", b"hello, I am text", "not a torch file"),
        ("m.onnx", b"\x08\x01garbage", "not a valid ONNX model"),
        ("m.skops", b"PK\x03\x04broken", "not a valid skops file"),
        ("m.exe", b"MZ", "unknown type"),
        ("m.pt", b"", "empty"),
    ],
)
def test_broken_files_give_one_clear_error(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(StudioError, match=message):
        studio.load_model(tmp_path / name)


def test_truncated_torchscript_refused(tmp_path):
    data = (MODELS / "image_cnn.pt").read_bytes()
    (tmp_path / "t.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(StudioError):
        studio.load_model(tmp_path / "t.pt")


def test_card_errors(tmp_path):
    with pytest.raises(StudioError, match="not valid JSON"):
        studio.load_model(MODELS / "tabular_gbt.skops", card="{not json")
    with pytest.raises(StudioError, match="'task' must be"):
        studio.load_model(MODELS / "tabular_gbt.skops", card={"task": "clustering"})
    with pytest.raises(StudioError, match="'modality' must be"):
        studio.load_model(MODELS / "tabular_gbt.skops", card={"modality": "audio"})
    with pytest.raises(StudioError, match="regression"):
        studio.load_model(MODELS / "tabular_gbt.skops", card={"task": "regression"})


def test_dataframe_fitted_models_equal_native_whether_or_not_they_select_columns_by_name(table):
    """Position-only estimators take arrays silently; a name-selecting pipeline still gets a DataFrame."""
    import warnings

    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.DataFrame(table.x, columns=table.feature_names)
    by_position = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(frame, table.y)
    by_name = make_pipeline(
        ColumnTransformer([("scale", StandardScaler(), list(table.feature_names[:10]))]), LogisticRegression(max_iter=2000)
    ).fit(frame, table.y)
    for fitted, takes_arrays in ((by_position, True), (by_name, False)):
        model = studio.wrap_model(fitted)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for _ in range(2):  # the second call takes the path the first one chose
                np.testing.assert_array_equal(model.output(table.x), fitted.predict_proba(frame))
        assert bool(model._takes_arrays) is takes_arrays
