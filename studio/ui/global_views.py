"""Global result views: importances side by side, effect curves on one chart, heatmaps, fidelity."""

from __future__ import annotations

import streamlit as st

from studio import charts
from studio.charts.curves import curves_for
from studio.ui.explain import checks_table, panel_header, pin_button

PAGE = "Global explanations"


def feature_overrides(info, feature, pair) -> dict:
    """Curve methods declare a ``features`` list: fill it from the page's feature pickers."""
    names = [p.name for p in info.params]
    if "features" not in names or feature is None:
        return {}
    return {"features": [feature] + ([f"{feature}:{pair}"] if pair and info.kind == "curve" else [])}


def render_global(results, feature, pair) -> None:
    """Importance bars, one chart of every curve for ``feature``, heatmaps for ``pair``; errors in their panels."""
    failed = [r for r in results if r.error]
    for r in failed:
        with st.container(border=True):
            panel_header(r)
            st.error(r.error)
    ok = [r for r in results if r.explanation is not None]
    importance = [r for r in ok if r.explanation.kind == "importance"
                  or (r.explanation.kind == "attribution" and r.explanation.feature_names)]
    curves = [r for r in ok if r.explanation.kind == "curve"]
    if importance:
        st.subheader("Importance")
        chart = charts.importance_bars([r.explanation for r in importance], top_k=15)
        st.altair_chart(chart)
        cols = st.columns(len(importance))
        for col, r in zip(cols, importance):
            with col:
                panel_header(r)
                checks_table(r.explanation)
        pin_button("Importance: " + ", ".join(r.method for r in importance), PAGE,
                   "imp-" + "-".join(r.explanation.provenance.get("cache_key", r.method) for r in importance),
                   explanation=importance[0].explanation, chart=chart)
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
