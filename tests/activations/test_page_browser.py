"""The Activations page in a real browser: digits CNN sample, pick a layer, compare groups, brush a subset."""

from __future__ import annotations

import pytest


from tests.browser_kit import (  # noqa: F401 (fixtures)
    idle, no_exception, open_page, select, shot, browser, server,
)

pytestmark = pytest.mark.browser


def test_activations_page_layer_subset_and_projection(server, browser):  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(120_000)  # the first load starts a sandbox worker; CI's 2 cores are busy
    page.goto(server)
    page.wait_for_selector("h1:has-text('Load')", timeout=120_000)
    idle(page)
    page.locator("[data-testid='stSelectbox']", has_text="Sample").locator("input").click()
    page.get_by_role("option", name="Digits: small CNN (TorchScript)").click()
    idle(page)
    open_page(page, "Activations")
    no_exception(page, "Activations")
    page.wait_for_selector("[data-testid='stVegaLiteChart']", timeout=120_000)
    assert page.locator("[data-testid='stVegaLiteChart']").count() == 2  # matrix and projection
    main = page.locator("[data-testid='stMain']")
    assert "dead" in main.inner_text()
    # another layer: the second convolution
    page.locator("[data-testid='stSelectbox']", has_text="Layer").locator("input").click()
    page.get_by_role("option", name="3", exact=True).click()
    idle(page)
    no_exception(page, "Activations, layer 3")
    page.wait_for_selector("h3:has-text('Layer 3: 32 neurons')", timeout=60_000)
    # brush a region of the projection and save it as a subset
    chart = page.locator("[data-testid='stVegaLiteChart']").nth(1)
    chart.scroll_into_view_if_needed()
    box = chart.locator("canvas, svg").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.8, steps=8)
    page.mouse.up()
    idle(page)
    page.get_by_placeholder("e.g. cluster of 7s").fill("brushed")
    page.get_by_placeholder("e.g. cluster of 7s").press("Enter")
    idle(page)
    page.get_by_role("button", name="Save subset").click()
    idle(page)
    no_exception(page, "Activations, subset saved")
    page.wait_for_selector("text=subset: brushed", timeout=30_000)
    page.get_by_text("Computation graph").click()
    page.wait_for_selector("[data-testid='stGraphVizChart'] svg", timeout=30_000)
    # select node "6" (the 8th row: input, 0, ..., 6) in the node table: its layer becomes the page's layer
    page.get_by_role("tab", name="Table").click()
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 12, box["y"] + 35 + 35 * 7 + 17)
    idle(page)
    page.wait_for_selector("h3:has-text('Layer 6: 32 neurons')", timeout=60_000)
    no_exception(page, "Activations, node picked in the table")
    page.get_by_role("tab", name="Graph").click()
    idle(page)
    shot(page, "activations-digits")
    page.close()
