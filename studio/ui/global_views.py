"""Global result views: importances side by side, effect curves on one chart, heatmaps, fidelity."""

from __future__ import annotations

import streamlit as st

import numpy as np

from studio import charts
from studio.charts.curves import curves_for
from studio.ui.explain import checks_table, panel_header, pin_button

PAGE = "Global explanations"
LOCAL_HERE = ("shap",)
"""Local methods the Global page offers too: run on a sample of rows, shown as mean |value| per feature."""
EBM_METHODS = ("ebm", "ebm_surrogate")


def global_target(model, data) -> int | None:
    """The class global methods explain (``studio.explain``'s default): the positive class of a binary model,
    class 0 otherwise; None for regression."""
    from studio.api import requested_target

    return requested_target(model, data, None, "global")


def sample_rows(n_data: int, n: int, seed: int = 0) -> list:
    """``n`` distinct rows of ``n_data``, sampled with ``seed`` and sorted (every row when ``n >= n_data``)."""
    if n >= n_data:
        return list(range(n_data))
    return sorted(np.random.default_rng(seed).choice(n_data, n, replace=False).tolist())


def importance_of(res, data):
    """The importance a result gives for the side-by-side chart, or None.

    Importance results as they are; tabular attributions over several rows
    as mean |value| (mean |SHAP|); EBM shape functions as mean |term
    contribution| over the data (memoised per result).
    """
    from studio.charts.importance import ebm_term_importance, mean_abs_attribution
    from studio.ui import state

    exp = res.explanation
    if exp.kind == "importance":
        return exp
    if exp.kind == "attribution" and exp.feature_names and np.asarray(exp.values).ndim == 2:
        return mean_abs_attribution(exp, "mean |SHAP|" if exp.method == "shap" else None)
    if exp.kind == "curve" and exp.method in EBM_METHODS and data is not None:
        key = exp.provenance.get("cache_key", repr(exp.params)) + data.fingerprint
        return state._memo(f"term-importance:{exp.method}", key, lambda: ebm_term_importance(exp, data.x))
    return None


IMPORTANCE_NOTE = {
    "importance": "drop in the model's score when the feature is shuffled",
    "attribution": "mean |value| over {rows} sampled rows",
    "curve": "mean |term contribution| to the EBM's score over {rows} rows",
}


def feature_overrides(info, feature, pair) -> dict:
    """Curve methods declare a ``features`` list: fill it from the page's feature pickers."""
    names = [p.name for p in info.params]
    if "features" not in names or feature is None:
        return {}
    return {"features": [feature] + ([f"{feature}:{pair}"] if pair and info.kind == "curve" else [])}


def render_global(results, feature, pair, data=None) -> None:
    """Importance bars, one chart of every curve for ``feature``, heatmaps for ``pair``; errors in their panels.

    The Importance chart puts side by side permutation importance, mean
    |SHAP| (a shap result over sampled rows) and EBM term importance (from
    ``ebm`` / ``ebm_surrogate``, which needs ``data``).
    """
    failed = [r for r in results if r.error]
    for r in failed:
        with st.container(border=True):
            panel_header(r)
            st.error(r.error)
    ok = [r for r in results if r.explanation is not None]
    importance = [(r, imp) for r in ok if (imp := importance_of(r, data)) is not None]
    importance.sort(key=lambda pair: list(IMPORTANCE_NOTE).index(pair[0].explanation.kind))  # permutation, SHAP, EBM
    curves = [r for r in ok if r.explanation.kind == "curve"]
    if importance:
        st.subheader("Importance")
        chart = charts.importance_bars([imp for _, imp in importance], top_k=15)
        st.altair_chart(chart)
        cols = st.columns(len(importance))
        for col, (r, imp) in zip(cols, importance):
            with col:
                panel_header(r)
                note = IMPORTANCE_NOTE[r.explanation.kind].format(rows=int(imp.checks.get("rows", 0)))
                st.caption(f"{imp.method}: {note}")
                checks_table(r.explanation)
        pin_button("Importance: " + ", ".join(imp.method for _, imp in importance), PAGE,
                   "imp-" + "-".join(r.explanation.provenance.get("cache_key", r.method) for r, _ in importance),
                   explanation=importance[0][0].explanation, chart=chart)
    if curves and feature is not None:
        exps = [r.explanation for r in curves]
        if curves_for(exps, feature):
            st.subheader(f"Effect of {feature}")
            chart = charts.curve_chart(exps, feature)
            st.altair_chart(chart)
            cols = st.columns(len(curves))
            for col, r in zip(cols, curves):
                with col:
                    panel_header(r)
                    checks_table(r.explanation)
            pin_button(f"Effect of {feature}", PAGE, "curve-" + feature + "-" + "-".join(
                r.explanation.provenance.get("cache_key", r.method) for r in curves), explanation=exps[0], chart=chart)
        else:
            st.caption(f"No curve for {feature} yet: press Run explainers.")
        if pair:
            two = [(r, curves_for([r.explanation], (feature, pair), two_way=True)) for r in curves]
            two = [(r, found) for r, found in two if found]
            if two:
                st.subheader(f"Interaction: {feature} x {pair}")
                for col, (r, found) in zip(st.columns(min(len(two), 3)), two):
                    with col:
                        chart = charts.heatmap_chart(r.explanation, (feature, pair))
                        st.altair_chart(chart)
                        pin_button(f"{r.method}: {feature} x {pair}", PAGE,
                                   f"heat-{r.explanation.provenance.get('cache_key', r.method)}-{feature}-{pair}",
                                   explanation=r.explanation, chart=chart)
