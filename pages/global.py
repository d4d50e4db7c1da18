"""Global explanations: importances side by side, feature effects on one chart, interactions."""

import streamlit as st

from studio.ui import explain as ui
from studio.ui import global_views, state

st.title("Global explanations")
model, data = state.current()
if data.kind != "tabular":
    st.info("Global methods here are for tables. For images, use Local explanations on several instances.")

chosen = ui.method_picker(model, data, "global", key="global-methods",
                          default=["permutation_importance", "pdp", "ale", "ice", "ebm", "ebm_surrogate"])
feature, pair = None, None
if data.kind == "tabular" and data.feature_names:
    c1, c2 = st.columns(2)
    with c1:
        feature = state.kept(st.selectbox, "Feature for effect curves", "global-feature", options=list(data.feature_names))
    with c2:
        partner = state.kept(st.selectbox, "Interaction with (heatmap)", "global-pair",
                             options=["(none)"] + [f for f in data.feature_names if f != feature])
    pair = None if partner == "(none)" else partner

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
plans = ui.plan_runs(model, data, chosen, params, n_rows=0, budget=budget)
ui.show_plans(plans)

if st.button("Run explainers", type="primary", disabled=not chosen):
    ui.run_plans(model, data, plans, [])

results = ui.stored(model, data, plans, [])
if not results:
    st.caption("Choose methods and press Run explainers. Results are cached: running again is instant.")
else:
    global_views.render_global(results, feature, pair)
