"""The report's first download carries the sign-off just typed (issue 14): type a name and a note, press Download
report ONCE (no Save first), and the HTML has both; edit the note, press Download PDF once, and the PDF has the
new note. Screenshot: test-artifacts/browser/signoff-typed-then-downloaded.png.
"""

from __future__ import annotations

import io

import pytest

from tests.browser_kit import browser, idle, no_exception, open_page, server, session, shot  # noqa: F401

pytestmark = pytest.mark.browser


def _download(page, label, path):
    with page.expect_download(timeout=120_000) as info:
        page.get_by_role("button", name=label).click()
    info.value.save_as(path)
    return path.read_bytes()


def test_typed_signoff_is_in_the_first_html_and_pdf_download(server, browser, tmp_path):
    context, page = session(browser, server, accept_downloads=True)
    open_page(page, "Report")
    no_exception(page, "Report")
    page.get_by_label("Reviewer name").fill("Bea Typed-Only")
    page.get_by_label("Sign-off note").fill("never saved, still signed")
    html = _download(page, "Download report", tmp_path / "report.html").decode("utf-8")
    summary = html[html.index("<section class='summary'>"):]
    summary = summary[:summary.index("</section>")]
    assert "Bea Typed-Only" in summary and "never saved, still signed" in summary
    idle(page)
    main = page.locator("[data-testid='stMain']").inner_text()
    assert "Signed by Bea Typed-Only" in main  # the page now says what the file carries
    shot(page, "signoff-typed-then-downloaded")

    if not page.get_by_role("button", name="Download PDF").count():
        pytest.skip("no Chromium for the PDF on the server")
    page.get_by_label("Sign-off note").fill("second note, typed then PDF")
    pdf = _download(page, "Download PDF", tmp_path / "report.pdf")
    assert pdf[:5] == b"%PDF-"
    from pypdf import PdfReader

    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    text = " ".join(text.split())
    assert "Bea Typed-Only" in text and "second note, typed then PDF" in text, text[:2000]
    no_exception(page, "Report after downloads")
    context.close()
