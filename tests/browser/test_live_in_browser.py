"""The Live page in Chromium against a real training process (tests/watch/trainer.py in a subprocess).

Attach by address and token, open a loss stream, per-layer gradient norms and the top examples by loss, all
after training began; set the learning rate and stop the run from the page. Screenshots go to
test-artifacts/browser/live-*.png.
"""

from __future__ import annotations

import pytest

from tests.watch.conftest import read_log, start_trainer

from tests.browser_kit import (  # noqa: F401 (fixtures)
    CHART, idle, no_exception, select, shot, browser, server,
)

pytestmark = pytest.mark.browser


def test_live_page_against_a_training_process(server, browser, tmp_path):  # noqa: F811
    log = tmp_path / "run.jsonl"
    proc, address, token = start_trainer(log, "--sleep", "0.01", "--max-seconds", "240")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(server + "/live")
        page.wait_for_selector("h1:has-text('Live')", timeout=60_000)
        idle(page)
        page.get_by_label("Address").fill(address)
        page.get_by_label("Token").fill(token)
        page.get_by_role("button", name="Attach").click()
        idle(page)
        page.get_by_text("Attached to digits-cnn").wait_for(timeout=30_000)

        page.get_by_label("Chart (streams with the same chart name share it)").fill("loss")
        page.get_by_role("button", name="Open stream").click()  # scalar(loss), mean per epoch: the defaults
        idle(page)
        select(page, "Map", "grad_norm")
        select(page, "Reduce", "max")
        page.get_by_label("Chart (streams with the same chart name share it)").fill("gradient norms")
        page.get_by_role("button", name="Open stream").click()
        idle(page)
        select(page, "Map", "top_loss")
        select(page, "Reduce", "topk")
        page.get_by_label("Chart (streams with the same chart name share it)").fill("current mistakes")
        page.get_by_role("button", name="Open stream").click()
        idle(page)
        main = page.locator("[data-testid='stMain']")
        main.locator(CHART).nth(1).wait_for(timeout=60_000)
        main.locator("[data-testid='stImage']").first.wait_for(timeout=60_000)
        page.wait_for_timeout(4000)  # a few more epochs on the charts
        no_exception(page, "Live with three streams")
        assert main.locator(CHART).count() == 2
        shot(page, "live-1-streams", settle_ms=1500)

        page.get_by_label("lr").fill("0.01")
        page.get_by_role("button", name="Set lr").click()
        idle(page)
        page.get_by_text("lr = 0.01 acknowledged").wait_for(timeout=30_000)
        page.get_by_role("button", name="stop", exact=True).click()
        idle(page)
        page.get_by_text("stop acknowledged").wait_for(timeout=30_000)
        assert proc.wait(30) == 0
        no_exception(page, "Live after stop")
        shot(page, "live-2-after-stop", settle_ms=1500)
        records = read_log(log)
        assert records[-1]["stopped"] is True and any(r.get("lr_set") == 0.01 for r in records)
    finally:
        context.close()
        if proc.poll() is None:
            proc.kill()
