"""Without user namespaces: program files are refused unless trusted, other formats run in a plain worker."""

from __future__ import annotations

import numpy as np
import pytest

import studio
from studio.errors import StudioError
from studio.sandbox import launcher
from tests.conftest import MODELS, SAMPLE_DATA


@pytest.fixture
def no_namespaces(monkeypatch):
    """What a machine without user namespaces offers: only the plain-process launcher."""
    monkeypatch.setattr(launcher, "available_kinds", lambda: ("none",))
    monkeypatch.delenv("STUDIO_SANDBOX", raising=False)
    monkeypatch.delenv("STUDIO_TRUST_PROGRAMS", raising=False)
    assert launcher.choose() == "none"


@pytest.mark.parametrize("name", ["tabular_mlp.pt", "tabular_mlp.onnx", "image_cnn.pt"])
def test_program_files_are_refused_without_a_sandbox(no_namespaces, name):
    with pytest.raises(StudioError, match="no sandbox.*trust=True.*STUDIO_TRUST_PROGRAMS"):
        studio.load_model(MODELS / name)


def test_trusted_program_runs_in_a_plain_worker(no_namespaces, table):
    model = studio.load_model(MODELS / "tabular_mlp.pt", trust=True)
    assert model.sandbox == "none"
    expected = studio.load_model(MODELS / "tabular_mlp.pt", sandbox="off").predict_proba(table.x[:10])
    np.testing.assert_allclose(model.predict_proba(table.x[:10]), expected, rtol=1e-6, atol=1e-7)
    model.close()


def test_the_server_can_trust_programs(no_namespaces, monkeypatch):
    monkeypatch.setenv("STUDIO_TRUST_PROGRAMS", "1")
    model = studio.load_model(MODELS / "tabular_mlp.onnx")
    assert model.sandbox == "none"
    model.close()


def test_weights_formats_keep_loading(no_namespaces, table):
    model = studio.load_model(MODELS / "tabular_gbt.skops")
    assert model.sandbox == "none"
    exp = studio.explain(model, table, "shap", rows=[0, 3], cache=False)
    ref = studio.explain(studio.load_model(MODELS / "tabular_gbt.skops", sandbox="off"), table, "shap", rows=[0, 3],
                         cache=False)
    np.testing.assert_array_equal(exp.values, ref.values)
    model.close()


def test_the_cli_says_the_same_and_takes_trust(no_namespaces, capsys):
    from studio.cli import main

    args = ["explain", "--model", str(MODELS / "tabular_mlp.pt"), "--data", str(SAMPLE_DATA / "breast_cancer.csv"),
            "--method", "saliency", "--no-cache"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--trust" in err and err.count("\n") == 1
    assert main(args + ["--trust", "--out", "/dev/null"]) == 0


def test_asking_for_a_missing_sandbox_is_an_error(no_namespaces, monkeypatch):
    monkeypatch.setenv("STUDIO_SANDBOX", "bubblewrap")
    with pytest.raises(StudioError, match="not available"):
        studio.load_model(MODELS / "tabular_gbt.skops")
