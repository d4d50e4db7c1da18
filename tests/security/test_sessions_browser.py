"""Several browser sessions at once: each sees only its own uploads.

Debian's Chromium (Playwright, never ``playwright install``) with two browser
contexts (two independent sessions, no shared cookies or storage) against one
``streamlit run app.py`` server. A uploads the torch MLP and the table, B the
CNN and the digits, interleaved; each then sees only its own model and data,
and a hostile upload in A shows an error there without touching A's pair or B.
"""

from __future__ import annotations


import pytest

from tests.bad_inputs import make_corpus

from tests.browser_kit import (  # noqa: F401 (fixtures)
    two_sample_sessions, choose_uploads, exception_count, open_page, session, sidebar, submit, browser, server,
)

pytestmark = pytest.mark.browser


def test_two_sessions_see_only_their_own_uploads(server, browser, tmp_path):
    (ctx_a, a), (ctx_b, b) = session(browser, server), session(browser, server)
    mlp, cnn = make_corpus.SAMPLES["@mlp"], make_corpus.SAMPLES["@cnn"]
    # interleaved: both choose their files before either submits
    choose_uploads(a, mlp, mlp.with_suffix(".card.json"), make_corpus.SAMPLES["@table"])
    choose_uploads(b, cnn, cnn.with_suffix(".card.json"), make_corpus.SAMPLES["@digits"])
    submit(a)
    submit(b)
    a.locator("[data-testid='stSidebar']").get_by_text("Model: tabular_mlp.pt").wait_for(timeout=60_000)
    b.locator("[data-testid='stSidebar']").get_by_text("Model: image_cnn.pt").wait_for(timeout=60_000)
    # rerun each session (open another page) after the other's upload: each still has only its own pair
    for page in (a, b):
        open_page(page, "Data")
    side_a, side_b = sidebar(a), sidebar(b)
    assert "tabular_mlp.pt" in side_a and "breast_cancer.csv" in side_a
    assert "image_cnn.pt" not in side_a and "digits.zip" not in side_a
    assert "image_cnn.pt" in side_b and "digits.zip" in side_b
    assert "tabular_mlp.pt" not in side_b and "breast_cancer.csv" not in side_b
    assert exception_count(a) == 0 and exception_count(b) == 0
    ctx_a.close()
    ctx_b.close()


def test_a_bad_upload_in_one_session_touches_neither(server, browser, tmp_path):
    (ctx_a, a), (ctx_b, b) = two_sample_sessions(browser, server)

    make_corpus.BUILDERS["pickle_pkl"](tmp_path)
    choose_uploads(a, tmp_path / "plant.pkl", None, make_corpus.SAMPLES["@table"])
    submit(a)
    error = a.locator("[data-testid='stAlertContentError']")
    error.first.wait_for(timeout=30_000)
    assert error.count() == 1
    assert "pickle file and was not loaded" in error.first.inner_text()
    assert "tabular_mlp.pt" in sidebar(a)  # A keeps its pair
    assert not (tmp_path / make_corpus.MARKER).exists()
    open_page(b, "Data")  # B reruns after A's failure: still its own pair, no error
    assert "image_cnn.pt" in sidebar(b) and "tabular_mlp.pt" not in sidebar(b)
    assert b.locator("[data-testid='stAlertContentError']").count() == 0
    assert exception_count(a) == 0 and exception_count(b) == 0
    ctx_a.close()
    ctx_b.close()
