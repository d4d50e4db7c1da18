"""Model Inspection Studio: the router (pages live in pages/)."""

import streamlit as st

from studio.ui.state import open_requested_page, sidebar

st.set_page_config(page_title="Model Inspection Studio", layout="wide")

pages = [
    st.Page("pages/load.py", title="Load", default=True),
    st.Page("pages/data.py", title="Data"),
    st.Page("pages/model.py", title="Model"),
    st.Page("pages/local.py", title="Local explanations"),
    st.Page("pages/global.py", title="Global explanations"),
    st.Page("pages/activations.py", title="Activations"),
    st.Page("pages/report.py", title="Report"),
    st.Page("pages/live.py", title="Live"),
    st.Page("pages/quality.py", title="Quality"),
]
navigation = st.navigation(pages)
open_requested_page(pages)
navigation.run()
sidebar()
