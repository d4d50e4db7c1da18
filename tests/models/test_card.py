"""Model cards: unknown fields kept with a warning, modality and output fields, the documented examples."""

from __future__ import annotations

import json
import re
import warnings

import pytest

import studio
from studio.errors import StudioError
from studio.models.card import ModelCard, load_card
from tests.conftest import MODELS, ROOT


def test_unknown_fields_are_kept_and_reported_with_a_did_you_mean():
    with pytest.warns(UserWarning) as caught:
        card = load_card('{"task": "classification", "licence_url": "https://x", "clas_names": ["a", "b"], "license": "MIT"}')
    assert card.task == "classification" and card.class_names is None
    assert card.extra == {"licence_url": "https://x", "clas_names": ["a", "b"], "license": "MIT"}
    near = [w for w in card.warnings if "'clas_names'" in w]
    assert len(card.warnings) == 3 and len(caught) == 3
    assert near and "did you mean 'class_names'?" in near[0]
    plain = next(w for w in card.warnings if "'license'" in w)
    assert "did you mean" not in plain and "docs/card.md" in plain


def test_a_card_with_unknown_fields_loads_the_model_and_round_trips():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = studio.load_model(MODELS / "tabular_gbt.skops", card={"task": "classification", "license": "MIT"})
        again = ModelCard.from_dict(json.loads(model.card.canonical_json()))
    assert model.card.extra == {"license": "MIT"} and model.is_classifier
    assert again == model.card and again.extra == {"license": "MIT"}


def test_known_cards_give_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        card = load_card((MODELS / "image_cnn_state.card.json").read_text())
    assert card.warnings == [] and card.extra == {}


@pytest.mark.parametrize("modality", ["tabular", "image"])
def test_modality_is_a_known_field_and_decides_the_kind(modality):
    card = {"modality": modality, "task": "classification"}
    if modality == "image":
        card["input_size"] = [1, 32, 32]
        model = studio.load_model(MODELS / "image_cnn.pt", card=card)
    else:
        model = studio.load_model(MODELS / "tabular_gbt.skops", card=card)
    assert model.card.modality == modality and model.kind == modality and not model.card.warnings


@pytest.mark.parametrize(
    "card,match",
    [
        ({"modality": "audio"}, "'modality' must be 'tabular' or 'image'"),
        ({"modality": "tabular", "input_size": [1, 8, 8]}, "'modality' is 'tabular' but 'input_size'"),
        ({"modality": "image", "feature_names": ["a"]}, "'modality' is 'image' but 'feature_names'"),
        ({"output": True}, "'output' must be a dict key"),
        ({"output": [0]}, "'output' must be a dict key"),
        ({"output": -1}, "'output' must be a dict key"),
        ({"output": ""}, "'output' must be a dict key"),
    ],
)
def test_bad_modality_and_output_are_refused(card, match):
    with pytest.raises(StudioError, match=match):
        load_card(card)


@pytest.mark.parametrize("output", ["logits", 0, 2])
def test_output_selector_is_stored(output):
    card = load_card({"output": output})
    assert card.output == output and ModelCard.from_dict(card.to_dict()).output == output


def _doc_cards():
    """Every ```json block in docs/card.md that is a card (an object)."""
    text = (ROOT / "docs" / "card.md").read_text()
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, flags=re.S)]


def test_every_example_card_in_the_docs_is_valid_and_every_field_is_documented():
    cards = _doc_cards()
    assert len(cards) >= 10
    for raw in cards:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            card = ModelCard.from_dict(raw)
        assert set(card.extra) <= {"license"}, card.extra  # the one example of an unknown field
    text = (ROOT / "docs" / "card.md").read_text()
    for name in ModelCard.__dataclass_fields__:
        if name != "warnings":
            assert f"`{name}`" in text, name


def test_the_state_dict_example_in_the_docs_loads_the_sample_weights():
    card = next(c for c in _doc_cards() if c.get("architecture") == "studio.small_cnn")
    model = studio.load_model(MODELS / "image_cnn_state.pt", card=card)
    assert model.kind == "image" and model.format == "state_dict"
