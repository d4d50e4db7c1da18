"""What every browser test shares: a ``streamlit run app.py`` server, Debian's Chromium, and page helpers.

Import the fixtures into a test module (``from tests.browser_kit import browser, server``); each module gets its
own server (its own cache folder, no pickle opt-in inherited) and browser. Playwright drives
``/usr/bin/chromium``; ``playwright install`` is never run. Screenshots go to ``test-artifacts/browser/``.
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

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHART = "[data-testid='stVegaLiteChart']"
VIEWPORT = {"width": 1280, "height": 800}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """URL of a fresh ``streamlit run app.py`` on loopback, with its own cache; stopped after the module."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "STUDIO_ALLOW_PICKLE"}
    env["STUDIO_CACHE_DIR"] = str(tmp_path_factory.mktemp("browser-cache"))
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
    """Debian's Chromium under Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def idle(page, timeout=120_000):
    """Wait until the script run triggered by the last action has finished."""
    page.wait_for_timeout(400)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)
    page.wait_for_timeout(300)


def settled_box(page, element) -> dict:
    """The bounding box of ``element`` centred in the viewport, read once it has stopped moving, for a click or a
    drag by position. An expander opening or a chart drawn above it shifts the page, and a position measured before
    the shift, or below the viewport's edge, lands elsewhere (two flaky activations tests). Fails if the box does
    not fit in the viewport, where a position inside it could not be reached."""
    element.evaluate("el => el.scrollIntoView({block: 'center', inline: 'nearest'})")
    box, last = element.bounding_box(), None
    for _ in range(40):
        if box == last:
            break
        page.wait_for_timeout(250)
        box, last = element.bounding_box(), box
    view = page.viewport_size
    assert box and box["y"] >= 0 and box["y"] + box["height"] <= view["height"], (box, view)
    return box


def click_grid_row(page, grid, row: int, row_px: int = 35):
    """Click data row ``row`` (0 = the first under the header) of a Streamlit dataframe ``grid`` (a canvas: rows
    are reached by position) at its settled place (see ``settled_box``)."""
    box = settled_box(page, grid)
    page.mouse.click(box["x"] + 12, box["y"] + row_px + row_px * row + row_px // 2)


def session(browser, url, **context_options):
    """A new browser context (its own cookies, so its own Streamlit session) opened on the Load page."""
    context = browser.new_context(viewport=dict(VIEWPORT), **context_options)
    page = context.new_page()
    page.goto(url)
    idle(page)
    page.wait_for_selector("h1:has-text('Load')", timeout=60_000)
    return context, page


def open_page(page, name):
    """Open a page from the sidebar navigation and wait for its title and its run."""
    page.locator("[data-testid='stSidebarNav'] a", has_text=name).first.click()
    idle(page)
    page.wait_for_selector(f"h1:has-text('{name}')", timeout=60_000)
    idle(page)


def exception_count(page) -> int:
    return page.locator("[data-testid='stException']").count()


def no_exception(page, where):
    assert exception_count(page) == 0, f"{where}: {page.locator('[data-testid=stException]').first.inner_text()[:500]}"


def select(page, label, option):
    """Choose ``option`` in the select box whose label contains ``label``: click its input (which opens the list)
    and type the option (the box filters its list by it), so the option is there even when a click on the box
    landed while the page was still drawing (a plain click then opened nothing: a flaky timeout)."""
    box = page.locator("[data-testid='stSelectbox']").filter(has_text=label).first.locator("input")
    box.scroll_into_view_if_needed()
    box.click()
    page.keyboard.type(option)
    page.get_by_role("option", name=option, exact=True).click(timeout=30_000)
    idle(page)


def shot(page, name, settle_ms=600):
    """Screenshot of the whole page (the main area scrolls inside the app, so grow the viewport to fit it)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": 1280, "height": max(800, min(int(height) + 40, 6000))})
    page.wait_for_timeout(settle_ms)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    page.set_viewport_size(dict(VIEWPORT))


def choose_uploads(page, model: Path, card: Path | None, data: Path):
    """Put files in the Load page's model, card and dataset uploaders and wait until each has uploaded."""
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


def submit(page):
    page.locator("[data-testid='stFormSubmitButton'] button").click()
    idle(page)


def sidebar(page) -> str:
    return page.locator("[data-testid='stSidebar']").inner_text()


def two_sample_sessions(browser, url):
    """Sessions A (tabular MLP + breast cancer table) and B (image CNN + digits), both loaded and shown.

    Returns ``((context_a, page_a), (context_b, page_b))``.
    """
    from tests.bad_inputs import make_corpus

    (ctx_a, a), (ctx_b, b) = session(browser, url), session(browser, url)
    mlp, cnn = make_corpus.SAMPLES["@mlp"], make_corpus.SAMPLES["@cnn"]
    choose_uploads(a, mlp, mlp.with_suffix(".card.json"), make_corpus.SAMPLES["@table"])
    submit(a)
    choose_uploads(b, cnn, cnn.with_suffix(".card.json"), make_corpus.SAMPLES["@digits"])
    submit(b)
    a.locator("[data-testid='stSidebar']").get_by_text("Model: tabular_mlp.pt").wait_for(timeout=60_000)
    b.locator("[data-testid='stSidebar']").get_by_text("Model: image_cnn.pt").wait_for(timeout=60_000)
    return (ctx_a, a), (ctx_b, b)


def offline_view(browser, path: Path):
    """A page on a saved HTML file with every network request refused; returns ``(page, refused_urls)``."""
    context = browser.new_context(viewport=dict(VIEWPORT))
    refused = []

    def block(route):  # the file itself may load; anything else is a network request and is refused
        if route.request.url == path.as_uri():
            return route.continue_()
        refused.append(route.request.url)
        return route.abort()

    context.route("**/*", block)
    return context.new_page(), refused


def run_explainers(page, budget_s=300, timeout_s=600):
    """Press "Run explainers" with a generous per-method time budget and wait for the run to finish.

    The budget is raised first so that a loaded machine (CI shares its cores) never turns a slow method into a
    budget stop: what these tests check is the result, not the speed (speed is measured in benchmarks/).
    """
    budget = page.locator("input[aria-label='Time budget per method (s)']")
    if budget.count():
        budget.first.fill(str(budget_s))
        budget.first.press("Enter")
        idle(page)
    page.get_by_role("button", name="Run explainers").click()
    idle(page, timeout=timeout_s * 1000)
