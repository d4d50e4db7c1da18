"""The Quality page's views: choose methods, attacks and rows; run :func:`studio.assess`; show and export it.

Uses only the Model's public surface and :func:`studio.assess` (which a sandboxed model answers in its worker).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import streamlit as st

from studio.charts import quality as charts
from studio.errors import StudioError
from studio.ui import explain as explain_ui
from studio.ui import state, views

SLOT = "assessment"
DEFINITIONS = {
    "cost": "Seconds per explained row and peak memory of the clean explanation, measured where it ran "
            "(Python allocations by tracemalloc, the rise of the process's peak resident memory).",
    "performance": "The model's accuracy (or r2) on the chosen rows, clean and under each perturbation; "
                   "'prediction kept' is the share of rows whose predicted class did not change. Severity 0 is the "
                   "clean input; for fgsm and pgd on images, epsilon is 0.05 x severity (pixels in [0, 1]).",
    "deviation": "How far methods agree on the same inputs: Spearman rank correlation and top-k overlap of "
                 "|attribution|, averaged over rows (a method against itself is 1).",
    "resilience": "How far a method's attribution moves under a perturbation, only over rows whose prediction "
                  "the perturbation did not change (blank cells: no row kept its prediction).",
    "faithfulness": "Deletion (lower is better) and insertion (higher is better) areas as units are removed or "
                    "inserted in the attribution's order, beside a random order; Captum's infidelity (lower is "
                    "better) and max-sensitivity (lower is better).",
}


def attack_picker(data) -> list:
    """A multiselect of the attacks that apply to ``data`` (images: all five; tables: noise, fgsm, pgd)."""
    from studio.quality import ATTACKS

    names = [a for a in ATTACKS if data.kind == "image" or a not in ("blur", "brightness")]
    chosen = state.kept(st.multiselect, "Perturbations", "quality-attacks", options=names,
                        default=[a for a in ("noise", "blur", "fgsm") if a in names],
                        help="Each runs at every severity below; fgsm and pgd need a differentiable classifier.")
    with st.expander("What each perturbation does"):
        for a in names:
            st.markdown(f"**{a}**: {views.md_escape(ATTACKS[a])}")
    return chosen


def run(model, data, methods, attacks, rows, severities, faithfulness, seed) -> object | None:
    """Run the assessment with a progress bar; keep it in the session; None (after showing why) on an error."""
    import studio

    bar = st.progress(0.0, text="starting")

    def progress(fraction, message):
        bar.progress(min(max(float(fraction), 0.0), 1.0), text=message)

    try:
        result = studio.assess(model, data, methods, attacks, rows=rows, severities=severities, seed=seed,
                               faithfulness=faithfulness, progress=progress)
    except StudioError as exc:
        bar.empty()
        st.error(str(exc))
        return None
    bar.empty()
    st.session_state[SLOT] = {"key": model.cache_id + data.fingerprint, "result": result}
    return result


def current(model, data):
    """The session's assessment of this model and data, or None."""
    kept = st.session_state.get(SLOT)
    if kept and kept["key"] == model.cache_id + data.fingerprint:
        return kept["result"]
    return None


def _class_text(model) -> str:
    if model.is_classifier:
        return "each row's predicted class (clean input), as a probability"
    return "the model's output, in its own units"


def _prediction(model, out_row) -> str:
    """One row's prediction as text: the class and its probability, or the output."""
    if model.is_classifier:
        names = model.class_names or [str(i) for i in range(len(out_row))]
        c = int(np.argmax(out_row))
        return f"{names[c]} (probability {float(out_row[c]):.2f})"  # '0 (1.00)' read badly for digit classes
    return f"{float(out_row[0]):.4g}"


def scenario_rows(model, sc) -> "pd.DataFrame":
    """One row per assessed row of a scenario: predictions clean and perturbed, kept, and its agreement."""
    import pandas as pd

    rc = np.full(len(sc.rows), np.nan)
    tk = np.full(len(sc.rows), np.nan)
    rc[sc.kept], tk[sc.kept] = sc.rank_correlation_rows, sc.top_k_overlap_rows
    return pd.DataFrame({
        "row": sc.rows,
        "prediction (clean)": [_prediction(model, o) for o in sc.output_clean],
        "prediction (perturbed)": [_prediction(model, o) for o in sc.output_perturbed],
        "prediction kept": sc.kept,
        "rank correlation": rc, "top-k overlap": tk})


