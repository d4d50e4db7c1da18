"""Report: pinned panels, reviewer comments, a sign-off, and one self-contained HTML file."""

import datetime

import streamlit as st

from studio.ui import report_views, state

state.through_router(__file__)

st.title("Report")
model, data = state.current()
pins = st.session_state.setdefault("pins", [])

if not pins:
    st.info("Nothing pinned yet: press **Pin to report** under a panel on the Local or Global explanations page. "
            "Without pins, the report holds every result computed in this session.")
report_views.pinned_panels(pins)

st.subheader("Sign-off")
c1, c2, c3 = st.columns([2, 1, 2])
signoff = {
    "name": c1.text_input("Reviewer name", key="signoff-name"),
    "date": str(c2.date_input("Date", value=datetime.date.today(), key="signoff-date")),
    "verdict": c3.selectbox("Verdict", ["(none)", "approved", "approved with comments", "needs work", "rejected"],
                            key="signoff-verdict"),
}
signoff["note"] = st.text_area("Sign-off note", key="signoff-note", height=80)
if signoff["verdict"] == "(none)" and not signoff["name"]:
    signoff = None

html, n_sections = report_views.report_html(model, data, pins, signoff)
st.download_button("Download report", data=html.encode("utf-8"), file_name="studio-report.html", mime="text/html",
                   type="primary")
st.caption(f"{n_sections} section(s), {len(html) / 1e6:.1f} MB; opens offline (charts as Vega-Lite with the Vega "
           "libraries inlined, plus a static SVG; images as PNG data URIs).")
