"""Report page views: pinned panels with comments, and the cached HTML build."""

from __future__ import annotations

import json

import streamlit as st

from studio.report import build_report
from studio.ui import state, views


def pinned_panels(pins: list) -> None:
    """Each pin as it will appear, a comment box, and a remove button."""
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
            pin["comment"] = st.text_area("Reviewer comment", value=pin.get("comment", ""), key=f"comment-{pin['key']}",
                                          height=70)
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
    html = state._memo("report", key, lambda: build_report(model, data, explanations, pins=pins, signoff=signoff))
    return html, len(pins) + len(explanations)
