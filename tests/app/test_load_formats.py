"""AppTest: the Load page takes a two-file ONNX model (two uploads or one .zip) and a state dict described by the card form."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import studio
from tests.app.uploads import onnx_mlp_files
from tests.conftest import MODELS, ROOT, SAMPLE_DATA

APP = str(ROOT / "app.py")
CSV = ("breast_cancer.csv", (SAMPLE_DATA / "breast_cancer.csv").read_bytes(), "text/csv")


def _upload(at, label, value):
    next(u for u in at.get("file_uploader") if u.label == label).set_value(value)


def _ok(at):
    assert not at.exception, [e.value for e in at.exception]


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    return onnx_mlp_files(tmp_path_factory.mktemp("onnx-upload"))


def _torch_probs(files, x):
    import torch

    with torch.no_grad():
        return torch.softmax(files["module"](torch.as_tensor(x, dtype=torch.float32)), dim=1).double().numpy()


def test_two_file_onnx_model_from_two_uploads(onnx_files, table):
    at = AppTest.from_file(APP, default_timeout=180).run()
    _upload(at, "Model file", ("cancer_mlp.onnx", onnx_files["onnx"].read_bytes(), "application/octet-stream"))
    _upload(at, "Dataset file", CSV)
    at.button[0].click().run()  # without its data file: refused, naming the file and the uploader
    _ok(at)
    assert at.error and "'cancer_mlp.onnx.data'" in at.error[0].value and "Model data file" in at.error[0].value
    assert at.session_state["model"].name == "tabular_gbt.skops"

    _upload(at, "Model data file (optional)", ("cancer_mlp.onnx.data", onnx_files["data"].read_bytes(), "application/octet-stream"))
    at.button[0].click().run()
    _ok(at)
    assert not at.error
    model = at.session_state["model"]
    assert model.name == "cancer_mlp.onnx" and model.format == "onnx"
    np.testing.assert_allclose(model.predict_proba(table.x[:20]), _torch_probs(onnx_files, table.x[:20]), rtol=1e-5, atol=1e-6)
    exp = studio.explain(model, at.session_state["data"], "shap", rows=[0, 1], params={"background": 20, "max_evals": 100}, cache=False)
    assert exp.values.shape == (2, 30)


def test_two_file_onnx_model_from_one_zip(onnx_files):
    at = AppTest.from_file(APP, default_timeout=180).run()
    _upload(at, "Model file", ("cancer_mlp.zip", onnx_files["zip"].read_bytes(), "application/zip"))
    _upload(at, "Dataset file", CSV)
    at.button[0].click().run()
    _ok(at)
    assert not at.error and at.session_state["model"].name == "cancer_mlp.onnx"
    assert at.session_state["model"].fingerprint == studio.load_model(onnx_files["onnx"]).fingerprint


def test_state_dict_without_a_card_file_loads_from_the_card_form(digits):
    """The form gives the architecture (and its arguments), input size, normalisation and output kind."""
    at = AppTest.from_file(APP, default_timeout=180).run()
    _upload(at, "Model file", ("weights.pt", (MODELS / "image_cnn_state.pt").read_bytes(), "application/octet-stream"))
    _upload(at, "Dataset file", ("digits.zip", (SAMPLE_DATA / "digits.zip").read_bytes(), "application/zip"))
    at.selectbox(key="card-task").select("classification")
    at.text_input(key="card-size").input("1,32,32")
    at.text_input(key="card-mean").input("0.2")
    at.text_input(key="card-std").input("0.3")
    at.button[0].click().run()  # no architecture yet: the weights alone cannot be built
    _ok(at)
    assert at.error and "'architecture'" in at.error[0].value
    assert at.session_state["model"].name == "tabular_gbt.skops"

    assert "studio.small_cnn" in at.selectbox(key="card-architecture").options
    assert "resnet18" in at.selectbox(key="card-architecture").options
    at.selectbox(key="card-architecture").select("studio.small_cnn")
    at.text_input(key="card-architecture-args").input("in_channels=1, width=16")
    at.radio(key="card-outputs").set_value("logits")
    at.button[0].click().run()
    _ok(at)
    assert not at.error
    model = at.session_state["model"]
    assert model.name == "weights.pt" and model.format == "state_dict" and model.kind == "image"
    assert model.card.architecture == "studio.small_cnn" and model.card.architecture_args == {"in_channels": 1, "width": 16}
    reference = studio.load_model(MODELS / "image_cnn_state.pt")  # with its own card file
    np.testing.assert_allclose(model.output(digits.x[:8]), reference.output(digits.x[:8]), rtol=1e-5, atol=1e-6)

    # "probabilities" changes what the adapter does with the outputs: no softmax
    at.radio(key="card-outputs").set_value("probabilities")
    at.button[0].click().run()
    _ok(at)
    assert at.session_state["model"].card.outputs == "probabilities"
    assert not np.allclose(at.session_state["model"].output(digits.x[:4]), reference.output(digits.x[:4]))


def test_card_with_an_unknown_field_shows_a_warning_on_the_load_page():
    at = AppTest.from_file(APP, default_timeout=180).run()
    _upload(at, "Model file", ("gbt.skops", (MODELS / "tabular_gbt.skops").read_bytes(), "application/octet-stream"))
    _upload(at, "Model card (optional)", ("gbt.card.json", b'{"task": "classification", "clas_names": ["a", "b"]}', "application/json"))
    _upload(at, "Dataset file", CSV)
    at.button[0].click().run()
    _ok(at)
    assert at.session_state["model"].name == "gbt.skops"
    assert [w.value for w in at.warning if "did you mean 'class_names'" in w.value]


def test_card_form_argument_parsing():
    from studio.errors import StudioError
    from studio.ui.card_form import NO_ARCHITECTURE, card_bytes

    fields = {"architecture": "resnet18", "architecture_args": "num_classes=3, dropout=0.5, name=x, flag=true"}
    import json

    assert json.loads(card_bytes(fields))["architecture_args"] == {"num_classes": 3, "dropout": 0.5, "name": "x", "flag": True}
    assert card_bytes({"architecture": NO_ARCHITECTURE, "outputs": "(infer)"}) is None
    assert json.loads(card_bytes({"outputs": "logits"})) == {"outputs": "logits"}
    with pytest.raises(StudioError, match="key=value"):
        card_bytes({"architecture": "resnet18", "architecture_args": "3"})
    with pytest.raises(StudioError, match="without an architecture"):
        card_bytes({"architecture": NO_ARCHITECTURE, "architecture_args": "width=3"})
