"""Shared fixtures: the bundled samples and an isolated cache per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No spare sandbox workers in the test process (the app's server keeps one ready): each would import torch in the
# background of every test that loads a model. tests/sandbox/test_worker.py turns it on where it is tested.
os.environ.setdefault("STUDIO_SANDBOX_SPARE", "0")

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
SAMPLE_DATA = ROOT / "sample_data"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own empty studio cache directory."""
    path = tmp_path_factory.mktemp("studio-cache")
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def table():
    import studio

    return studio.load_dataset(SAMPLE_DATA / "breast_cancer.csv")


@pytest.fixture(scope="session")
def digits():
    import studio

    return studio.load_dataset(SAMPLE_DATA / "digits.zip")


@pytest.fixture(scope="session")
def gbt():
    import studio

    return studio.load_model(MODELS / "tabular_gbt.skops", sandbox="off")


@pytest.fixture(scope="session")
def mlp():
    import studio

    return studio.load_model(MODELS / "tabular_mlp.pt", sandbox="off")


@pytest.fixture(scope="session")
def mlp_onnx():
    import studio

    return studio.load_model(MODELS / "tabular_mlp.onnx", sandbox="off")


@pytest.fixture(scope="session")
def cnn():
    import studio

    return studio.load_model(MODELS / "image_cnn.pt", sandbox="off")
