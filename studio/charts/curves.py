"""Curves: PDP + ICE, ALE and EBM shapes of one feature on one chart; 2-feature heatmaps.

A curve whose ``extra`` holds ``"missing"`` (the effect of the feature being
missing, see :mod:`studio.explainers.curves` and :mod:`studio.explainers.ebm`)
gets a separate point labelled "missing" beside the curve's axis, on the
same (centred) y scale. A two-feature surface with ``extra["with_missing"]``
is drawn with a row / column labelled "missing" at the start of each axis
that has one (``extra["missing_axes"]``).
"""

from __future__ import annotations

import numpy as np

from studio.charts.base import compact, MAX_POINTS, METHOD_SCHEME, SUBTITLE_COLOR, explained_output, short_label
from studio.explanation import Curve, Explanation

MAX_ICE_LINES = 200


def curves_for(explanations, feature, two_way: bool = False) -> list[tuple[str, Curve]]:
    """(method, curve) pairs for ``feature`` from curve explanations.

    Parameters
    ----------
    feature : str or tuple of two str
    two_way : bool
        Look for two-feature curves (``feature`` is then a pair, order-free).
    """
    want = tuple(feature) if two_way else (feature,)
    out = []
    for exp in explanations:
        if exp.kind != "curve":
            continue
        for c in exp.curves:
            feats = c.features
            if (two_way and len(feats) == 2 and set(map(str, feats)) == set(map(str, want))) or (
                not two_way and len(feats) == 1 and str(feats[0]) == str(want[0])
            ):
                out.append((exp.method, c))
    return out


def curve_features(explanations, two_way: bool = False) -> list:
    """Every feature (or pair) that has a curve, in first-seen order."""
    seen = []
    for exp in explanations:
        if exp.kind != "curve":
            continue
        for c in exp.curves:
            feats = c.features
            if (len(feats) == 2) == two_way:
                key = tuple(map(str, feats)) if two_way else str(feats[0])
                if key not in seen:
                    seen.append(key)
    return seen


def _grid_values(grid) -> tuple[list, bool]:
    arr = np.asarray(grid)
    if arr.dtype.kind in "biuf":
        return [float(v) for v in arr], True
    return [str(v) for v in arr], False


def curve_frame(pairs, centre: bool = True, max_lines: int = MAX_ICE_LINES, seed: int = 0):
    """Long-form table of one feature's curves.

    ICE lines are sampled so the table stays under :data:`MAX_POINTS` rows.

    Returns
    -------
    frame : pandas.DataFrame
        Columns method, kind, label, line, x, y (line is -1 for averages).
        The "missing" points are not in it: see :func:`missing_frame`.
    note : str
        What was sampled, for the title (``""`` when nothing was).
    numeric : bool
        Whether the grid is numeric.
    """
    import pandas as pd

    parts, note, numeric = [], "", True
    n_avg = sum(len(np.asarray(c.grid[0])) for _, c in pairs)
    for method, c in pairs:
        xs, is_num = _grid_values(c.grid[0])
        numeric = numeric and is_num and not c.categorical
        avg = np.asarray(c.average, dtype=float).ravel()  # (n_grid,)
        shift = float(np.mean(avg)) if centre else 0.0
        label = f"{method} ({c.kind})" if c.kind not in method else method
        parts.append(pd.DataFrame({"method": method, "kind": c.kind, "label": label, "line": -1,
                                   "x": xs, "y": avg - shift}))
        if c.individual is not None and np.asarray(c.individual).size:
            ind = np.asarray(c.individual, dtype=float)  # (n_rows, n_grid)
            budget = max((MAX_POINTS - n_avg) // max(len(xs), 1), 1)
            keep = min(len(ind), max_lines, budget)
            if keep < len(ind):
                rng = np.random.default_rng(seed)
                idx = np.sort(rng.choice(len(ind), keep, replace=False))
                note = f" ({keep} of {len(ind)} ICE lines shown)"
            else:
                idx = np.arange(len(ind))
            sub = ind[idx]  # (keep, n_grid)
            if centre:
                sub = sub - shift
            lines = np.repeat(idx, len(xs))
            parts.append(pd.DataFrame({"method": method, "kind": "ice", "label": f"{method} (ICE)", "line": lines,
                                       "x": np.tile(np.asarray(xs, dtype=object), len(idx)), "y": sub.ravel()}))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["method", "kind", "label", "line", "x", "y"])
    if numeric and len(frame):
        frame["x"] = frame["x"].astype(float)
    return frame, note, numeric


