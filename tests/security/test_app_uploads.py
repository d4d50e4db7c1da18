"""The Load page under bad uploads: one st.error each, the previous pair and results kept.

Drives the real page (pages/load.py via app.py) with AppTest's file uploaders
and the form's Load button, for every corpus case that fails at load time.
"""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.bad_inputs import make_corpus
from tests.conftest import ROOT

APP = str(ROOT / "app.py")
# the uploaders refuse unknown suffixes themselves (.h5, .xlsx), and a missing file cannot be uploaded
LOAD_CASES = [c.name for c in make_corpus.CASES
              if c.stage != "explain" and c.name not in ("missing_model", "unknown_suffix", "data_unknown_suffix")]


def _upload(at, label, path):
    uploader = next(u for u in at.get("file_uploader") if u.label == label)
    uploader.set_value(None if path is None else (path.name, path.read_bytes(), "application/octet-stream"))


def _submit(at, case, folder):
    images = case.image_data()
    model = case.path("model", folder) or make_corpus.SAMPLES["@cnn" if images else "@mlp"]
    data = case.path("data", folder) or make_corpus.SAMPLES[case.default_data()]
    card = case.path("card", folder)
    if card is None and case.model in (None, "@mlp", "@cnn", "@gbt", "@cnn_state"):
        card = model.with_suffix(".card.json")  # the user uploads the sample's card with it, as the CLI finds it
    _upload(at, "Model file", model)
    _upload(at, "Model card (optional)", card)
    _upload(at, "Dataset file", data)
    at.text_input[0].set_value(case.label or "")
    next(b for b in at.button if b.label == "Load").click()
    at.run()


def _kept(at):
    """What a failed upload must not touch: everything in the session but widget values."""
    return {k: at.session_state[k] for k in ("model", "data", "source", "results_marker")}


@pytest.fixture(scope="module")
def app():
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    at.session_state["results_marker"] = object()  # stands in for results already on screen
    return at


@pytest.mark.parametrize("name", LOAD_CASES)
def test_bad_upload_shows_one_error_and_keeps_the_session(app, name, corpus, monkeypatch):
    folder, cases = corpus
    case = cases[name]
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    if case.env:
        st.cache_resource.clear()  # a limit applies when a file is loaded, not to one loaded before
    before = _kept(app)
    _submit(app, case, folder)
    assert not app.exception, app.exception
    errors = [e.value for e in app.error]
    assert len(errors) == 1, errors
    assert case.expect.lower() in errors[0].lower(), errors[0]
    assert "Traceback" not in errors[0]
    after = _kept(app)
    assert all(after[k] is before[k] for k in before)
    assert not (folder / make_corpus.MARKER).exists()


def test_a_good_upload_after_the_bad_ones_replaces_the_pair(app):
    before = app.session_state["model"]
    mlp, table = make_corpus.SAMPLES["@mlp"], make_corpus.SAMPLES["@table"]
    _upload(app, "Model file", mlp)
    _upload(app, "Model card (optional)", mlp.with_suffix(".card.json"))
    _upload(app, "Dataset file", table)
    app.text_input[0].set_value("")
    next(b for b in app.button if b.label == "Load").click()
    app.run()
    assert not app.exception and not app.error
    assert app.session_state["model"] is not before
    assert app.session_state["model"].format == "torchscript"
