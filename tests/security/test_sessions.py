"""Two app sessions at once (AppTest level): each sees only its own uploads.

``st.cache_resource`` shares loaded models between sessions (same bytes ->
same object); session state is per session, and a shared model is never
changed by what another session does with it.
"""

from __future__ import annotations

import numpy as np
from streamlit.testing.v1 import AppTest

import studio
from tests.bad_inputs import make_corpus
from tests.conftest import ROOT

APP = str(ROOT / "app.py")


def _upload_pair(at, model, data):
    for label, path in (("Model file", model), ("Model card (optional)", model.with_suffix(".card.json")),
                        ("Dataset file", data)):
        next(u for u in at.get("file_uploader") if u.label == label).set_value(
            (path.name, path.read_bytes(), "application/octet-stream"))
    next(b for b in at.button if b.label == "Load").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]


def test_sessions_see_only_their_own_uploads():
    a = AppTest.from_file(APP, default_timeout=120).run()
    b = AppTest.from_file(APP, default_timeout=120).run()
    assert a.session_state["model"].name == b.session_state["model"].name == "tabular_gbt.skops"

    _upload_pair(b, make_corpus.SAMPLES["@mlp"], make_corpus.SAMPLES["@table"])
    a.run()
    assert b.session_state["model"].format == "torchscript"
    assert a.session_state["model"].format == "skops"  # A did not get B's upload
    assert "upload" in b.session_state["source"] and "upload" not in a.session_state["source"]

    _upload_pair(a, make_corpus.SAMPLES["@cnn"], make_corpus.SAMPLES["@digits"])
    b.run()
    assert a.session_state["data"].kind == "image"
    assert b.session_state["data"].kind == "tabular" and b.session_state["model"].format == "torchscript"
    assert a.session_state["model"] is not b.session_state["model"]


def test_a_shared_model_is_not_changed_by_another_session(isolated_cache):
    a = AppTest.from_file(APP, default_timeout=120).run()
    b = AppTest.from_file(APP, default_timeout=120).run()
    for at in (a, b):
        _upload_pair(at, make_corpus.SAMPLES["@mlp"], make_corpus.SAMPLES["@table"])
    model_a, model_b = a.session_state["model"], b.session_state["model"]
    assert model_a is model_b  # st.cache_resource: one object for the same bytes
    data = b.session_state["data"]
    before = model_a.output(data.x[:50])
    card_before = model_a.card.canonical_json()
    assert model_a.native is None  # the weights live only in the model's sandboxed worker: outputs are what we see
    # session B explains (permutation importance shuffles inputs); session A's view must not move
    studio.explain(model_b, data, "permutation_importance", params={"n_repeats": 1, "max_rows": 40})
    np.testing.assert_array_equal(model_a.output(data.x[:50]), before)
    assert model_a.card.canonical_json() == card_before
    assert a.session_state["data"].x is not None and np.isfinite(a.session_state["data"].x).all()
