"""Model: metrics, confusion matrix, the instance table and subsets (after ActiVis)."""

import pandas as pd
import streamlit as st

from studio import charts
from studio.errors import StudioError
from studio.evaluation import OPS, Condition, apply_conditions, confusion, metrics
from studio.ui import large_views, state, views

state.through_router(__file__)

TABLE_ROWS = 2000

st.title("Model")
model, data = state.current()
frame, output = state.predictions(model, data)
st.caption(views.md_escape(f"{model.name}: {model.format}, {model.task}" + (
    f", classes {', '.join(map(str, model.class_names[:12]))}" if model.class_names else "")))
if data.y is None:
    st.info("The dataset has no labels, so only predictions are shown (no metrics).")

large = getattr(data, "large", None)  # millions of rows: the model runs on the stated sample, subsets in DuckDB
subsets = st.session_state.setdefault("subsets", {})
base_key = model.cache_id + data.fingerprint
overall = state._memo("metrics:All rows", base_key, lambda: metrics(frame, output, model))
# say which data each figure was computed on: the card's held-out figure is not the loaded data's
description = getattr(model.card, "description", "") if getattr(model, "card", None) is not None else ""
if description:
    st.caption(views.md_escape(f"From the model card (figures there are on the trainer's own held-out data): "
                               f"{description}"))
if large is not None:
    st.markdown("**Metrics on a sample of the loaded data**: " + views.md_escape(
        f"{data.name}, a uniform sample of {len(data):,} of {large.n_rows:,} rows (seed {large.seed}); predictions "
        "are not computed for every row. Charts below use the same sample."))
else:
    st.markdown("**Metrics on the loaded data**: " + views.md_escape(
        f"{data.name}, {len(data):,} rows (which may include rows the model was trained on)"))
views.metric_row(overall)

if model.is_classifier and "label" in frame:
    left, right = st.columns([1, 1])
    with left:
        st.altair_chart(state._memo("confusion", base_key, lambda: charts.confusion_chart(
            confusion(frame, model.class_names), model.class_names)))
    with right:
        st.altair_chart(state._memo("confidence", base_key, lambda: charts.distribution_chart(
            frame["confidence"], ("Confidence" + large_views.sample_title(data)) if large is not None
            else "Confidence of each prediction", width=320,
            height=200, small=False)))
elif "label" in frame:
    st.altair_chart(views.residual_chart(frame))
if large is not None:
    st.caption(views.md_escape(f"Charts above: sample of {len(data):,} of {large.n_rows:,} rows."))


def select_rows(frame, conds):
    """The subset's mask: pandas on a table in memory, DuckDB on the sample of a large table."""
    if large is None:
        return apply_conditions(frame, conds)
    from studio.data.large import condition_mask

    return condition_mask(frame, conds)


def file_rows(name) -> dict:
    """Large tables: how many rows of the whole file meet the subset (DuckDB), when no condition needs the model."""
    if large is None:
        return {}
    from studio.data.large import file_conditions

    conds = file_conditions(subsets.get(name, []), data, frame)
    if conds is None:
        return {"rows in file": None}
    return {"rows in file": state._memo(f"file-rows:{name}", base_key + repr(conds), lambda: large.count(conds))}


st.subheader("Subsets")
with st.expander("Define a subset by conditions", expanded=not subsets):
    columns = [c for c in frame.columns if c != "row"]
    draft = st.session_state.setdefault("subset_draft", [])
    c1, c2, c3, c4 = st.columns([3, 1, 2, 1.4], vertical_alignment="bottom")
    column = c1.selectbox("Column", columns, key="cond-col")
    op = c2.selectbox("Op", OPS, key="cond-op")
    value = c3.text_input("Value", key="cond-value", placeholder="e.g. False, 0.8, malignant")
    if c4.button("Add condition"):
        cond = Condition(column, op, value)
        try:
            select_rows(frame, [cond])
            draft.append(cond)
        except StudioError as exc:
            st.error(str(exc))
    if draft:
        st.code(" AND ".join(c.text() for c in draft), language=None)
    n1, n2, n3 = st.columns([3, 1, 1], vertical_alignment="bottom")
    name = n1.text_input("Subset name", key="subset-name", placeholder="e.g. wrong and confident")
    if n2.button("Save subset", disabled=not draft):
        if not name.strip():
            st.error("Give the subset a name, then press Save subset.")
        else:
            subsets[name.strip()] = list(draft)
            draft.clear()
            st.rerun()
    if n3.button("Clear", disabled=not draft):
        draft.clear()
        st.rerun()



masks = {"All rows": None}
for name, conds in subsets.items():
    try:
        masks[name] = state._memo(f"mask:{name}", base_key + repr(conds), lambda conds=conds: select_rows(frame, conds))
    except StudioError as exc:
        st.error(f"subset {name}: {exc}")


def subset_metrics(name, mask):
    key = base_key + repr(subsets.get(name))
    return state._memo(f"metrics:{name}", key, lambda: metrics(frame if mask is None else frame[mask], output, model))


if len(masks) > 1:
    table = pd.DataFrame([{"subset": n, "conditions": " AND ".join(c.text() for c in subsets.get(n, [])) or "-",
                           **subset_metrics(n, m), **file_rows(n)} for n, m in masks.items()])
    st.dataframe(table, hide_index=True, width="stretch", column_config=views.number_formats(table))
    remove = st.selectbox("Delete a subset", [None] + list(subsets), format_func=lambda s: s or "(none)")
    if remove:
        subsets.pop(remove)
        st.rerun()

st.subheader("Instances")
which = st.selectbox("Show", list(masks), key="table-subset")
shown = frame if masks[which] is None else frame[masks[which]]
note = f"first {TABLE_ROWS:,} of {len(shown):,} rows; pick any row by number below" if len(shown) > TABLE_ROWS else f"{len(shown):,} rows"
if large is not None:
    note += f"; row numbers are positions in the sample of {len(data):,} of {large.n_rows:,} rows"
st.caption(f"Select a row to explain it on the Local explanations page ({note}).")
view = shown.head(TABLE_ROWS)
event = st.dataframe(view, hide_index=True, on_select="rerun", selection_mode="single-row", key="instances",
                     width="stretch", height=320, column_config=views.number_formats(view))
if event.selection.rows:
    st.session_state["row"] = int(view.iloc[event.selection.rows[0]]["row"])
views.csv_download(shown, f"Download these {len(shown):,} rows as CSV", "studio-rows.csv", key="rows-csv")
views.row_picker(data)
