"""Global result views: importances side by side, effect curves on one chart, heatmaps, fidelity."""

from __future__ import annotations

import streamlit as st

import numpy as np

from studio import charts
from studio.charts.curves import curves_for
from studio.charts import captions
from studio.ui.explain import check_banner, checks_table, panel_header, pin_button
from studio.ui.views import md_escape

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


def importance_unit(exp, label=None) -> str:
    """The importance axis of a result: ``drop in score``, ``mean |contribution to P(benign)|``,
    ``mean |term| in logit of benign``."""
    if exp.kind == "importance":
        return "drop in score"
    if exp.kind == "curve":
        return f"mean |term| in {captions.axis_unit(exp, label)}"
    return f"mean |{captions.axis_unit(exp, label)}|"


SPREAD_ROWS = 200
"""Rows (at most) of the cheap feature ranking behind the Global page's default feature."""


def permutation_spread(model, x: np.ndarray, seed: int = 0) -> np.ndarray:
    """A cheap feature ranking through the model's public surface: per feature, the mean |change| of the
    model's output (probabilities or the regression output, over rows and outputs) when that feature's column
    is shuffled among the rows (a one-repeat, label-free cousin of permutation importance: Breiman 2001;
    Fisher, Rudin & Dominici 2019, "model reliance"). One stacked ``model.output`` call (run in the sandbox's
    worker for a loaded file).

    Parameters
    ----------
    model : Model
    x : ndarray of shape (n, n_features)
        The rows, e.g. at most :data:`SPREAD_ROWS` sampled from the data.
    seed : int
        Seed of the shuffles.

    Returns
    -------
    ndarray of shape (n_features,)
        Mean |f(x with column j shuffled) - f(x)|, in the unit of the model's output.
    """
    n, p = x.shape
    rng = np.random.default_rng(seed)
    stacked = np.concatenate([x] + [x.copy() for _ in range(p)])  # (n * (p + 1), p)
    for j in range(p):
        stacked[n * (j + 1):n * (j + 2), j] = x[rng.permutation(n), j]
    out = np.asarray(model.output(stacked), dtype=float).reshape(n * (p + 1), -1)  # (n (p + 1), outputs)
    base = out[:n]
    return np.array([np.nanmean(np.abs(out[n * (j + 1):n * (j + 2)] - base)) for j in range(p)])


