"""Issue 13 in the browser: a 2-feature PDP / ALE on data with missing values (the "missing" row), an image set
with an RGBA file (the Data page says the alpha channel was dropped), and an anchor rule printed at the data's
precision. Screenshots: test-artifacts/browser/13-*.png."""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pandas as pd
import pytest

from tests.browser_kit import (CHART, browser, choose_uploads, no_exception, open_page, run_explainers,  # noqa: F401
                               select, server, session, shot, submit)

pytestmark = pytest.mark.browser


def _nan_files(folder):
    """A HistGradientBoosting classifier saved with skops and its CSV, 20% of column "a" missing (class 1)."""
    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    n = 300
    a, b, c = rng.uniform(0, 1, n), rng.normal(size=n), rng.normal(size=n)
    gone = rng.random(n) < 0.2
    y = np.where(gone, 1, (a + 0.3 * b > 0.6)).astype(int)
    a[gone] = np.nan
    frame = pd.DataFrame({"a": a, "b": b, "c": c})
    est = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(frame, y)
    sio.dump(est, folder / "nan_hgb.skops")
    frame.assign(target=y).to_csv(folder / "nan.csv", index=False)
    return folder / "nan_hgb.skops", folder / "nan.csv"


def _rgba_zip(path):
    """Class folders 0/ and 1/ of 32x32 PNGs: grey, RGB and RGBA (half transparent) files."""
    from PIL import Image

    rng = np.random.default_rng(1)
    with zipfile.ZipFile(path, "w") as zf:
        for cls in ("0", "1"):
            for mode, ch in (("L", 1), ("RGB", 3), ("RGBA", 4)):
                arr = rng.integers(0, 256, (32, 32, ch), dtype=np.uint8)
                if mode == "RGBA":
                    arr[..., 3] = np.where(np.arange(32)[None, :] < 16, 255, 0)
                buf = io.BytesIO()
                Image.fromarray(arr[..., 0] if ch == 1 else arr, mode).save(buf, format="PNG")
                zf.writestr(f"{cls}/{mode.lower()}.png", buf.getvalue())
    return path


def test_missing_row_rgba_note_and_short_anchor_thresholds(server, browser, tmp_path):  # noqa: F811
    from tests.conftest import ROOT

    model, csv = _nan_files(tmp_path)
    context, page = session(browser, server)
    choose_uploads(page, model, None, csv)
    submit(page)
    page.locator("[data-testid='stSidebar']").get_by_text("Model: nan_hgb.skops").wait_for(timeout=60_000)

    # Global: PDP and ALE of a, and the a x b surfaces with their "missing" row
    open_page(page, "Global explanations")
    select(page, "Interaction with (heatmap)", "b")
    run_explainers(page)
    no_exception(page, "Global, NaN data")
    assert page.locator("h3:has-text('Interaction: a x b')").count() == 1
    assert page.locator(CHART).count() >= 3
    shot(page, "13-global-2d-pdp-missing-row")

    # Local: the anchor rule's thresholds at the data's precision (no 17-digit floats)
    open_page(page, "Local explanations")
    run_explainers(page)
    no_exception(page, "Local, NaN data")
    rules = [page.locator("[data-testid='stCode']").nth(i).inner_text()
             for i in range(page.locator("[data-testid='stCode']").count())]
    assert any(" THEN " in r or "IF " in r for r in rules), rules
    assert not any(re.search(r"\d\.\d{8,}", r) for r in rules), rules
    shot(page, "13-local-anchor-rule")
    context.close()

    # Data: an image set with an RGBA file says that its alpha channel was dropped
    context, page = session(browser, server)
    cnn = ROOT / "models" / "image_cnn.pt"
    choose_uploads(page, cnn, cnn.with_suffix(".card.json"), _rgba_zip(tmp_path / "rgba.zip"))
    submit(page)
    page.locator("[data-testid='stSidebar']").get_by_text("Model: image_cnn.pt").wait_for(timeout=60_000)
    open_page(page, "Data")
    no_exception(page, "Data, RGBA set")
    main = page.locator("[data-testid='stMain']").inner_text()
    assert "alpha channel was dropped" in main and "with transparent pixels" in main, main[:2000]
    shot(page, "13-data-rgba-note")
    context.close()
