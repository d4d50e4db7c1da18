"""Data: a Facets-style overview of the loaded dataset."""

import streamlit as st

from studio import charts
from studio.ui import state, views

st.title("Data")
model, data = state.current()
prof = state.profile(data)

st.caption(f"{data.name}: {len(data):,} rows, {data.kind}" + (f", label `{data.label}`" if data.label else ""))
if prof.flags:
    with st.container(border=True):
        st.markdown("**Flags**")
        for flag in prof.flags[:30]:
            st.warning(flag.message, icon="⚠️")
        if len(prof.flags) > 30:
            st.caption(f"... and {len(prof.flags) - 30} more")
else:
    st.success("No flags: no missing values, constant columns, heavy skew or class imbalance.")

left, right = st.columns([3, 1])
with right:
    if len(prof.classes):
        st.altair_chart(charts.class_balance_chart(prof.classes, width=220))
with left:
    if data.kind == "tabular":
        views.feature_table(prof, data)
    else:
        st.dataframe(prof.features, hide_index=True)
        views.image_grid(data)
