"""The Live page in Chromium against the sample CNN training with the agent (``models/train_images.py --watch``).

Attach by address and token; after training began, open the loss (recorded to Parquet), the per-layer gradient
norms and the current mistakes (top examples by loss); add a past run from TensorBoard event files (written here
by torch's SummaryWriter) on the loss chart beside the live one; set the learning rate and stop the run from the
page; then add the Parquet recording of the live loss as a stored run. Screenshots go to
test-artifacts/browser/live-*.png.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from studio.watch import replay
from tests.browser_kit import (  # noqa: F401 (fixtures)
    CHART,
    browser,
    idle,
    no_exception,
    select,
    server,
    shot,
)
from tests.watch.conftest import start_trainer

pytestmark = pytest.mark.browser
TRAIN_IMAGES = Path(__file__).resolve().parents[2] / "models" / "train_images.py"
CHART_NAME = "Chart (streams with the same chart name share it)"


def _past_run(path: Path):
    """A finished run's loss in TensorBoard's format, written by torch's own writer."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(path)) as w:
        for step in range(0, 200, 5):
            w.add_scalar("loss", 2.3 * math.exp(-step / 60) + 0.2, global_step=step)


def _open(page, map_name, reduce, chart):
    select(page, "Map", map_name)
    select(page, "Reduce", reduce)
    page.get_by_label(CHART_NAME).fill(chart)
    page.get_by_role("button", name="Open stream").click()
    idle(page)
    page.get_by_text("Opened stream").last.wait_for(timeout=30_000)


def _add_stored(page, path, chart, tags=""):
    page.get_by_role("textbox", name="Stored run folder").fill(str(path))
    page.get_by_label("Tags or metrics (comma-separated; empty: all)").fill(tags)
    page.get_by_label("Chart (draw it beside the live stream of this chart name)").fill(chart)
    page.get_by_role("button", name="Add").click()
    idle(page)


def test_live_page_against_the_sample_cnn_training(server, browser, tmp_path):  # noqa: F811
    _past_run(tmp_path / "tb" / "last-week")
    recording = tmp_path / "loss-recording"
    proc, address, token = start_trainer(None, "--watch", "--epochs", "500", script=TRAIN_IMAGES, timeout=120)
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
        page.get_by_text("Attached to image_cnn").wait_for(timeout=30_000)

        page.get_by_text("every N events").click()  # loss: mean over every 10 batches, recorded to Parquet
        idle(page)
        page.get_by_label("Record to folder").fill(str(recording))
        _open(page, "scalar", "mean", "loss")
        page.get_by_label("Record to folder").fill("")
        _open(page, "grad_norm", "max", "gradient norms")  # the vanishing-gradient diagnosis: one line per layer
        page.get_by_text("the script (end_window)").click()
        idle(page)
        _open(page, "top_loss", "topk", "current mistakes")  # the worst 8 of each epoch, with predictions
        _add_stored(page, tmp_path / "tb", "loss", "loss")
        page.get_by_text("Added last-week (tensorboard)").wait_for(timeout=30_000)

        main = page.locator("[data-testid='stMain']")
        main.locator(CHART).nth(1).wait_for(timeout=90_000)
        main.locator("[data-testid='stImage']").first.wait_for(timeout=120_000)
        page.wait_for_timeout(4000)  # a few more windows on the charts
        no_exception(page, "Live with three streams and a stored run")
        assert main.locator(CHART).count() == 2  # loss (live + TensorBoard) and gradient norms
        assert main.get_by_text("last-week (tensorboard) · loss → chart loss").count() == 1
        idle(page)  # between two refreshes of the charts' fragment, so nothing is drawn stale
        shot(page, "live-1-streams-and-stored", settle_ms=300)

        page.get_by_label("lr").fill("0.001")
        page.get_by_role("button", name="Set lr").click()
        idle(page)
        page.get_by_text("lr = 0.001 acknowledged").wait_for(timeout=30_000)
        page.get_by_role("button", name="stop", exact=True).click()
        idle(page)
        page.get_by_text("stop acknowledged").wait_for(timeout=30_000)
        assert proc.wait(60) == 0

        _add_stored(page, recording, "loss")  # the live loss, recorded by the page's client, read back
        page.get_by_text("Added image_cnn (stored)").wait_for(timeout=30_000)
        page.wait_for_timeout(2500)
        no_exception(page, "Live after stop with the recording added")
        assert main.locator(CHART).count() == 2
        idle(page)
        shot(page, "live-2-after-stop-with-recording", settle_ms=300)
        stored = replay(recording).poll()
        assert stored and all(v.kind == "scalar" and v.events == 10 for v in stored)
    except Exception:
        shot(page, "live-failed")  # what the page showed when it failed
        raise
    finally:
        context.close()
        if proc.poll() is None:
            proc.kill()
