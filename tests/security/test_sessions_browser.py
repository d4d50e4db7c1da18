"""Several browser sessions at once: each sees only its own uploads.

Debian's Chromium (Playwright, never ``playwright install``) with two browser
contexts (two independent sessions, no shared cookies or storage) against one
``streamlit run app.py`` server. A uploads the torch MLP and the table, B the
CNN and the digits, interleaved; each then sees only its own model and data,
and a hostile upload in A shows an error there without touching A's pair or B.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.bad_inputs import make_corpus
from tests.conftest import ROOT

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "STUDIO_ALLOW_PICKLE"}
    env["STUDIO_CACHE_DIR"] = str(tmp_path_factory.mktemp("sessions-cache"))
    log = open(tmp_path_factory.mktemp("streamlit") / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.terminate()
        pytest.fail("streamlit did not start within 90 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _idle(page, timeout=120_000):
    page.wait_for_timeout(400)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)
    page.wait_for_timeout(300)


def _session(browser, url):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(url)
    _idle(page)
    page.wait_for_selector("h1:has-text('Load')", timeout=60_000)
    return context, page


def _choose(page, model: Path, card: Path | None, data: Path):
    inputs = page.locator("[data-testid='stFileUploader'] input[type='file']")
    assert inputs.count() == 4  # model, card, dataset, model data file
    inputs.nth(0).set_input_files(str(model))
    if card is not None:
        inputs.nth(1).set_input_files(str(card))
    inputs.nth(2).set_input_files(str(data))
    expected = 2 if card is None else 3
    form = page.locator("[data-testid='stForm']")
    sizes = re.compile(r"^\d+(\.\d+)?\s?[KMG]?B$", re.M)  # one size line per finished upload
    deadline = time.monotonic() + 60
    while len(sizes.findall(form.inner_text())) < expected and time.monotonic() < deadline:
        page.wait_for_timeout(300)
    assert len(sizes.findall(form.inner_text())) >= expected, form.inner_text()


def _submit(page):
    page.locator("[data-testid='stFormSubmitButton'] button").click()
    _idle(page)


def _open(page, name):
    page.locator("[data-testid='stSidebarNav'] a", has_text=name).first.click()
    _idle(page)
    page.wait_for_selector(f"h1:has-text('{name}')", timeout=60_000)
    _idle(page)


def _sidebar(page) -> str:
    return page.locator("[data-testid='stSidebar']").inner_text()


def test_two_sessions_see_only_their_own_uploads(server, browser, tmp_path):
    (ctx_a, a), (ctx_b, b) = _session(browser, server), _session(browser, server)
    mlp, cnn = make_corpus.SAMPLES["@mlp"], make_corpus.SAMPLES["@cnn"]
    # interleaved: both choose their files before either submits
    _choose(a, mlp, mlp.with_suffix(".card.json"), make_corpus.SAMPLES["@table"])
    _choose(b, cnn, cnn.with_suffix(".card.json"), make_corpus.SAMPLES["@digits"])
    _submit(a)
    _submit(b)
    a.locator("[data-testid='stSidebar']").get_by_text("Model: tabular_mlp.pt").wait_for(timeout=60_000)
    b.locator("[data-testid='stSidebar']").get_by_text("Model: image_cnn.pt").wait_for(timeout=60_000)
    # rerun each session (open another page) after the other's upload: each still has only its own pair
    for page in (a, b):
        _open(page, "Data")
    side_a, side_b = _sidebar(a), _sidebar(b)
    assert "tabular_mlp.pt" in side_a and "breast_cancer.csv" in side_a
    assert "image_cnn.pt" not in side_a and "digits.zip" not in side_a
    assert "image_cnn.pt" in side_b and "digits.zip" in side_b
    assert "tabular_mlp.pt" not in side_b and "breast_cancer.csv" not in side_b
    assert page_has_no_exception(a) and page_has_no_exception(b)
    ctx_a.close()
    ctx_b.close()


def page_has_no_exception(page) -> bool:
    return page.locator("[data-testid='stException']").count() == 0


def test_a_bad_upload_in_one_session_touches_neither(server, browser, tmp_path):
    (ctx_a, a), (ctx_b, b) = _session(browser, server), _session(browser, server)
    mlp, cnn = make_corpus.SAMPLES["@mlp"], make_corpus.SAMPLES["@cnn"]
    _choose(a, mlp, mlp.with_suffix(".card.json"), make_corpus.SAMPLES["@table"])
    _submit(a)
    _choose(b, cnn, cnn.with_suffix(".card.json"), make_corpus.SAMPLES["@digits"])
    _submit(b)
    a.locator("[data-testid='stSidebar']").get_by_text("Model: tabular_mlp.pt").wait_for(timeout=60_000)
    b.locator("[data-testid='stSidebar']").get_by_text("Model: image_cnn.pt").wait_for(timeout=60_000)

    make_corpus.BUILDERS["pickle_pkl"](tmp_path)
    _choose(a, tmp_path / "plant.pkl", None, make_corpus.SAMPLES["@table"])
    _submit(a)
    error = a.locator("[data-testid='stAlertContentError']")
    error.first.wait_for(timeout=30_000)
    assert error.count() == 1
    assert "pickle file and was not loaded" in error.first.inner_text()
    assert "tabular_mlp.pt" in _sidebar(a)  # A keeps its pair
    assert not (tmp_path / make_corpus.MARKER).exists()
    _open(b, "Data")  # B reruns after A's failure: still its own pair, no error
    assert "image_cnn.pt" in _sidebar(b) and "tabular_mlp.pt" not in _sidebar(b)
    assert b.locator("[data-testid='stAlertContentError']").count() == 0
    assert page_has_no_exception(a) and page_has_no_exception(b)
    ctx_a.close()
    ctx_b.close()
