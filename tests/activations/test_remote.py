"""A sandboxed model's graph and activations (built in its worker) equal the in-process ones."""

from __future__ import annotations

import json

import numpy as np
import pytest

import studio
from studio.activations import dead_neurons
from studio.sandbox import launcher
from tests.activations.conftest import mlp3, table

KIND = launcher.choose("auto")


@pytest.fixture(scope="module")
def saved_mlp(tmp_path_factory):
    import torch

    folder = tmp_path_factory.mktemp("mlp")
    path = folder / "mlp3.pt"
    torch.jit.save(torch.jit.script(mlp3()), str(path))
    (folder / "mlp3.card.json").write_text(json.dumps({"feature_names": [f"f{i}" for i in range(4)],
                                                         "task": "classification", "outputs": "logits"}))
    return path


def test_remote_equals_in_process(saved_mlp):
    if KIND in ("off", "none"):
        pytest.skip("no sandbox launcher on this machine")
    data = table()
    remote = studio.load_model(saved_mlp)
    local = studio.load_model(saved_mlp, sandbox="off")
    try:
        assert getattr(remote, "remote", False) and remote.native is None
        assert studio.graph(remote).to_dict() == studio.graph(local).to_dict()
        for layer in ("0", "3"):
            a = studio.activations(remote, data, layer, rows=[0, 5, 9, 11])
            b = studio.activations(local, data, layer, rows=[0, 5, 9, 11])
            np.testing.assert_array_equal(a.matrix, b.matrix)
            assert a.to_dict() == b.to_dict()
        assert dead_neurons(remote, data, rows=range(20)) == dead_neurons(local, data, rows=range(20))
        with pytest.raises(studio.StudioError, match="layer 'nope' not found"):
            studio.activations(remote, data, "nope")
    finally:
        remote.close()


def test_remote_image_model_equals_in_process(cnn, digits):
    if KIND in ("off", "none"):
        pytest.skip("no sandbox launcher on this machine")
    from tests.conftest import MODELS

    remote = studio.load_model(MODELS / "image_cnn.pt")
    try:
        a = studio.activations(remote, digits, "6", rows=range(20))
        b = studio.activations(cnn, digits, "6", rows=range(20))
        np.testing.assert_array_equal(a.matrix, b.matrix)
        assert a.reduction == b.reduction == "spatial mean over 8x8" and a.labels == b.labels
    finally:
        remote.close()
