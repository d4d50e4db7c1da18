"""The app in a real browser: Debian's Chromium driven by Playwright against `streamlit run app.py`.

Opens every page (no stException), uploads a model + card + CSV that are not the samples,
runs three explainers on the Local page, opens Global, downloads the report and opens it
with the network blocked. Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations


import pytest

from tests.app.uploads import EVIL, onnx_mlp_files, wine_files

from tests.browser_kit import (  # noqa: F401 (fixtures)
    run_explainers, offline_view, ARTIFACTS, CHART, idle, no_exception, open_page, shot, sidebar, browser, server,
)

pytestmark = pytest.mark.browser

PAGES = ["Load", "Data", "Model", "Local explanations", "Global explanations", "Activations", "Report", "Live", "Quality"]


def test_a_page_opened_by_its_url_on_a_fresh_server_goes_through_the_router(server, browser):
    """First request of this server: /local must still get app.py's navigation, layout and sidebar."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(server + "/local")
    idle(page)
    page.wait_for_selector("h1:has-text('Local explanations')", timeout=60_000)
    idle(page)
    no_exception(page, "Local by URL")
    nav = page.locator("[data-testid='stSidebarNav']").inner_text()
    assert [line for line in nav.splitlines() if line.strip()] == PAGES
    # the sidebar's "Loaded" block may be drawn a moment after the page's heading (a clean-clone run read the
    # sidebar before it was there): wait for it, then read it
    page.locator("[data-testid='stSidebar']").get_by_text("Loaded", exact=True).wait_for(timeout=60_000)
    assert "Loaded" in page.locator("[data-testid='stSidebar']").inner_text()
    assert page.url.rstrip("/").endswith("/local")
    context.close()