def _open_clicked_cell(event) -> None:
    """A click on a heatmap cell sets the drill-down's method and perturbation (once per click: choosing in the
    select boxes afterwards is not undone by the chart's standing selection)."""
    picked = ((getattr(event, "selection", None) or {}).get(charts.CELL) or [None])[0]
    if picked and picked != st.session_state.get("_quality-clicked"):
        st.session_state["quality-drill-method"] = picked.get("method")
        st.session_state["quality-drill-scenario"] = picked.get("scenario")
    st.session_state["_quality-clicked"] = picked


def drill_down(model, data, result, metric: str) -> None:
    """One heatmap cell (method x perturbation): its number, its rows clean and perturbed, and their attributions.

    Images: the clean and the perturbed input, each with the method's attribution overlaid on one shared scale;
    tables: each feature's value and attribution, clean and perturbed. Rows whose prediction changed were not
    re-explained and do not enter the cell's number (resilience counts only prediction-preserving perturbations).
    """
    prov = result.provenance
    cells = [(a, int(s)) for a, info in prov["attacks"].items() for s in info["severities"]]
    if not cells:
        return
    st.markdown("**Drill down into a cell** (the inputs and explanations behind one number): click a cell of the "
                "heatmap, or choose it here")
    c1, c2, c3 = st.columns(3)
    with c1:
        method = state.kept(st.selectbox, "Method", "quality-drill-method", options=list(prov["methods"]))
    with c2:
        label = state.kept(st.selectbox, "Perturbation", "quality-drill-scenario",
                           options=[f"{a} s{s}" for a, s in cells])
    attack, sev = cells[[f"{a} s{s}" for a, s in cells].index(label)]
    try:
        sc = result.scenario(method, attack, sev)
    except StudioError as exc:
        st.info(str(exc))
        return
    with c3:
        row = state.kept(st.selectbox, "Row", "quality-drill-row", options=sc.rows)
    value = sc.numbers.get(metric, float("nan"))
    n_kept = int(sc.kept.sum())
    params = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in sc.params.items()) \
        or "no change"
    perf = "accuracy" if "accuracy" in sc.numbers else "r2"
    m1, m2, m3 = st.columns(3)
    m1.metric(f"Cell: {metric.replace('_', ' ')}", "-" if not np.isfinite(value) else f"{value:.3f}",
              help="The mean over the rows whose prediction held of the per-row values in the table below.")
    m2.metric("Rows whose prediction held", f"{n_kept} of {len(sc.rows)}")
    if perf in sc.numbers:
        m3.metric(f"Model {perf} under {attack} s{sev}", f"{sc.numbers[perf]:.3f}")
    st.caption(f"{views.md_escape(method)} under {attack} at severity {sev} ({params}). Only rows whose prediction "
               "held were explained again; their mean is the cell's number.")
    table = scenario_rows(model, sc)
    st.dataframe(table, hide_index=True, width="stretch", column_config=views.number_formats(table))
    i = sc.rows.index(row)
    kept_i = int(np.cumsum(sc.kept)[i] - 1) if sc.kept[i] else None
    clean_pred, pert_pred = _prediction(model, sc.output_clean[i]), _prediction(model, sc.output_perturbed[i])
    if data.kind == "image":
        _image_pair(sc, i, kept_i, clean_pred, pert_pred)
    else:
        _table_pair(data, sc, i, kept_i)
        st.caption(f"Row {row}: prediction {clean_pred} clean, {pert_pred} perturbed"
                   + ("" if kept_i is not None else " (changed: not explained again, not in the number)"))


