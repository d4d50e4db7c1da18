"""Browser test of the Quality page: the sample CNN (sandboxed, so FGSM runs in its worker), one assessment run,
the drill-down into one heatmap cell, and a grid interrupted part way that resumes from the cache."""

import re

import pytest

from tests.browser_kit import CHART, browser, idle, no_exception, open_page, select, server, session, shot  # noqa: F401

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
    assert "18 scenarios (method x perturbation x severity), 0 reused from the cache, 18 computed now" in text
    shot(page, "quality-page")

    # drill down from a cell: grad_cam under noise at severity 2, row 1
    select(page, "Method", "grad_cam")
    select(page, "Perturbation", "noise s2")
    select(page, "Row", "1")
    no_exception(page, "Quality, drill-down")
    metrics = page.locator("[data-testid='stMetric']")
    assert metrics.count() == 3
    assert re.fullmatch(r"Cell: rank correlation\s*(-|-?[01]\.\d{3})", metrics.nth(0).inner_text().strip())
    kept = re.search(r"(\d) of 3", metrics.nth(1).inner_text()).group(1)
    drill = page.locator("[data-testid='stHorizontalBlock']").filter(has=page.locator("[data-testid='stImage']"))
    images = drill.locator("[data-testid='stImage']")
    assert images.count() in (3, 4)  # clean, its overlay, perturbed (and its overlay where the prediction held)
    assert "clean:" in drill.inner_text() and "perturbed:" in drill.inner_text()
    assert "grad_cam under noise at severity 2 (sigma 0.08, clip [0, 1])" in main.inner_text()
    images.first.scroll_into_view_if_needed()
    shot(page, "quality-drill-down")
    # or click a cell of the heatmap (an SVG mark named by its fields): saliency under blur at severity 1
    heat = page.locator("[data-testid='stVegaLiteChart']").first
    cell = heat.locator("[role='graphics-symbol'][aria-label*='blur s1'][aria-label*='saliency']")
    assert cell.count() >= 1, [heat.locator("[role='graphics-symbol']").nth(i).get_attribute("aria-label")
                               for i in range(min(3, heat.locator("[role='graphics-symbol']").count()))]
    cell.first.click()
    idle(page)
    no_exception(page, "Quality, a clicked cell")
    assert "saliency under blur at severity 1 (sigma_pixels 0.5)" in main.inner_text()

    # a grid stopped part way (a click on Run while it runs stops the script) resumes: only the rest is computed
    seed = page.locator("[data-testid='stNumberInput']", has_text="Seed").locator("input")
    seed.fill("7")  # a new seed: 18 new scenarios
    seed.press("Enter")
    idle(page)
    page.get_by_role("button", name="Run assessment").click()
    progress = page.locator("[data-testid='stProgress']")
    done = 0
    for _ in range(2400):  # until 3 or more of the 18 scenarios are finished (at most 2 min)
        if progress.count():
            found = re.search(r"scenario (\d+) of 18", progress.first.inner_text() or "")
            done = int(found.group(1)) if found else 0
            if done >= 3:
                break
        page.wait_for_timeout(50)
    assert 3 <= done <= 15, done
    page.get_by_role("button", name="Run assessment").click()
    idle(page, timeout=300_000)
    no_exception(page, "Quality, resumed")
    text = main.inner_text()
    got = re.search(r"18 scenarios \(method x perturbation x severity\), (\d+) reused from the cache, (\d+) computed",
                    text)
    assert got, text[:2000]
    reused, computed = int(got.group(1)), int(got.group(2))
    assert reused >= done and computed >= 1 and reused + computed == 18, (done, reused, computed)
    assert "seed 7" in text
    page.get_by_text("reused from the cache").first.scroll_into_view_if_needed()
    shot(page, "quality-resumed")
    page.get_by_role("button", name="Download JSON (studio.assessment/1)").scroll_into_view_if_needed()
    with page.expect_download() as got:
        page.get_by_role("button", name="Download JSON (studio.assessment/1)").click()
    assert got.value.suggested_filename == "assessment.json"
    context.close()