def missing_frame(pairs, centre: bool = True):
    """The "missing" point of each curve that has one (``extra["missing"]``).

    Shifted like the curve in :func:`curve_frame` (centred to the mean of
    the curve's own grid), so it sits on the curve's scale.

    Returns
    -------
    pandas.DataFrame
        Columns method, kind, label, x (always ``"missing"``), y; one row
        per curve with a missing point (empty when none has).
    """
    import pandas as pd

    rows = []
    for method, c in pairs:
        value = c.extra.get("missing") if isinstance(c.extra, dict) else None
        if value is None or not np.isfinite(float(value)):
            continue
        avg = np.asarray(c.average, dtype=float).ravel()
        shift = float(np.mean(avg)) if centre else 0.0
        label = f"{method} ({c.kind})" if c.kind not in method else method
        rows.append({"method": method, "kind": c.kind, "label": label, "x": "missing", "y": float(value) - shift})
    return pd.DataFrame(rows, columns=["method", "kind", "label", "x", "y"])


@compact
def curve_chart(explanations, feature: str, centre: bool = True, width: int | None = 520, height: int = 300,
                unit: str | None = None):
    """PDP (+ ICE lines), ALE and EBM shape of ``feature`` on one chart.

    Curves from different methods live on different scales (probability,
    logit, centred effect), so by default each is shifted to mean 0 over its
    grid (``centre``) and the title says so; shapes are then comparable.

    Parameters
    ----------
    explanations : list of Explanation
        Curve explanations (pdp, ice, ale, ebm, ebm_surrogate, ...), all on
        one output scale (:func:`studio.charts.captions.scale_key`): an EBM's
        logit and a PDP's probability belong on separate charts.
    feature : str
    width : int or None
        None lets the container decide.
    unit : str, optional
        The y axis title (the explained output, e.g. ``P(benign)``).

    Returns
    -------
    altair.LayerChart or altair.HConcatChart
        A layer chart; with a narrow "missing" panel beside it (shared y
        scale and colours) when a curve has a missing-value effect.
    """
    import altair as alt

    pairs = curves_for(explanations, feature)
    if not pairs:
        raise ValueError(f"no one-feature curve for {feature!r} in these explanations")
    frame, note, numeric = curve_frame(pairs, centre=centre)
    scales = sorted({str(c.extra.get("scale", "?")) for _, c in pairs})
    shown = short_label(feature)  # a name of any length is drawn short (titles and tooltips are measured per mark)
    title = f"{shown}: " + ", ".join(dict.fromkeys(label for label in frame["label"] if "(ICE)" not in label))
    outputs = list(dict.fromkeys(short_label(o) for o in (explained_output(e) for e in explanations
                                                          if e.kind == "curve") if o))
    subtitle = (("each curve centred to mean 0; " if centre else "") + "scales: " + ", ".join(scales)
                + (f"; output: {', '.join(outputs)}" if outputs else "") + note)
    x = alt.X("x:Q" if numeric else "x:N", title=shown)
    color = alt.Color("label:N", title="curve", scale=alt.Scale(scheme=METHOD_SCHEME),
                      legend=alt.Legend(orient="bottom", labelLimit=240, symbolStrokeWidth=3, symbolOpacity=1))
    base = alt.Chart(frame, height=height, **({"width": width} if width else {}))
    ice = base.transform_filter("datum.line >= 0").mark_line(opacity=0.15, strokeWidth=1).encode(
        x=x, y=alt.Y("y:Q"), detail="line:N", color=color,
    )
    avg = base.transform_filter("datum.line < 0").encode(
        x=x, y=alt.Y("y:Q", title=(unit or "effect") + (" (centred)" if centre else "")), color=color,
        tooltip=[alt.Tooltip("label:N", title="curve"), alt.Tooltip("x", title=shown), alt.Tooltip("y:Q", format=".4g")],
    )
    avg = avg.mark_line(strokeWidth=3, point=True) if numeric else avg.mark_point(size=80, filled=True)
    title = alt.TitleParams(text=title, subtitle=subtitle, subtitleColor=SUBTITLE_COLOR)
    missing = missing_frame(pairs, centre=centre)
    if not len(missing):
        return alt.layer(ice, avg).properties(title=title)
    side = alt.Chart(missing, width=60, height=height).mark_point(size=120, filled=True, shape="diamond").encode(
        x=alt.X("x:N", title=""), y=alt.Y("y:Q", title=None), color=color,
        tooltip=[alt.Tooltip("label:N", title="curve"), alt.Tooltip("x:N", title=shown),
                 alt.Tooltip("y:Q", format=".4g")],
    )
    return alt.hconcat(alt.layer(ice, avg), side).resolve_scale(y="shared", color="shared").properties(title=title)


