"""Global explanations: importances side by side, feature effects on one chart, interactions."""

import streamlit as st

from studio.ui import explain as ui
from studio.ui import global_views, state
from studio.ui.batch_views import render_batch_section

state.through_router(__file__)

st.title("Global explanations")
model, data = state.current()
if data.kind != "tabular":
    st.info("Global methods here are for tables. For images, use Local explanations on several instances.")

target = ui.target_picker(model, data, "global", key="global-target")
chosen = ui.method_picker(model, data, "global", key="global-methods",
                          default=["permutation_importance", "pdp", "ale", "ice", "ebm", "ebm_surrogate"],
                          extra=global_views.LOCAL_HERE if data.kind == "tabular" else ())
feature, pair = None, None
if data.kind == "tabular" and data.feature_names:
    c1, c2 = st.columns(2)
    with c1:
        top, how = global_views.default_feature(model, data, [r.explanation for r in st.session_state.get(
            "results", {}).values() if r.explanation is not None])
        feature = state.kept(st.selectbox, "Feature for effect curves", "global-feature",
                             options=list(data.feature_names), index=list(data.feature_names).index(top))
        if how:
            st.caption(global_views.md_escape(f"Default: {top}, the most important feature by {how}."))
    with c2:
        partner = state.kept(st.selectbox, "Interaction with (heatmap)", "global-pair",
                             options=["(none)"] + [f for f in data.feature_names if f != feature])
    pair = None if partner == "(none)" else partner

# shap is local: for mean |SHAP| it explains a sample of rows, for one class (as the global methods do)
over_rows = [info for info in chosen if info.scope == "local"]
chosen_global = [info for info in chosen if info.scope != "local"]
shap_rows = []
if over_rows:
    n = state.kept(st.number_input, "Rows for mean |SHAP| (sampled)", "global-shap-rows", min_value=2,
                   max_value=max(len(data), 2), value=min(100, len(data)), step=10,
                   help="shap explains this many rows, sampled from the data; the Importance chart shows "
                        "their mean |SHAP| per feature.")
    shap_rows = global_views.sample_rows(len(data), int(n))

params = {}
if chosen:
    with st.expander("Parameters"):
        for col, info in zip(st.columns(len(chosen)), chosen):
            with col:
                st.markdown(f"**{info.name}**")
                st.caption(info.summary)
                params[info.name] = ui.param_widgets(info, data, key="global",
                                                     overrides=global_views.feature_overrides(info, feature, pair))
budget = ui.budget_input("global-budget")
plans = ui.plan_runs(model, data, chosen_global, params, n_rows=0, budget=budget, target=target, measure=False)
row_plans = ui.plan_runs(model, data, over_rows, params, n_rows=len(shap_rows), budget=budget, target=target,
                         measure=False)  # first calibrations wait until the page is drawn (measure_pending, last)
ui.show_plans(plans + row_plans, key="global")

if st.button("Run explainers", type="primary", disabled=not chosen):
    ui.run_batches(model, data, [(plans, [], target), (row_plans, shap_rows, target)])  # one status box

results = ui.stored(model, data, plans, [], target) + ui.stored(model, data, row_plans, shap_rows, target)
if not results:
    st.caption("Choose methods and press Run explainers. Results are cached: running again is instant.")
else:
    global_views.render_global(results, feature, pair, data)

render_batch_section()  # summaries of a whole-dataset batch run (issue 18)
ui.measure_pending(model, data, plans + row_plans)  # last: a first estimate's timing never holds up the page