def test_every_page_then_upload_explain_and_report(server, browser, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(server)
    idle(page)
    page.wait_for_selector("h1:has-text('Load')")
    no_exception(page, "Load")
    assert "tabular_gbt.skops" in page.locator("[data-testid='stSidebar']").inner_text()

    # every page on the bundled sample
    for i, name in enumerate(PAGES):
        open_page(page, name)
        no_exception(page, name)
        shot(page, f"{i}-{name.split()[0].lower()}-sample")

    # upload a model, card and CSV that are not the samples
    files = wine_files()
    (tmp_path / "wine.skops").write_bytes(files["model"])
    (tmp_path / "wine.card.json").write_bytes(files["card"])
    (tmp_path / "wine.csv").write_bytes(files["csv"])
    open_page(page, "Load")
    inputs = page.locator("[data-testid='stFileUploader'] input[type='file']")
    assert inputs.count() == 4  # model, card, dataset, model data file
    inputs.nth(0).set_input_files(str(tmp_path / "wine.skops"))
    inputs.nth(1).set_input_files(str(tmp_path / "wine.card.json"))
    inputs.nth(2).set_input_files(str(tmp_path / "wine.csv"))
    form = page.locator("[data-testid='stForm']")
    for name in ("wine.skops", "wine.card.json", "wine.csv"):  # uploads finished
        form.get_by_text(name, exact=True).wait_for(timeout=30_000)
    page.locator("[data-testid='stFormSubmitButton'] button").click()
    idle(page)
    page.locator("[data-testid='stSidebar']").get_by_text("Model: wine.skops").wait_for(timeout=60_000)
    no_exception(page, "Load after upload")
    shot(page, "6-load-uploaded")

    open_page(page, "Data")
    no_exception(page, "Data (wine)")
    # the grid draws on a canvas; its accessibility table holds each visible cell as text: the hostile feature
    # name (feature 1) must be there as text, exactly as in the file, and no element may have been built from it
    cells = page.locator("[data-testid='stDataFrame'] td")
    texts = [cells.nth(i).inner_text() for i in range(cells.count())]
    assert EVIL in texts, texts[:20]
    assert page.locator("img[src='x']").count() == 0
    shot(page, "7-data-uploaded")

    # three explainers side by side on the Local page
    open_page(page, "Local explanations")
    assert page.locator(CHART).count() == 0
    chips = page.locator("[data-testid='stMultiSelect'] [data-tag]")
    assert chips.count() == 3, "three local methods chosen by default"
    run_explainers(page)
    no_exception(page, "Local after run")
    page.wait_for_selector(CHART, timeout=30_000)
    assert page.locator(CHART).count() == 3
    # no method failed (a failing check is a verdict box, "..., so the check fails (...)", not a failed run)
    errors = page.locator("[data-testid='stAlertContentError']").all_inner_texts()
    assert [e for e in errors if "so the check fails (" not in e] == [], errors
    main = page.locator("[data-testid='stMain']")
    assert "top 12 of 13 by |value|" in main.inner_text()  # first paint: 12 of the 13 wine features
    shot(page, "8-local-three-methods")
    # the agreement table is drawn on request
    frames = page.locator("[data-testid='stDataFrame']").count()
    main.get_by_text("Show rank agreement between methods").click()
    idle(page)
    no_exception(page, "Local agreement")
    assert page.locator("[data-testid='stDataFrame']").count() == frames + 1
    shot(page, "8b-local-agreement")

    # Global: importance and the PDP/ALE chart for one feature
    open_page(page, "Global explanations")
    run_explainers(page)
    no_exception(page, "Global after run")
    assert page.locator("h3:has-text('Effect of')").count() == 1
    assert page.locator(CHART).count() >= 2
    shot(page, "9-global")

    # the report: downloaded, then opened with every request blocked
    open_page(page, "Report")
    with page.expect_download(timeout=120_000) as info:
        page.get_by_role("button", name="Download report").click()
    path = tmp_path / "report.html"
    info.value.save_as(path)
    html = path.read_text(encoding="utf-8")
    assert EVIL not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    shot(page, "10-report-page")

    view, requests = offline_view(browser, path)
    view.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    view.goto(path.as_uri())
    view.wait_for_selector(".live.rendered svg", timeout=30_000)
    n_specs = view.locator("script.vl-spec").count()
    assert n_specs >= 5 and view.locator(".live.rendered").count() == n_specs  # every chart drew live, offline
    assert EVIL in view.locator("body").inner_text()  # shown as text
    assert view.locator("img[src='x']").count() == 0
    assert [u for u in requests if not u.startswith("data:")] == []
    view.screenshot(path=str(ARTIFACTS / "11-report-offline.png"), full_page=True)
    view.context.close()

    # an image model: the Local page explains an uploaded single image (RGB and larger than the model's 32x32 grey)
    open_page(page, "Load")
    page.locator("[data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name="Digits: small CNN (TorchScript)").click()
    idle(page)
    page.locator("[data-testid='stSidebar']").get_by_text("Model: image_cnn.pt").wait_for(timeout=60_000)
    open_page(page, "Local explanations")
    digit = tmp_path / "my digit.png"
    _digit_png(digit)
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(digit))
    page.locator("[data-testid='stMain']").get_by_text("uploaded image my digit.png").wait_for(timeout=60_000)
    idle(page)
    run_explainers(page)
    no_exception(page, "Local, uploaded image")
    # no method failed (a failing check is a verdict box, "..., so the check fails (...)", not a failed run)
    errors = page.locator("[data-testid='stAlertContentError']").all_inner_texts()
    assert [e for e in errors if "so the check fails (" not in e] == [], errors
    shot(page, "12-local-uploaded-image")
    assert page.locator("[data-testid='stMain'] [data-testid='stImage']").count() == 4, (  # the upload + 3 overlays
        page.locator("[data-testid='stMain']").inner_text()[:3000])
    assert dialogs == []
    context.close()


def test_two_file_onnx_model_uploaded_and_explained(server, browser, tmp_path):
    """torch.onnx.export's model.onnx + model.onnx.data: uploaded as two files, then as one .zip, and explained."""
    from tests.conftest import SAMPLE_DATA

    files = onnx_mlp_files(tmp_path)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(server)
    idle(page)
    page.wait_for_selector("h1:has-text('Load')")
    page.locator("[data-testid='stMain']").get_by_text("Model data file (optional)").wait_for(timeout=60_000)
    inputs = page.locator("[data-testid='stFileUploader'] input[type='file']")
    assert inputs.count() == 4
    inputs.nth(0).set_input_files(str(files["onnx"]))
    inputs.nth(2).set_input_files(str(SAMPLE_DATA / "breast_cancer.csv"))
    inputs.nth(3).set_input_files(str(files["data"]))
    form = page.locator("[data-testid='stForm']")
    for name in ("cancer_mlp.onnx", "breast_cancer.csv", "cancer_mlp.onnx.data"):
        form.get_by_text(name, exact=True).wait_for(timeout=30_000)
    page.locator("[data-testid='stFormSubmitButton'] button").click()
    idle(page)
    page.locator("[data-testid='stSidebar']").get_by_text("Model: cancer_mlp.onnx").wait_for(timeout=60_000)
    no_exception(page, "Load, two-file ONNX")
    assert page.locator("[data-testid='stAlertContentError']").count() == 0
    shot(page, "13-load-onnx-two-files")

    open_page(page, "Local explanations")
    run_explainers(page)
    no_exception(page, "Local, two-file ONNX")
    page.wait_for_selector(CHART, timeout=30_000)
    assert page.locator(CHART).count() >= 2
    assert page.locator("[data-testid='stAlertContentError']").count() == 0
    shot(page, "14-local-onnx-two-files")

    # the same model as one .zip in the Model file uploader, the data file uploader left empty
    page.goto(server)
    idle(page)
    page.wait_for_selector("h1:has-text('Load')")
    page.locator("[data-testid='stMain']").get_by_text("Model data file (optional)").wait_for(timeout=60_000)
    inputs = page.locator("[data-testid='stFileUploader'] input[type='file']")
    inputs.nth(0).set_input_files(str(files["zip"]))
    inputs.nth(2).set_input_files(str(SAMPLE_DATA / "breast_cancer.csv"))
    for name in ("cancer_mlp.zip", "breast_cancer.csv"):
        page.locator("[data-testid='stForm']").get_by_text(name, exact=True).wait_for(timeout=30_000)
    page.locator("[data-testid='stFormSubmitButton'] button").click()
    idle(page)
    page.locator("[data-testid='stSidebar']").get_by_text("Model: cancer_mlp.onnx").wait_for(timeout=60_000)
    no_exception(page, "Load, zipped ONNX")
    assert page.locator("[data-testid='stAlertContentError']").count() == 0
    context.close()  # the scikit-learn pipeline upload: test_skops_pipeline_with_strings_and_nan_explained


def _digit_png(path) -> None:
    """A 96x96 RGB PNG of a digit drawn with Pillow (not from the sample data)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (96, 96), "black")
    ImageDraw.Draw(img).line([(20, 16), (76, 16), (40, 84)], fill="white", width=10)  # a 7
    img.save(path)


def test_skops_pipeline_with_strings_and_nan_explained(server, browser, tmp_path):
    """Pipeline(ColumnTransformer(OneHotEncoder on strings, SimpleImputer + StandardScaler on numbers), forest),
    saved with skops, with a CSV holding string columns and empty cells: loaded, and explained on the Local page."""
    import re
    import sys

    import skops.io as sio

    from tests.browser_kit import choose_uploads, session, submit
    from tests.conftest import ROOT

    sys.path.insert(0, str(ROOT / "tests" / "models"))
    import skops_estimators as se

    frame, y = se.user_pipeline_table(150, seed=4)
    pipe = se.user_pipeline(15).fit(frame, y)
    sio.dump(pipe, tmp_path / "shop_pipeline.skops")
    csv = frame.assign(outcome=y)
    csv.to_csv(tmp_path / "shop.csv", index=False)
    assert csv.isna().any().any() and (csv["colour"].dtype == object)

    context, page = session(browser, server)
    choose_uploads(page, tmp_path / "shop_pipeline.skops", None, tmp_path / "shop.csv")
    submit(page)
    page.locator("[data-testid='stSidebar']").get_by_text("Model: shop_pipeline.skops").wait_for(timeout=60_000)
    no_exception(page, "Load, skops pipeline")
    assert page.locator("[data-testid='stAlertContentError']").count() == 0
    shot(page, "15-load-skops-pipeline")

    open_page(page, "Local explanations")
    run_explainers(page)
    no_exception(page, "Local, skops pipeline")
    page.wait_for_selector(CHART, timeout=30_000)
    shot(page, "16-local-skops-pipeline")
    errors = page.locator("[data-testid='stAlertContentError']")
    texts = [errors.nth(i).inner_text() for i in range(errors.count())]
    # only check verdicts may be red (LIME's local fit and the anchor's precision on a forest); no failed method
    assert all(re.search(r"so the check fails \(pass", t) for t in texts), texts
    assert page.locator(CHART).count() >= 3  # shap, lime, and the anchor's precision and coverage
    main = page.locator("[data-testid='stMain']").inner_text()
    assert "colour" in main and "size" in main  # the string columns are explained as themselves
    context.close()
