"""Local explanations: one instance, several methods side by side."""

import numpy as np
import streamlit as st

from studio import charts
from studio.evaluation import apply_conditions
from studio.ui import explain as ui
from studio.ui import panels, state, views

state.through_router(__file__)

st.title("Local explanations")
model, data = state.current()
frame, output = state.predictions(model, data)

row = views.row_picker(data)
upload = None
if data.kind == "image":
    upload = panels.image_upload(model, data, row)
if upload is not None:  # the uploaded image is the instance: a one-row dataset, row 0
    data, row = upload, 0
    frame, output = state.predictions(model, data, slot="upload-predictions")
panels.instance_summary(model, data, row, frame, title=None if upload is None else f"uploaded image {upload.name}")

target = ui.target_picker(model, data, "local", key="local-target")

chosen = ui.method_picker(model, data, "local", key="local-methods")
params = {}
if chosen:
    with st.expander("Parameters"):
        for col, info in zip(st.columns(max(len(chosen), 1)), chosen):
            with col:
                st.markdown(f"**{info.name}**")
                st.caption(info.summary)
                params[info.name] = ui.param_widgets(info, data, key="local")
budget = ui.budget_input("local-budget")
shared_scale = False
if data.kind == "image":
    scale_choice = state.kept(st.radio, "Overlay colour scale", "local-scale", horizontal=True,
                              options=["each map by its 99th percentile", "one scale for all maps"],
                              help="One shared scale is fair only between methods in the same units.")
    shared_scale = scale_choice == "one scale for all maps"

compare = "nothing"
if upload is None:
    compare = state.kept(st.radio, "Compare with", "local-compare",
                         options=["nothing", "another instance", "a subset's mean"], horizontal=True)
other_rows, other_label = [], ""
if compare == "another instance":
    other = int(st.number_input("Other row", min_value=0, max_value=len(data) - 1, value=min(row + 1, len(data) - 1)))
    other_rows, other_label = [other], f"row {other}"
elif compare == "a subset's mean":
    subsets = st.session_state.get("subsets", {})
    if not subsets:
        st.info("Define a subset on the Model page first.")
    else:
        name = st.selectbox("Subset", list(subsets))
        n_max = int(st.number_input("Rows of the subset to explain (sampled)", min_value=2, max_value=200, value=10))
        members = np.nonzero(apply_conditions(frame, subsets[name]))[0]
        if len(members) == 0:
            st.warning(f"Subset {name} has no rows.")
        else:
            rng = np.random.default_rng(0)
            other_rows = sorted(rng.choice(members, min(n_max, len(members)), replace=False).tolist())
            other_label = f"mean of {name} ({len(other_rows)} rows)"

# the class explained for the comparison is the instance's, so the bars are comparable
explained_class = target if target is not None else (int(output[row].argmax()) if model.is_classifier else None)
plans = ui.plan_runs(model, data, chosen, params, n_rows=1 + len(other_rows), budget=budget, target=target,
                     measure=False)  # first calibrations wait until the page is drawn (measure_pending, last)
ui.show_plans(plans, key="local")

if st.button("Run explainers", type="primary", disabled=not chosen):
    batches = [(plans, [row], target)]
    if other_rows:
        batches.append(([p for p in plans if p.info.kind == "attribution"], other_rows, explained_class))
    ui.run_batches(model, data, batches)  # one status box for the whole press

results = ui.stored(model, data, plans, [row], target)
if not results:
    st.caption("Choose methods and press Run explainers. Results are cached: running again is instant.")
else:
    done = panels.render_local(results, model, data, row, shared_scale=shared_scale,
                               label=f"row {row}" if upload is None else upload.name)
    st.subheader("Do the methods agree?")
    # drawn only on request: a cached rerun paints the panels first (tabs and expanders would still build it)
    if state.kept(st.toggle, "Show rank agreement between methods", "local-agreement", value=False):
        panels.render_agreement(done, row)
    if other_rows and data.kind == "tabular":
        others = {r.method: r.explanation for r in ui.stored(model, data, plans, other_rows, explained_class)
                  if r.explanation is not None}
        pairs = [(e, others[e.method]) for e in done if e.kind == "attribution" and e.method in others]
        if pairs:
            st.subheader(f"Row {row} against {other_label}")
            for col, (mine, theirs) in zip(st.columns(min(len(pairs), 3)), pairs[:3]):
                with col:
                    st.altair_chart(charts.comparison_bars(mine, row, np.asarray(theirs.values).mean(axis=0), other_label))
        elif chosen:
            st.caption("Press Run explainers to compute the comparison.")
ui.measure_pending(model, data, plans)  # last: a first estimate's timing never holds up the page
