"""Browser test of the Quality page: the sample CNN (sandboxed, so FGSM runs in its worker), one assessment run."""

import pytest

from tests.browser_kit import CHART, browser, idle, no_exception, open_page, server, session, shot  # noqa: F401

pytestmark = pytest.mark.browser


def test_quality_page_runs_an_assessment(server, browser):  # noqa: F811
    context, page = session(browser, server)
    page.set_default_timeout(180_000)  # the first load starts a sandbox worker; CI's 2 cores are busy
    page.locator("[data-testid='stSelectbox']", has_text="Sample").locator("input").click()
    page.get_by_role("option", name="Digits: small CNN (TorchScript)").click()
    idle(page)
    open_page(page, "Quality")
    no_exception(page, "Quality")
    rows = page.locator("[data-testid='stNumberInput']", has_text="Rows").locator("input")
    rows.fill("3")
    rows.press("Enter")
    idle(page)
    main = page.locator("[data-testid='stMain']")
    assert "2 method(s) x 9 perturbation(s) = 18 scenarios on 3 row(s)" in main.inner_text()
    page.get_by_role("button", name="Run assessment").click()
    idle(page, timeout=300_000)
    no_exception(page, "Quality, after the run")
    page.wait_for_selector("h3:has-text('Faithfulness')", timeout=60_000)
    text = main.inner_text()
    assert "Not run" not in text  # fgsm ran in the sandbox worker
    assert page.locator(CHART).count() == 8
    assert "probability of the explained class" in text or "as a probability" in text
    shot(page, "quality-page")
    page.get_by_role("button", name="Download JSON (studio.assessment/1)").scroll_into_view_if_needed()
    with page.expect_download() as got:
        page.get_by_role("button", name="Download JSON (studio.assessment/1)").click()
    assert got.value.suggested_filename == "assessment.json"
    context.close()
