"""The Local, Global and Report pages in Streamlit's dark theme: charts take their axis, legend and title colours
from the theme (no dark text on the dark background). Screenshots: test-artifacts/browser/dark-*.png."""

from __future__ import annotations

import pytest

from tests.browser_kit import (  # noqa: F401 (fixtures)
    run_explainers,
    CHART,
    browser,
    idle,
    no_exception,
    open_page,
    server,
    shot,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", autouse=True)
def dark_theme():
    """The server (started after this, for the module) reads Streamlit's theme from its environment."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STREAMLIT_THEME_BASE", "dark")
        yield


def _luminance(css: str) -> float:
    """Relative luminance (0 black .. 1 white) of a CSS ``rgb()``/``rgba()`` colour."""
    parts = [float(v) for v in css[css.index("(") + 1:css.index(")")].split(",")[:3]]
    return (0.2126 * parts[0] + 0.7152 * parts[1] + 0.0722 * parts[2]) / 255


def _chart_text_is_light(page, where):
    """Every text a chart draws (axis labels and titles, legends, chart titles) is light on the dark page."""
    fills = page.evaluate(
        "() => Array.from(document.querySelectorAll(\"[data-testid='stVegaLiteChart'] svg text\"))"
        ".filter(t => t.textContent.trim()).map(t => getComputedStyle(t).fill)")
    background = page.evaluate("() => getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor")
    assert _luminance(background) < 0.2, background
    assert fills, f"{where}: no chart text drawn as SVG"
    dark = [f for f in fills if _luminance(f) < 0.45]
    assert not dark, f"{where}: {len(dark)} of {len(fills)} chart texts are dark on the dark theme: {sorted(set(dark))}"


def test_local_global_and_report_pages_read_in_the_dark_theme(server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(server)
    idle(page)
    page.wait_for_selector("h1:has-text('Load')")

    open_page(page, "Local explanations")
    run_explainers(page)
    no_exception(page, "Local")
    page.wait_for_selector(CHART, timeout=30_000)
    shot(page, "dark-1-local")
    _chart_text_is_light(page, "Local")
    page.get_by_role("button", name="Pin to report").first.click()
    idle(page)

    open_page(page, "Global explanations")
    run_explainers(page)
    no_exception(page, "Global")
    page.wait_for_selector(CHART, timeout=30_000)
    shot(page, "dark-2-global")
    _chart_text_is_light(page, "Global")

    open_page(page, "Report")
    no_exception(page, "Report")
    page.wait_for_selector(CHART, timeout=30_000)
    shot(page, "dark-3-report")
    _chart_text_is_light(page, "Report")
    context.close()
