"""The Activations page in a real browser: digits CNN sample; pick a layer, brush two subsets and compare them, find
them on the Local page, drill down into an instance and explain it, pick a layer from the node table."""

from __future__ import annotations

import re

import pytest


from tests.browser_kit import (  # noqa: F401 (fixtures)
    click_grid_row, idle, no_exception, open_page, select, settled_box, shot, browser, server,
)

pytestmark = pytest.mark.browser


def _brush(page, chart, x0, x1):
    """Drag across the chart from (x0, 20%) to (x1, 80%) of its width and height (inside the plot, below the title)."""
    box = settled_box(page, chart.locator("canvas, svg").first)
    page.mouse.move(box["x"] + box["width"] * x0, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * x1, box["y"] + box["height"] * 0.8, steps=8)
    page.mouse.up()
    idle(page)


def _save_subset(page, name):
    if page.get_by_placeholder("e.g. cluster of 7s").count() == 0:
        shot(page, f"activations-no-brush-{name}")
    field = page.get_by_placeholder("e.g. cluster of 7s")
    field.fill(name)
    field.press("Enter")
    idle(page)
    page.get_by_role("button", name="Save subset").click()
    idle(page)
    no_exception(page, f"Activations, subset {name} saved")


def _select_exact(page, label, option):
    """The select box labelled exactly ``label`` (``and`` is a word inside other labels)."""
    boxes = page.locator("[data-testid='stSelectbox']")
    labels = [boxes.nth(i).locator("label").first.inner_text().strip() for i in range(boxes.count())]
    assert label in labels, labels
    box = boxes.nth(labels.index(label))
    box.click()
    box.locator("input").fill(option)  # typing filters the (virtualised) list
    listed = page.get_by_role("option", name=option, exact=True)
    if listed.count() == 0:
        page.wait_for_timeout(1000)
    if listed.count() == 0:
        shot(page, "activations-no-option")
        pytest.fail(f"{option!r} is not among the options of {label!r}: "
                    f"{[o.inner_text() for o in page.get_by_role('option').all()]}")
    listed.click()
    idle(page)


def test_activations_page_layer_subsets_drill_down(server, browser):  # noqa: F811
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
    # another layer from the selector: the second convolution
    page.locator("[data-testid='stSelectbox']", has_text="Layer").locator("input").click()
    page.get_by_role("option", name="3", exact=True).click()
    idle(page)
    no_exception(page, "Activations, layer 3")
    page.wait_for_selector("h3:has-text('Layer 3: 32 neurons')", timeout=60_000)
    # brush the left and the right part of the projection, each saved as a subset
    chart = page.locator("[data-testid='stVegaLiteChart']").nth(1)
    _brush(page, chart, 0.2, 0.5)
    _save_subset(page, "left")
    page.wait_for_selector("text=subset: left", timeout=30_000)
    _brush(page, page.locator("[data-testid='stVegaLiteChart']").nth(1), 0.5, 0.8)
    _save_subset(page, "right")
    page.wait_for_selector("text=subset: right", timeout=30_000)
    # compare the two subsets: neurons sorted by their difference
    _select_exact(page, "Sort neurons by the difference between", "subset: left")
    _select_exact(page, "and", "subset: right")
    no_exception(page, "Activations, two subsets compared")
    page.wait_for_selector("text=Largest |subset: left − subset: right| first", timeout=30_000)
    shot(page, "activations-subsets")
    # the brushed subsets are subsets on the other pages too
    open_page(page, "Local explanations")
    page.get_by_text("a subset's mean").click()
    idle(page)
    page.locator("[data-testid='stSelectbox']", has_text="Subset").locator("input").click()
    assert page.get_by_role("option", name="left", exact=True).count() == 1
    assert page.get_by_role("option", name="right", exact=True).count() == 1
    page.keyboard.press("Escape")
    page.get_by_text("nothing", exact=True).click()
    idle(page)
    open_page(page, "Activations")
    page.wait_for_selector("h3:has-text('Layer 3: 32 neurons')", timeout=60_000)
    # drill down: the first row of the instance table (misclassified first) becomes the instance, then explain it
    explain = page.locator("[data-testid='stButton'] button", has_text=re.compile(r"^Explain row \d+$"))
    before = explain.inner_text()
    click_grid_row(page, page.locator("[data-testid='stDataFrame']").last, 0)
    idle(page)
    after = explain.inner_text()
    assert after != before, (before, after)
    row = after.rsplit(" ", 1)[1]
    assert "wrong" in main.inner_text().split(f"row {row}", 1)[1][:200]  # misclassified first
    explain.click()
    idle(page)
    no_exception(page, "Activations, instance explained")
    page.wait_for_selector("text=cache miss", timeout=120_000)
    assert "saliency" in main.inner_text()
    shot(page, "activations-instance")
    # select node "6" (the 8th row: input, 0, ..., 6) in the node table: its layer becomes the page's layer
    page.get_by_text("Computation graph").click()
    page.wait_for_selector("[data-testid='stGraphVizChart'] svg", timeout=30_000)
    page.get_by_role("tab", name="Table").click()
    click_grid_row(page, page.locator("[data-testid='stDataFrame']").first, 7)
    idle(page)
    page.wait_for_selector("h3:has-text('Layer 6: 32 neurons')", timeout=60_000)
    no_exception(page, "Activations, node picked in the table")
    page.get_by_role("tab", name="Graph").click()
    idle(page)
    shot(page, "activations-digits")
    page.close()
