"""Data: a Facets-style overview of the loaded dataset."""

import streamlit as st

from studio import charts
from studio.ui import large_views, state, views

state.through_router(__file__)

st.title("Data")
data = state.current_data()
prof = state.profile(data)
model = st.session_state.get("model")  # class names when a model is loaded; the data page never waits for one
regression = views.is_regression_target(data, model)
flags = [f for f in prof.flags if not (regression and f.kind == "imbalance")]  # a quantity has no classes

large = getattr(data, "large", None)  # millions of rows: DuckDB over the file, charts from a stated sample
st.caption(views.md_escape(large_views.rows_caption(data) if large is not None else
                           f"{data.name}: {len(data):,} rows, {data.kind}" + (f", label {data.label}" if data.label else "")))
for note in getattr(data, "notes", None) or []:  # what loading changed (e.g. grey images read as RGB)
    st.info(views.md_escape(note), icon="ℹ️")
if flags:
    shown = "\n".join(f"- {views.md_escape(flag.message)}" for flag in flags[:30])
    more = f"\n\n... and {len(flags) - 30} more" if len(flags) > 30 else ""
    st.warning(f"**{len(flags)} flag(s)**\n\n{shown}{more}", icon="⚠️")
else:
    st.success("No flags: no missing values, constant columns, heavy skew or class imbalance.")

# a table gets the page's whole width (its columns were cut beside the label chart at 1280 px, issue 14);
# the label chart then sits under it
left, right = (st.container(), st.container()) if data.kind == "tabular" else st.columns([3, 1])
with right:
    if regression and data.y is not None:  # a quantity: its distribution, not one bar per value
        st.altair_chart(charts.distribution_chart(data.y, name=f"Target: {data.label or 'label'}"
                                                  + large_views.sample_title(data), width=220, height=160, small=False))
        st.caption("The label is a quantity (regression): counts per range of values.")
    elif len(prof.classes):
        names = model.class_names if model is not None and model.is_classifier else None
        st.altair_chart(charts.class_balance_chart(views.class_labels(prof.classes, names), width=220))
        if large is not None:
            st.caption(f"Labels counted over every one of the {large.n_rows:,} rows.")
with left:
    if data.kind == "tabular":
        views.feature_table(prof, data)
        views.csv_download(prof.features, "Download the profile as CSV", "studio-profile.csv", key="profile-csv")
        if large is not None:
            large_views.column_view(data)
            large_views.filter_view(data)
    else:
        st.dataframe(prof.features, hide_index=True)
        views.image_grid(data)