@compact
def heatmap_chart(exp_or_curve, features=None, size: int = 260):
    """A two-feature surface (PDP, ALE or EBM interaction) as a heatmap.

    Parameters
    ----------
    exp_or_curve : Explanation or Curve
        An explanation (its first two-feature curve, or the one for
        ``features``) or the curve itself.
    features : tuple of str, optional

    Returns
    -------
    altair.Chart
    """
    import altair as alt
    import pandas as pd

    if isinstance(exp_or_curve, Explanation):
        method = exp_or_curve.method
        pairs = curves_for([exp_or_curve], features, two_way=True) if features else [
            (method, c) for c in exp_or_curve.curves if len(c.features) == 2
        ]
        if not pairs:
            raise ValueError(f"{method} has no two-feature curve{f' for {features}' if features else ''}")
        curve = pairs[0][1]
    else:
        method, curve = exp_or_curve.kind, exp_or_curve
    f0, f1 = (short_label(f) for f in curve.features)
    g0, _ = _grid_values(curve.grid[0])
    g1, _ = _grid_values(curve.grid[1])
    labels0, labels1 = [_fmt(v) for v in g0], [_fmt(v) for v in g1]
    z = np.asarray(curve.average, dtype=float)  # (n0, n1)
    extra = curve.extra if isinstance(curve.extra, dict) else {}
    if "with_missing" in extra:  # a "missing" row / column in front on each axis that has one
        axes = list(extra.get("missing_axes", [True, True]))
        z = np.asarray(extra["with_missing"], dtype=float)  # (n0 + m0, n1 + m1)
        labels0 = ["missing"] * int(axes[0]) + labels0
        labels1 = ["missing"] * int(axes[1]) + labels1
    i0, i1 = np.arange(len(labels0)), np.arange(len(labels1))
    note = ""
    while len(i0) * len(i1) > MAX_POINTS:
        i0, i1 = i0[::2], i1[::2]
        note = " (grid thinned)"
    rows = [
        {"a": labels0[a], "b": labels1[b], "ia": int(a), "ib": int(b), "value": float(z[a, b])}
        for a in i0 for b in i1
    ]
    frame = pd.DataFrame(rows)
    lim = float(np.nanmax(np.abs(z - np.nanmean(z)))) or 1.0
    mid = float(np.nanmean(z))
    return (
        alt.Chart(frame, title=f"{method} ({curve.kind}): {f0} x {f1}{note}", width=size, height=size)
        .mark_rect()
        .encode(
            x=alt.X("a:O", title=f0, sort=alt.EncodingSortField("ia")),
            y=alt.Y("b:O", title=f1, sort=alt.EncodingSortField("ib", order="descending")),
            color=alt.Color("value:Q", scale=alt.Scale(scheme="redblue", domain=[mid + lim, mid - lim]), title="effect"),
            tooltip=[alt.Tooltip("a:O", title=f0), alt.Tooltip("b:O", title=f1), alt.Tooltip("value:Q", format=".4g")],
        )
    )


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