def default_feature(model, data, explanations=()) -> tuple:
    """The effect curves' default feature: ``(feature, how)``, the most important feature by an importance
    already computed for this model and data (permutation importance first, then mean |SHAP| over several
    rows), else by :func:`permutation_spread` on at most :data:`SPREAD_ROWS` rows (memoised per model and data);
    ``how`` says which, for the caption (None when nothing could rank: the first feature)."""
    from studio.charts.attribution import importance_frame
    from studio.ui import state

    names = list(data.feature_names)
    mine = [e for e in explanations if e.model_id == model.fingerprint and e.dataset_id == data.fingerprint]
    for e in sorted(mine, key=lambda e: e.kind != "importance"):
        usable = e.kind == "importance" or (e.kind == "attribution" and e.values is not None
                                            and np.asarray(e.values).ndim == 2 and len(e.rows or []) > 1)
        if not usable:
            continue
        frame = importance_frame(e)
        frame = frame[frame["feature"].isin(names)]
        if len(frame):
            top = frame.sort_values("mean", ascending=False, kind="stable")["feature"].iloc[0]
            how = ("permutation importance" if e.kind == "importance" else
                   f"mean |{'SHAP' if e.method == 'shap' else e.method}| over {len(e.rows)} rows")
            return top, how

    def rank():
        n = min(len(data), SPREAD_ROWS, max(10, 20_000 // max(1, len(names))))
        rows = sample_rows(len(data), n)
        try:
            spread = permutation_spread(model, data.x[rows])
        except Exception:  # noqa: BLE001 -- a model that cannot take shuffled rows: no ranking, the first feature
            return None
        if not np.isfinite(spread).any():
            return None
        return names[int(np.nanargmax(spread))], len(rows)

    got = state._memo("feature-spread", model.cache_id + data.fingerprint, rank)
    if got is None:
        return names[0], None
    return got[0], f"the spread of predictions when each feature is shuffled ({got[1]} rows)"


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
    label = getattr(data, "label", None)
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
        exps = [imp for _, imp in importance]
        order = charts.shared_importance_order(exps, top_k=15)
        for start in range(0, len(importance), 3):  # at most three side by side: labels and titles stay whole
            for col, (r, imp) in zip(st.columns(min(len(importance), 3)), importance[start : start + 3]):
                with col:
                    panel_header(r)
                    check_banner(r.explanation)
                    note = IMPORTANCE_NOTE[r.explanation.kind].format(rows=int(imp.checks.get("rows", 0)))
                    unit = "" if r.explanation.kind == "importance" else f"; unit: {captions.unit_text(r.explanation, label)}"
                    st.caption(md_escape(f"{imp.method}: {note}{unit}"))
                    st.altair_chart(charts.importance_bars([imp], order=order, width=None, title=False,
                                                           unit=importance_unit(r.explanation, label)),
                                    width="stretch")
                    checks_table(r.explanation)
        chart = charts.importance_bars(exps, top_k=15)
        pin_button("Importance: " + ", ".join(imp.method for _, imp in importance), PAGE,
                   "imp-" + "-".join(r.explanation.provenance.get("cache_key", r.method) for r, _ in importance),
                   explanation=importance[0][0].explanation, chart=chart)
    if curves and feature is not None:
        groups: dict = {}
        for r in curves:  # one chart per output scale: an EBM's logit never shares an axis with a probability
            groups.setdefault(captions.scale_key(r.explanation), []).append(r)
        drawn = False
        for scale, group in groups.items():
            exps = [r.explanation for r in group]
            if not curves_for(exps, feature):
                continue
            if not drawn:
                st.subheader(f"Effect of {feature}")
                drawn = True
            for r in group:
                check_banner(r.explanation)
            st.caption(md_escape(captions.explained_caption(exps[0], None, label)
                                 if len(exps) == 1 else
                                 f"Explains the {'EBM score' if scale == 'logit' else captions.output_text(exps[0], label)}"
                                 f" · y: {captions.axis_unit(exps[0], label)}, each curve centred to mean 0"))
            chart = charts.curve_chart(exps, feature, width=None, unit=captions.axis_unit(exps[0], label))
            st.altair_chart(chart, width="stretch")
            cols = st.columns(min(len(group), 3))
            for k, r in enumerate(group):
                with cols[k % len(cols)]:
                    panel_header(r)
                    checks_table(r.explanation)
            pin_button(f"Effect of {feature} ({scale})", PAGE, "curve-" + feature + "-" + "-".join(
                r.explanation.provenance.get("cache_key", r.method) for r in group), explanation=exps[0], chart=chart)
        if not drawn:
            st.caption(f"No curve for {feature} yet: press Run explainers.")
        if pair:
            two = [(r, curves_for([r.explanation], (feature, pair), two_way=True)) for r in curves]
            two = [(r, found) for r, found in two if found]
            if two:
                st.subheader(f"Interaction: {feature} x {pair}")
                st.caption(md_escape("Colour: " + ", ".join(f"{r.method} in {captions.axis_unit(r.explanation, label)}"
                                                            for r, _ in two)))
                for col, (r, found) in zip(st.columns(min(len(two), 3)), two):
                    with col:
                        chart = charts.heatmap_chart(r.explanation, (feature, pair))
                        st.altair_chart(chart)
                        pin_button(f"{r.method}: {feature} x {pair}", PAGE,
                                   f"heat-{r.explanation.provenance.get('cache_key', r.method)}-{feature}-{pair}",
                                   explanation=r.explanation, chart=chart)