def _image_pair(sc, i, kept_i, clean_pred, pert_pred) -> None:
    """Clean and perturbed image side by side, each beside its attribution overlay (one shared scale)."""
    from studio.overlays import diverging, normalisation

    maps = [sc.attribution_clean[i]] + ([sc.attribution_perturbed[kept_i]] if kept_i is not None else [])
    shared = state.kept(st.radio, "Colour scale", "quality-drill-scale", horizontal=True,
                        options=["each map its own", "one scale for both"],
                        help="The cell's number compares the maps' rankings, which ignore scale: with each map on "
                             "its own scale the pictures show what the number compares. One scale shows how the "
                             "attribution's size changed too.") == "one scale for both"
    norms = ([normalisation(maps, mode="percentile")] * len(maps) if shared
             else [normalisation(m, mode="percentile") for m in maps])
    cols = st.columns(4)
    cols[0].image(views.png_bytes(views.to_display(sc.x_clean[i]), scale=4), width="stretch",
                  caption=f"clean: {clean_pred}")
    cols[1].image(views.png_bytes(diverging(sc.x_clean[i], maps[0], norms[0], scale=4).image), width="stretch",
                  caption="attribution, clean")
    cols[2].image(views.png_bytes(views.to_display(sc.x_perturbed[i]), scale=4), width="stretch",
                  caption=f"perturbed: {pert_pred}")
    if kept_i is not None:
        cols[3].image(views.png_bytes(diverging(sc.x_perturbed[i], maps[1], norms[1], scale=4).image),
                      width="stretch", caption="attribution, perturbed")
    else:
        cols[3].info("The prediction changed: not explained again, not in the number.")
    meaning = ("red pushes the explained output up, blue down" if any((np.asarray(m) < 0).any() for m in maps)
               else "red: where the map is high (it has no negative values, so no blue)")
    scale = norms[0].caption if shared else "; ".join(f"{w}: {n.caption}" for w, n in zip(("clean", "perturbed"), norms))
    st.caption(f"Overlays: {meaning}; {scale}.")


def _table_pair(data, sc, i, kept_i) -> None:
    """Each feature's value and attribution, clean and perturbed."""
    import pandas as pd

    frame = pd.DataFrame({
        "feature": list(data.feature_names),
        "value (clean)": np.asarray(sc.x_clean[i], dtype=float),
        "value (perturbed)": np.asarray(sc.x_perturbed[i], dtype=float),
        "attribution (clean)": np.asarray(sc.attribution_clean[i], dtype=float).ravel(),
        "attribution (perturbed)": (np.asarray(sc.attribution_perturbed[kept_i], dtype=float).ravel()
                                    if kept_i is not None else np.full(len(data.feature_names), np.nan))})
    for side in ("clean", "perturbed"):  # 1 = the largest |attribution|: what rank agreement and top-k compare
        frame[f"rank (|attribution|, {side})"] = frame[f"attribution ({side})"].abs().rank(ascending=False,
                                                                                          method="min")
    st.dataframe(frame, hide_index=True, width="stretch", column_config=views.number_formats(frame))
    st.caption("Rank 1 is the largest |attribution|; the cell compares these ranks (Spearman) and the top-k "
               "features by them. Click a column's header to sort.")


