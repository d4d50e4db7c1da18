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

st.subheader("Comments and sign-off")
# a form: the fields are committed together by "Sign the report", and the download below is built from what was
# committed, so the first press of Download report carries the sign-off (a plain text input commits on blur, in
# the same click that downloads the file built before it)
with st.form("signoff-form", border=True):
    report_views.comment_inputs(pins)
    c1, c2, c3 = st.columns([2, 1, 2])
    c1.text_input("Reviewer name", key="signoff-name")
    c2.date_input("Date", value=datetime.date.today(), key="signoff-date")
    c3.selectbox("Verdict", ["(none)", "approved", "approved with comments", "needs work", "rejected"],
                 key="signoff-verdict")
    st.text_area("Sign-off note", key="signoff-note", height=80)
    st.form_submit_button("Save comments and sign-off", type="primary")
signoff = report_views.committed_signoff()

html, n_sections = report_views.report_html(model, data, pins, signoff)
if signoff:
    st.success(report_views.signoff_line(signoff))
else:
    st.caption("Not signed: fill in the sign-off and press **Save comments and sign-off** to put it in the file.")
c1, c2 = st.columns(2)
c1.download_button("Download report", data=html.encode("utf-8"), file_name="studio-report.html", mime="text/html",
                   type="primary", width="stretch")
report_views.pdf_button(c2, html)
st.caption(f"{n_sections} section(s), {len(html) / 1e6:.1f} MB; opens offline (charts as Vega-Lite with the Vega "
           "libraries inlined, plus a static SVG; images as PNG data URIs). The PDF is the same page printed by "
           "headless Chromium.")
