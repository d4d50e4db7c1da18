"""Loading from a folder holding one model file, and a card whose modality contradicts the model (issue 14)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import studio
from studio.errors import StudioError


@pytest.fixture(scope="module")
def skops_file(tmp_path_factory):
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    est = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    folder = tmp_path_factory.mktemp("one-model")
    sio.dump(est, folder / "model.skops")
    (folder / "model.card.json").write_text(json.dumps({"feature_names": ["a", "b", "c"]}))
    return folder / "model.skops"


def test_a_folder_with_one_model_file_loads_it_and_its_card(skops_file, tmp_path):
    model = studio.load_model(skops_file.parent, sandbox="off")
    assert model.name == "model.skops" and model.feature_names == ["a", "b", "c"]
    (tmp_path / "a.skops").write_bytes(skops_file.read_bytes())
    (tmp_path / "b.skops").write_bytes(skops_file.read_bytes())
    with pytest.raises(StudioError, match=r"folder holding 2 model files \(a.skops, b.skops\); point at the model"):
        studio.load_model(tmp_path, sandbox="off")


def test_a_card_whose_modality_contradicts_the_model_is_refused(skops_file):
    with pytest.raises(StudioError, match=r"'modality' is 'image' but the model takes tabular input"):
        studio.load_model(skops_file, card={"modality": "image"}, sandbox="off")
    assert studio.load_model(skops_file, card={"modality": "tabular"}, sandbox="off").kind == "tabular"