def render(model, data, result) -> None:
    """The matrices, curves, checks and exports of one assessment."""
    frame = charts.records_frame(result)
    prov = result.provenance
    rows = prov["rows"]
    st.caption(f"{len(rows)} rows ({', '.join(map(str, rows[:12]))}{' ...' if len(rows) > 12 else ''}), seed "
               f"{prov['seed']}, severities {prov['severities']}; {len(result.records)} numbers in "
               f"{prov['seconds']:.1f} s on {prov['device']}. Explained output: {_class_text(model)}.")
    grid = prov.get("grid")
    if grid:
        st.caption(f"Scenario grid: {grid['scenarios']} scenarios (method x perturbation x severity), "
                   f"{grid['reused']} reused from the cache, {grid['computed']} computed now. Each scenario is "
                   "kept as it finishes, so a run stopped part way (a closed tab, a restarted app) continues from "
                   "where it stopped when run again with the same settings.")
    for s in result.skipped:
        st.info(f"Not run: {s.get('attack') or s.get('method')}{' ' + s['metric'] if s.get('metric') else ''}: "
                f"{s['reason']}")
    methods = list(prov["methods"])
    for m in methods:  # verdicts before the charts they qualify
        explain_ui.check_banner(SimpleNamespace(checks=result.checks(m)))

    st.subheader("Resilience: methods x perturbations")
    st.caption(DEFINITIONS["resilience"])
    if (frame["attribute"] == "resilience").any():
        metric = state.kept(st.radio, "Agreement measure", "quality-metric", horizontal=True,
                            options=["rank_correlation", "top_k_overlap"], format_func=lambda m: m.replace("_", " "))
        event = st.altair_chart(charts.method_scenario_heatmap(
            frame, metric, f"Resilience ({metric.replace('_', ' ')} of |attribution|, clean vs perturbed)",
            selectable=True), on_select="rerun", key="quality-heatmap")
        _open_clicked_cell(event)
        drill_down(model, data, result, metric)
    else:
        st.info("No perturbation ran; choose one above.")

    st.subheader("Robustness: the model under each perturbation")
    st.caption(DEFINITIONS["performance"])
    perf = "accuracy" if model.is_classifier else "r2"
    c1, c2 = st.columns(2)
    if ((frame["attribute"] == "performance") & (frame["metric"] == perf)).any():
        c1.altair_chart(charts.robustness_chart(frame, perf, f"Model {perf} vs severity", perf), width="content")
    c2.altair_chart(charts.robustness_chart(frame, "prediction_kept", "Predictions kept vs severity",
                                            "share of rows whose prediction held"), width="content")
    attacks = [a for a in prov["attacks"] if a not in {s.get("attack") for s in result.skipped}]
    if attacks:
        attack = state.kept(st.selectbox, "Resilience curve of", "quality-curve-attack", options=attacks)
        st.altair_chart(charts.resilience_chart(frame, attack, f"Resilience under {attack} vs severity"),
                        width="content")

    st.subheader("Deviation: do methods agree?")
    st.caption(DEFINITIONS["deviation"])
    c1, c2 = st.columns(2)
    for col, metric in zip((c1, c2), ("rank_correlation", "top_k_overlap")):
        names, m = result.matrix(metric)
        col.altair_chart(charts.deviation_heatmap(names, m, metric, f"Agreement: {metric.replace('_', ' ')} "
                                                  f"(top {prov['top_k']})" if metric == "top_k_overlap" else
                                                  "Agreement: Spearman rank correlation"))

    if result.curves:
        st.subheader("Faithfulness")
        fs = prov["faithfulness"]["settings"]
        unit = (f"{fs['patch']} x {fs['patch']} pixel squares, {fs['steps']} steps; deletion to "
                f"{fs['deletion_substrate']}, insertion from {fs['insertion_substrate']}" if data.kind == "image"
                else f"one feature per step; deleted features become the {fs['reference'] if isinstance(fs['reference'], str) else 'given reference'}")
        st.caption(DEFINITIONS["faithfulness"] + f" Units: {unit}. Random order: mean of {fs['random_orders']} "
                   "permutations per row.")
        c1, c2 = st.columns(2)
        y = "probability of the explained class" if model.is_classifier else "model output"
        for col, kind in zip((c1, c2), ("deletion", "insertion")):
            if any(kind in c for c in result.curves.values()):
                col.altair_chart(charts.faithfulness_chart(result.curves, kind, f"{kind.capitalize()} curve (mean over rows)",
                                                           y), width="content")
    table = frame[frame["attribute"].isin(["faithfulness", "cost"])][["attribute", "metric", "method", "other",
                                                                       "value", "n_rows"]]
    if not table.empty:
        table = table.copy()
        in_bytes = table["metric"].str.endswith("_bytes")
        table.loc[in_bytes, "value"] = table.loc[in_bytes, "value"] / 2**20
        table.loc[in_bytes, "metric"] = table.loc[in_bytes, "metric"].str.replace("_bytes", " (MiB)")
        st.dataframe(table.rename(columns={"other": "beside"}), hide_index=True, width="stretch",
                     column_config=views.number_formats(table))
    for m in methods:
        st.markdown(f"**{views.md_escape(m)}**")
        explain_ui.checks_table(SimpleNamespace(checks=result.checks(m)), compact=True)

    st.subheader("Export")


    c1, c2 = st.columns(2)
    with c1:
        st.download_button("Download JSON (studio.assessment/1)", data=result.to_json().encode("utf-8"),
                           file_name="assessment.json", mime="application/json", key="quality-json")
    with c2:
        views.csv_download(result.to_frame(), "Download CSV (one number per line)", "assessment.csv",
                           key="quality-csv")
