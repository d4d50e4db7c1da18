"""Data: a Facets-style overview of the loaded dataset."""

import streamlit as st

from studio import charts
from studio.ui import state, views

state.through_router(__file__)

st.title("Data")
data = state.current_data()
prof = state.profile(data)

st.caption(views.md_escape(f"{data.name}: {len(data):,} rows, {data.kind}" + (f", label {data.label}" if data.label else "")))
if prof.flags:
    shown = "\n".join(f"- {views.md_escape(flag.message)}" for flag in prof.flags[:30])
    more = f"\n\n... and {len(prof.flags) - 30} more" if len(prof.flags) > 30 else ""
    st.warning(f"**{len(prof.flags)} flag(s)**\n\n{shown}{more}", icon="⚠️")
else:
    st.success("No flags: no missing values, constant columns, heavy skew or class imbalance.")

left, right = st.columns([3, 1])
with right:
    if len(prof.classes):
        st.altair_chart(charts.class_balance_chart(prof.classes, width=220))
with left:
    if data.kind == "tabular":
        views.feature_table(prof, data)
        views.csv_download(prof.features, "Download the profile as CSV", "studio-profile.csv", key="profile-csv")
    else:
        st.dataframe(prof.features, hide_index=True)
        views.image_grid(data)
