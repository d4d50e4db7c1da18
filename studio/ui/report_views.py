"""Report page views: pinned panels with comments, and the cached HTML build."""

from __future__ import annotations

import json

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


def report_html(model, data, pins: list, signoff: dict | None) -> tuple[str, int]:
    """The report HTML (rebuilt only when pins, comments or sign-off change) and its section count."""
    explanations = [] if pins else session_explanations(model, data)
    if explanations:
        st.caption("In the report: " + views.md_escape(", ".join(
            f"{e.method} ({'rows ' + ', '.join(map(str, e.rows)) if e.rows else 'global'})" for e in explanations)))
    key = json.dumps([model.cache_id, data.fingerprint, [(p["key"], p.get("comment", "")) for p in pins],
                      [e.provenance.get("cache_key", e.method) for e in explanations], signoff], default=str)
    from studio.ui.quality import current as current_assessment

    assessment = current_assessment(model, data)
    if assessment is not None:
        st.caption("In the report: the Quality page's assessment.")
        key += str(id(assessment))
    html = state._memo("report", key, lambda: build_report(model, data, explanations, pins=pins, signoff=signoff,
                                                           assessment=assessment))
    return html, len(pins) + len(explanations) + (assessment is not None)


def committed_signoff() -> dict | None:
    """The sign-off committed by the form (None when neither a name nor a verdict was given)."""
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


def pdf_button(container, html: str) -> None:
    """A ``Download PDF`` button beside the HTML one: the same HTML printed by headless Chromium when pressed
    (deferred: nothing is printed until someone asks), or a note when no Chromium is installed."""
    from studio.report import html_to_pdf, pdf_engine

    if pdf_engine() is None:
        container.caption("PDF export needs Chromium on the server (apt-get install chromium).")
        return
    container.download_button("Download PDF", data=lambda: html_to_pdf(html), file_name="studio-report.pdf",
                              mime="application/pdf", width="stretch", on_click="ignore")


def comment_inputs(pins: list) -> None:
    """One comment box per pin, inside the sign-off form: committed with it, so the next download carries them."""
    for pin in pins:
        key = f"comment-{pin['key']}"
        if key not in st.session_state:
            st.session_state[key] = pin.get("comment", "")
        st.text_area(f"Comment on: {views.md_escape(pin['title'])}", key=key, height=68)
        pin["comment"] = st.session_state[key]
