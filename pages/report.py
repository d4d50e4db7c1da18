"""Report."""

import streamlit as st

from studio.ui import state

st.title("Report")
model, data = state.current()
st.info("This page is being built; the Load page works today.")
