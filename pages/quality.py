"""Quality (after XAIport): cost, performance, robustness, deviation, resilience and faithfulness of explanations."""

import streamlit as st

from studio.ui import explain as explain_ui
from studio.ui import quality as ui
from studio.ui import state

state.through_router(__file__)

st.title("Quality of explanations")
model, data = state.current()
st.caption("Explanations are assessed, not only produced: on the same rows, each method's cost, agreement with the "
           "others, resilience under perturbations that keep the prediction, and faithfulness to the model "
           "(studio.assess, schema studio.assessment/1).")

chosen = explain_ui.method_picker(model, data, "local", key="quality-methods",
                                  default=["saliency", "grad_cam"] if data.kind == "image" else ["shap", "lime"])
attacks = ui.attack_picker(data)
c1, c2, c3, c4 = st.columns(4)
with c1:
    n_rows = state.kept(st.number_input, "Rows (the first n)", "quality-rows", min_value=1,
                        max_value=min(len(data), 200), value=min(5, len(data)),
                        help="The rows every method explains clean and under every perturbation.")
with c2:
    top = state.kept(st.slider, "Highest severity", "quality-severity", min_value=1, max_value=5, value=3)
with c3:
    seed = state.kept(st.number_input, "Seed", "quality-seed", min_value=0, value=0)
with c4:
    faith = state.kept(st.multiselect, "Faithfulness", "quality-faith",
                       options=["deletion", "insertion", "infidelity", "sensitivity"],
                       default=["deletion", "insertion", "infidelity"],
                       help="Sensitivity re-explains perturbed copies of each row (differentiable models only).")
n_scenarios = len(attacks) * int(top)
st.caption(f"{len(chosen)} method(s) x {n_scenarios} perturbation(s) = {len(chosen) * n_scenarios} scenarios "
           f"on {int(n_rows)} row(s).")
if st.button("Run assessment", type="primary", disabled=not chosen, key="quality-run"):
    ui.run(model, data, [m.name for m in chosen], attacks, list(range(int(n_rows))),
           list(range(1, int(top) + 1)), faith, int(seed))
result = ui.current(model, data)
if result is None:
    st.info("Choose methods and perturbations, then press **Run assessment**.")
else:
    ui.render(model, data, result)
