"""The reviewer's path in a real browser (issue 14): every panel names what it explains and its unit, every
check shows a verdict, and the report downloaded ONCE carries the sign-off and the summary, opens offline,
and has a PDF twin. Tabular sample, then the image sample. Screenshots: test-artifacts/browser/reviewer-*.png.
"""

from __future__ import annotations

import pytest

from tests.browser_kit import (  # noqa: F401 (fixtures)
    run_explainers, offline_view, ARTIFACTS, CHART, idle, no_exception, open_page, select, shot, browser, server,
)

pytestmark = pytest.mark.browser
PANEL = "[data-testid='stColumn'] [data-testid='stVerticalBlockBorderWrapper']"


def _panels_read_as_a_reviewer(page, n):
    main = page.locator("[data-testid='stMain']")
    text = main.inner_text()
    drawn = text.count("computed in")  # one per result panel that ran
    assert drawn >= n, text[:3000]
    assert text.count("Explains the probability of") == drawn - text.count("could not draw"), text[:3000]
    assert text.count("unit: ") >= drawn - text.count("could not draw")
    # every result with checks shows its verdict summary (pass / fail / facts) on its expander
    labels = main.locator("[data-testid='stExpander'] summary").all_inner_texts()
    assert any(label.strip().endswith(("pass", "fail", "warn", "run")) and "Checks:" in label for label in labels), labels


def _headings(html: str) -> list:
    """The report's section headings (h1 to h3), as text, in order."""
    import html as html_lib
    import re

    page = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S | re.I)  # the inlined libraries' own code
    return [" ".join(html_lib.unescape(re.sub(r"<[^>]+>", "", h)).split())
            for h in re.findall(r"<h[1-3][^>]*>(.*?)</h[1-3]>", page, flags=re.S)]


def _same_headings(html: str, pdf_path) -> None:
    """Every heading of the HTML report is in the PDF's text (pypdf's extraction; NFKC undoes the ligatures the
    print fonts use, "ﬀ" for "ff"), in the same order."""
    import unicodedata

    from pypdf import PdfReader

    text = " ".join(" ".join((page.extract_text() or "").split()) for page in PdfReader(pdf_path).pages)
    text = unicodedata.normalize("NFKC", text)
    heads = [unicodedata.normalize("NFKC", h) for h in _headings(html)]
    assert len(heads) >= 6 and "Summary" in heads, heads
    at = 0
    for head in heads:
        found = text.find(head, at)
        assert found >= 0, (head, text[at:at + 400])
        at = found + len(head)


def test_reviewer_path_tabular_then_image(server, browser, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    page.goto(server)
    idle(page)
    page.wait_for_selector("h1:has-text('Load')")

    open_page(page, "Local explanations")
    assert "each row's predicted class" in page.locator("[data-testid='stMain']").inner_text()
    run_explainers(page)
    no_exception(page, "Local")
    page.wait_for_selector(CHART, timeout=30_000)
    _panels_read_as_a_reviewer(page, 3)
    shot(page, "reviewer-1-local-tabular")
    page.get_by_role("button", name="Pin to report").first.click()
    idle(page)

    open_page(page, "Global explanations")
    main = page.locator("[data-testid='stMain']")
    assert 'explains the probability of "benign"' in main.inner_text()
    run_explainers(page)
    no_exception(page, "Global")
    assert "Effect of" in main.inner_text() and "drop in score" in main.inner_text()
    shot(page, "reviewer-2-global")

    # the report: sign-off typed (not saved), then ONE press of Download report
    open_page(page, "Report")
    page.get_by_label("Reviewer name").fill("Ann Reviewer")
    page.get_by_label("Sign-off note").fill("spot-checked row 0")
    with page.expect_download(timeout=120_000) as info:
        page.get_by_role("button", name="Download report").click()
    path = tmp_path / "report.html"
    info.value.save_as(path)
    idle(page)
    assert "Signed by Ann Reviewer" in main.inner_text()
    shot(page, "reviewer-3-report-page")
    html = path.read_text(encoding="utf-8")
    summary = html[html.index("<section class='summary'>"):]
    summary = summary[:summary.index("</section>")]
    for part in ("What drives the predictions", "Where the methods disagree", "Checks that fail or warn",
                 "Ann Reviewer", "spot-checked row 0"):
        assert part in summary, part
    # the PDF twin, downloaded as a reviewer does: the page's Download PDF button (printed by Chromium on the
    # server when pressed), with the same section headings as the HTML, in the same order
    idle(page)  # no rerun under way: the button's deferred file is the one the page holds
    button = page.get_by_role("button", name="Download PDF")
    try:
        with page.expect_download(timeout=170_000) as info:  # the page waits up to 180 s, Chromium up to 120 s
            button.click()
    except Exception:  # say what the page showed instead of a bare timeout
        errors = page.locator("[data-testid='stDownloadButtonError']").all_inner_texts()
        raise AssertionError(f"Download PDF gave no file; the page shows {errors}") from None
    pdf_path = tmp_path / "report.pdf"
    info.value.save_as(pdf_path)
    assert info.value.suggested_filename == "studio-report.pdf"
    _same_headings(html, pdf_path)

    view, requests = offline_view(browser, path)
    view.goto(path.as_uri())
    view.wait_for_selector(".summary", timeout=30_000)
    view.screenshot(path=str(ARTIFACTS / "reviewer-4-report-first-screen.png"))
    assert [u for u in requests if not u.startswith("data:")] == []
    view.context.close()

    # the image sample: overlays with captions naming the class and the unit
    open_page(page, "Load")
    select(page, "Sample", "Digits: small CNN (TorchScript)")
    page.locator("[data-testid='stSidebar']").get_by_text("Model: image_cnn.pt").wait_for(timeout=60_000)
    open_page(page, "Local explanations")
    run_explainers(page)
    no_exception(page, "Local (image)")
    _panels_read_as_a_reviewer(page, 2)
    assert "colour scale" in page.locator("[data-testid='stMain']").inner_text()  # overlays say how to read them
    shot(page, "reviewer-5-local-image")
    context.close()
