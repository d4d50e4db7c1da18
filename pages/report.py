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
# no form: what is typed is held in the browser (on_change="ignore", no rerun per keystroke) and committed by the
# next click, Save or Download; each Download builds its file in its own click's callback from those values, so
# the first press carries what was typed (report_views.Delivery)
with st.container(border=True):
    report_views.comment_inputs(pins)
    c1, c2, c3 = st.columns([2, 1, 2])
    c1.text_input("Reviewer name", key="signoff-name", on_change="ignore")
    c2.date_input("Date", value=datetime.date.today(), key="signoff-date")
    c3.selectbox("Verdict", ["(none)", "approved", "approved with comments", "needs work", "rejected"],
                 key="signoff-verdict")
    st.text_area("Sign-off note", key="signoff-note", height=80, on_change="ignore")
    st.button("Save comments and sign-off")
signoff = report_views.committed_signoff()

html, n_sections = report_views.report_html(model, data, pins, signoff)
if signoff:
    st.success(report_views.signoff_line(signoff))
else:
    st.caption("Not signed yet: what you type in the sign-off goes into the file when you press **Download** "
               "(or **Save comments and sign-off** to see it here first).")
report_views.download_buttons(model, data, pins)
size = f"{len(html) / 1e6:.1f} MB" if len(html) >= 1e5 else f"{len(html) / 1e3:.0f} kB"
st.caption(f"{n_sections} section(s), {size}; opens offline (charts as Vega-Lite with the Vega "
           "libraries inlined, plus a static SVG; images as PNG data URIs). The PDF is the same page printed by "
           "headless Chromium.")
