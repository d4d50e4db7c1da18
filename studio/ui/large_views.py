"""Views of tables of millions of rows (:mod:`studio.data.large`): one column over every row, and row filters.

Every count here is DuckDB's over the whole file; every chart drawn from the
sample says "sample of N of M rows".
"""

from __future__ import annotations

import streamlit as st

from studio import charts
from studio.charts.base import sample_note
from studio.errors import StudioError
from studio.evaluation import OPS, Condition
from studio.ui import state, views


def rows_caption(data) -> str:
    """``name: M rows, tabular, label L`` with M the file's rows."""
    large = data.large
    return f"{data.name}: {large.n_rows:,} rows, {data.kind}" + (f", label {data.label}" if data.label else "")


def sample_title(data) -> str:
    """`` (sample of N of M rows)`` for a chart drawn from the sample of a large table, else ``""``."""
    large = getattr(data, "large", None)
    return sample_note(len(data), large.n_rows) if large is not None else ""


def column_view(data) -> None:
    """A column picked by the user: its histogram (40 bins) and quartiles, counted by DuckDB over every row."""
    large = data.large
    columns = list(data.feature_names) + ([data.label] if data.label else [])
    st.subheader("One column over every row")
    column = state.kept(st.selectbox, "Column", "large-column", options=columns)
    hist, numeric = large.histogram(column, 40)
    title = f"{column}: every one of {large.n_rows:,} rows (DuckDB)"
    st.altair_chart(charts.histogram_chart(hist, numeric, title, width=560, height=200, small=False))
    rec = large.summary().set_index("feature").loc[str(column)]
    if numeric:
        p25, median, p75 = large.quartiles(column)
        st.caption(views.md_escape(
            f"min {rec['min']:.4g} · p25 {p25:.4g} · median {median:.4g} · p75 {p75:.4g} · "
            f"max {rec['max']:.4g} · mean {rec['mean']:.4g} · missing {int(rec['missing']):,}"))
    else:
        st.caption(views.md_escape(f"{int(rec['count']):,} values, about {int(rec['distinct']):,} distinct, "
                                   f"missing {int(rec['missing']):,}"))


def filter_view(data) -> None:
    """Conditions on the file's columns: how many of every row match, and a seeded pick of matching rows."""
    large = data.large
    st.subheader("Filter rows")
    conditions = st.session_state.setdefault("large_filter", [])
    c1, c2, c3, c4 = st.columns([3, 1, 2, 1.4], vertical_alignment="bottom")
    column = c1.selectbox("Filter by", large.columns, key="large-filter-col")
    op = c2.selectbox("Operator", OPS, key="large-filter-op")
    value = c3.text_input("Filter value", key="large-filter-value", placeholder="e.g. 0.5")
    if c4.button("Add filter"):
        cond = Condition(column, op, value)
        try:
            large.where([cond])
        except StudioError as exc:  # a value that does not suit the column
            st.error(str(exc))
        else:
            conditions.append(cond)
    if not conditions:
        st.caption("Add a condition to count the matching rows of the whole file.")
        return
    st.code(" AND ".join(c.text() for c in conditions), language=None)
    if st.button("Clear filters"):
        conditions.clear()
        st.rerun()
    count = large.count(conditions)
    st.markdown(f"**{count:,} of {large.n_rows:,} rows** match ({count / max(large.n_rows, 1):.2%}; every row, DuckDB).")
    members = large.members(conditions)
    if len(members):
        st.caption(f"A seeded pick of {len(members):,} of the {count:,} matching rows (index: row in the file).")
        st.dataframe(members, width="stretch", height=280, column_config=views.number_formats(members))
