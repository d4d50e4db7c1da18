"""Global explanations."""

import streamlit as st

from studio.ui import state

st.title("Global explanations")
model, data = state.current()
st.info("This page is being built; the Load page works today.")
