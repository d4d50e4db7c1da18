"""Report page views: pinned panels with comments, and the cached HTML build."""

from __future__ import annotations

import json
import threading

import streamlit as st

from studio.report import build_report
from studio.ui import state, views


def pinned_panels(pins: list) -> None:
    """Each pin as it will appear, its saved comment, and a remove button (comments are written in the sign-off
    form, :func:`comment_inputs`)."""
    for i, pin in enumerate(list(pins)):
        with st.container(border=True):
            st.markdown(f"**{views.md_escape(pin['title'])}**")
            st.caption(f"from {pin['page']}")
            if pin.get("spec"):
                st.vega_lite_chart(pin["spec"])
            if pin.get("png"):
                st.image(pin["png"], width=192)
            if pin.get("text"):
                st.code(pin["text"], language=None)
            if pin.get("comment"):
                st.markdown(f"> **Reviewer:** {views.md_escape(pin['comment'])}")
            if st.button("Remove", key=f"unpin-{pin['key']}"):
                pins.remove(pin)
                st.rerun()


def session_explanations(model, data) -> list:
    """Every successful result of this session on this model and data (used when nothing is pinned)."""
    return [r.explanation for r in st.session_state.get("results", {}).values()
            if r.explanation is not None and r.explanation.model_id == model.fingerprint
            and r.explanation.dataset_id == data.fingerprint]


def report_html(model, data, pins: list, signoff: dict | None, captions: bool = True) -> tuple[str, int]:
    """The report HTML (rebuilt only when pins, comments or sign-off change) and its section count; ``captions``
    says on the page what the file holds (off inside a button's callback, where nothing may be drawn)."""
    explanations = [] if pins else session_explanations(model, data)
    if explanations and captions:
        st.caption("In the report: " + views.md_escape(", ".join(
            f"{e.method} ({'rows ' + ', '.join(map(str, e.rows)) if e.rows else 'global'})" for e in explanations)))
    key = json.dumps([model.cache_id, data.fingerprint, [(p["key"], p.get("comment", "")) for p in pins],
                      [e.provenance.get("cache_key", e.method) for e in explanations], signoff], default=str)
    from studio.ui.quality import current as current_assessment

    assessment = current_assessment(model, data)
    if assessment is not None:
        if captions:
            st.caption("In the report: the Quality page's assessment.")
        key += str(id(assessment))
    html = state._memo("report", key, lambda: build_report(model, data, explanations, pins=pins, signoff=signoff,
                                                           assessment=assessment))
    return html, len(pins) + len(explanations) + (assessment is not None)


class Delivery:
    """Hands the file built by a download button's click to the button's deferred ``data`` callable.

    A download button's file is normally built before the click, from the values committed then; a reviewer who
    types a name and presses Download at once would get a file without it. Here the click's own rerun (whose
    widget values include everything just typed) builds the file in the button's ``on_click`` callback and
    :meth:`deliver` s it; the callable that Streamlit runs on the click (on another thread,
    ``st.download_button(data=callable)``, Streamlit >= 1.52) waits for that delivery.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._count = 0
        self._payload: bytes | None = None
        self._error = ""

    def deliver(self, payload: bytes | None, error: str = "") -> None:
        """Hand over the file built for the latest click (or ``None`` and why it could not be built)."""
        with self._cond:
            self._count += 1
            self._payload, self._error = payload, error
            self._cond.notify_all()

    def waiter(self, timeout: float = 300.0):
        """The ``data`` callable for a button drawn now: it returns the first file delivered after this call.

        Raises
        ------
        StudioError
            When no file came within ``timeout`` seconds, or its build failed (the button shows the error).
        """
        from studio.errors import StudioError

        with self._cond:
            seen = self._count

        def wait() -> bytes:
            with self._cond:
                if not self._cond.wait_for(lambda: self._count > seen, timeout):
                    raise StudioError(f"The report was not built within {timeout:.0f} s of the click; press "
                                      "Download again.")
                if self._payload is None:
                    raise StudioError(self._error or "The report could not be built; see the page.")
                return self._payload

        return wait


def delivery(slot: str) -> Delivery:
    """This session's :class:`Delivery` for one button (kept in the session state)."""
    return st.session_state.setdefault(f"_delivery-{slot}", Delivery())


def build_on_click(slot: str, model, data, pins: list, render=None) -> None:
    """``on_click`` of a report download: build the file from the values this click committed and deliver it.

    ``render`` turns the HTML into the file's bytes (default UTF-8; the PDF button prints it). Comments typed in
    the pins' boxes are read from the session state, where the click's rerun has just put them.
    """
    for pin in pins:
        if f"comment-{pin['key']}" in st.session_state:
            pin["comment"] = st.session_state[f"comment-{pin['key']}"]
    try:
        html, _ = report_html(model, data, pins, committed_signoff(), captions=False)
        delivery(slot).deliver(render(html) if render else html.encode("utf-8"))
    except Exception as e:  # the waiting download says why instead of timing out
        delivery(slot).deliver(None, f"The report could not be built: {e}")
        raise


def download_buttons(model, data, pins: list) -> None:
    """``Download report`` (HTML) and ``Download PDF`` side by side; each click builds its file from the values
    committed by that very click, so a name typed and not saved is in the first download."""
    from studio.report import html_to_pdf, pdf_engine

    c1, c2 = st.columns(2)
    c1.download_button("Download report", data=delivery("html").waiter(), file_name="studio-report.html",
                       mime="text/html", type="primary", width="stretch", key="report-download-html",
                       on_click=build_on_click, args=("html", model, data, pins))
    if pdf_engine() is None:
        c2.caption("PDF export needs Chromium on the server (apt-get install chromium).")
        return
    c2.download_button("Download PDF", data=delivery("pdf").waiter(), file_name="studio-report.pdf",
                       mime="application/pdf", width="stretch", key="report-download-pdf",
                       on_click=build_on_click, args=("pdf", model, data, pins), kwargs={"render": html_to_pdf})


def committed_signoff() -> dict | None:
    """The sign-off committed by the latest click (None when neither a name nor a verdict was given)."""
    ss = st.session_state
    signoff = {"name": ss.get("signoff-name", ""), "date": str(ss.get("signoff-date", "")),
               "verdict": ss.get("signoff-verdict", "(none)"), "note": ss.get("signoff-note", "")}
    if signoff["verdict"] == "(none)" and not signoff["name"]:
        return None
    return signoff


def signoff_line(signoff: dict) -> str:
    """``Signed by Ann on 2026-11-30: approved (with a note)`` (Markdown-escaped)."""
    verdict = "no verdict given" if signoff["verdict"] == "(none)" else signoff["verdict"]
    text = f"Signed by {signoff['name'] or '(no name)'} on {signoff['date']}: {verdict}"
    return views.md_escape(text + (" (with a note)" if signoff.get("note") else "") + "; the download carries it.")


def comment_inputs(pins: list) -> None:
    """One comment box per pin: committed by the next click (Save or Download), without a rerun per keystroke."""
    for pin in pins:
        key = f"comment-{pin['key']}"
        if key not in st.session_state:
            st.session_state[key] = pin.get("comment", "")
        st.text_area(f"Comment on: {views.md_escape(pin['title'])}", key=key, height=68, on_change="ignore")
        pin["comment"] = st.session_state[key]
