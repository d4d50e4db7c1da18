"""A 5-million-row Parquet file through the app: each Data and Model page interaction answers within 3 s.

The table (7 numeric features rounded to 0.01 and a 0/1 label, about 44 MB) is generated once per module with
pyarrow in chunks of one million rows (``benchmarks.large_tables.make_table``, as the benchmark's); the model is a LogisticRegression fitted here on 20,000 other rows and
saved by skops. The Load page accepts files by upload only (it has no "path on the server" field), so the file
goes through the dataset uploader, the smallest real route. Loading (upload, one DuckDB pass for the summaries)
is timed and printed but not bounded: the bound is on what a reviewer does next.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser_kit import (  # noqa: F401 (fixtures)
    browser,
    choose_uploads,
    idle,
    no_exception,
    open_page,
    server,
    session,
    shot,
    submit,
)

pytestmark = pytest.mark.browser

ROWS = 5_000_000
FEATURES = [f"f{i}" for i in range(7)]
LIMIT_S = 3.0


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import pandas as pd
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from benchmarks.large_tables import make_table

    folder = tmp_path_factory.mktemp("large-table")
    took = make_table(folder / "five_million.parquet", ROWS, columns=len(FEATURES))
    print(f"generated {ROWS:,} rows x {len(FEATURES) + 1} columns in {took:.1f} s, "
          f"{(folder / 'five_million.parquet').stat().st_size / 1e6:.0f} MB")
    make_table(folder / "train.parquet", 20_000, columns=len(FEATURES), seed=1)  # other rows, same rule
    train = pd.read_parquet(folder / "train.parquet")
    model = LogisticRegression().fit(train[FEATURES].to_numpy(), train["target"].to_numpy())
    (folder / "model.skops").write_bytes(sio.dumps(model))
    (folder / "model.card.json").write_text(json.dumps({
        "task": "classification", "class_names": ["no", "yes"], "feature_names": FEATURES}))
    return folder


RUNNING = "[data-testid='stApp'][data-test-script-state='running']"
NOT_RUNNING = "[data-testid='stApp'][data-test-script-state='notRunning']"


def _timed(page, label, trigger, times):
    """Seconds from ``trigger()`` (one click or key press) until the script run it started has finished."""
    start = time.monotonic()
    trigger()
    with contextlib.suppress(PlaywrightTimeout):  # the run may end before the first look
        page.wait_for_selector(RUNNING, timeout=2_000)
    page.wait_for_selector(NOT_RUNNING, timeout=120_000)
    times[label] = time.monotonic() - start
    idle(page)
    no_exception(page, label)


def _open(page, name):
    return lambda: page.locator("[data-testid='stSidebarNav'] a", has_text=name).first.click()


def _choose(page, label, option, times=None):
    """Choose ``option`` in the select box labelled exactly ``label`` (several labels share words); timed when
    ``times`` is given (from the click on the option)."""
    box = page.locator("[data-testid='stSelectbox']").filter(
        has=page.locator("[data-testid='stWidgetLabel']").get_by_text(label, exact=True)).first
    box.locator("input").click()
    item = page.get_by_role("option", name=option, exact=True)
    try:
        item.wait_for(timeout=5_000)
        trigger = item.click
    except PlaywrightTimeout:  # the list did not open on the click: type the option into the box instead
        box.locator("input").fill(option)
        def trigger():
            page.keyboard.press("Enter")
    if times is None:
        trigger()
        idle(page)
    else:
        _timed(page, f"choose {option} in {label}", trigger, times)


def _fill(page, label, text):
    field = page.get_by_label(label, exact=True)
    field.fill(text)
    field.press("Enter")
    idle(page)


def test_five_million_rows_answer_within_three_seconds(server, browser, files):
    # 3 s on an idle machine; when other processes hold the cores the bound grows with the run queue per core
    # (this 2-core machine is shared: a load of 16 makes every process about 8 times slower)
    busy = max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    context, page = session(browser, server)
    page.locator("[data-testid='stFileUploader'] input[type='file']").nth(3).wait_for(state="attached")
    times = {}
    choose_uploads(page, files / "model.skops", files / "model.card.json", files / "five_million.parquet")
    start = time.monotonic()
    submit(page)
    page.locator("[data-testid='stSidebar']").get_by_text("5000000 rows (sample 50000)").wait_for(timeout=180_000)
    load_s = time.monotonic() - start

    _timed(page, "open Data", _open(page, "Data"), times)
    main = page.locator("[data-testid='stMain']")
    text = main.inner_text()
    assert "five_million.parquet: 5,000,000 rows" in text
    assert "uniform sample of 50,000 of 5,000,000 rows (seed 0)" in text
    assert "Labels counted over every one of the 5,000,000 rows" in text
    shot(page, "large-table-data")

    _choose(page, "Column", "f3", times)
    page.get_by_text("f3: every one of 5,000,000 rows (DuckDB)").wait_for(timeout=5_000)

    _choose(page, "Operator", ">")
    _fill(page, "Filter value", "1.5")
    _timed(page, "filter rows", page.get_by_role("button", name="Add filter").click, times)
    match = re.search(r"([\d,]+) of 5,000,000 rows\s+match", main.inner_text())
    assert match, main.inner_text()[-800:]
    count = int(match.group(1).replace(",", ""))
    assert 0.05 * ROWS < count < 0.09 * ROWS  # P(f0 > 1.5) = 0.067 for a standard normal rounded to 0.01
    shot(page, "large-table-data-filter")

    _timed(page, "open Model", _open(page, "Model"), times)
    assert "a uniform sample of 50,000 of 5,000,000 rows (seed 0)" in main.inner_text()
    _choose(page, "Column", "f0")
    _choose(page, "Op", ">")
    _fill(page, "Value", "1.5")
    page.get_by_role("button", name="Add condition").click()
    idle(page)
    _fill(page, "Subset name", "high f0")
    _timed(page, "define a subset", page.get_by_role("button", name="Save subset").click, times)
    # the subset table is a canvas grid (no DOM text): its "rows in file" column is read on the screenshot
    page.get_by_text("Delete a subset").wait_for(timeout=5_000)
    shot(page, "large-table-model")
    print(f"load {load_s:.1f} s; seconds per interaction (bound {LIMIT_S * busy:.1f} s at load "
          f"{os.getloadavg()[0]:.1f}):", {k: round(v, 2) for k, v in times.items()}, f"filter count {count:,}")
    slow = {k: round(v, 2) for k, v in times.items() if v > LIMIT_S * busy}
    assert not slow, f"over {LIMIT_S * busy:.1f} s: {slow}"
    context.close()
