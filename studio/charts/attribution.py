"""Attribution and importance bars."""

from __future__ import annotations

import numpy as np

from studio.charts.base import (
    compact,
    MAX_POINTS,
    METHOD_SCHEME,
    SIGN_DOMAIN,
    SIGN_RANGE,
    explained_output,
    label_axis,
    short_label,
)
from studio.explanation import Explanation


NARROW_LABEL_PX = 110
"""Most pixels a feature label takes in an attribution chart sized by its (possibly narrow) container."""


def wrap_title(text: str, width: int = 24):
    """An axis title on as many lines as it needs at ``width`` characters (a list: Vega-Lite draws one line
    each), so a narrow panel never cuts it; a short title stays a string."""
    import textwrap

    lines = textwrap.wrap(str(text), width) or [""]
    return lines[0] if len(lines) == 1 else lines


def _row_position(exp: Explanation, row: int | None) -> int:
    """Index into ``exp.values`` of dataset row ``row`` (None: the first)."""
    if row is None or not exp.rows:
        return 0
    if row not in exp.rows:
        raise ValueError(f"row {row} was not explained by {exp.method} (rows {exp.rows})")
    return exp.rows.index(row)


def _tabular(exp: Explanation) -> bool:
    return exp.kind == "attribution" and exp.values is not None and np.asarray(exp.values).ndim == 2


def shared_feature_order(explanations, row: int | None = None, top_k: int | None = 15) -> list[str]:
    """One feature order for several tabular attribution explanations.

    Each method's |attribution| on the row is scaled to sum to 1 (so methods
    on different scales weigh the same), averaged over methods, and sorted
    from largest to smallest.

    Parameters
    ----------
    explanations : list of Explanation
        Tabular attributions; other kinds are skipped.
    row : int, optional
        Dataset row; default each explanation's first row.
    top_k : int or None
        Keep this many features (None: all).

    Returns
    -------
    list of str
    """
    weights: dict[str, float] = {}
    names_seen: list[str] = []
    for exp in explanations:
        if not _tabular(exp):
            continue
        values = np.abs(np.asarray(exp.values, dtype=float)[_row_position(exp, row)])  # (n_features,)
        total = values.sum()
        share = values / total if total > 0 else values
        for name, w in zip(exp.feature_names, share):
            if name not in weights:
                names_seen.append(name)
                weights[name] = 0.0
            weights[name] += float(w)
    order = sorted(names_seen, key=lambda n: (-weights[n], names_seen.index(n)))
    return order if top_k is None else order[:top_k]


def attribution_frame(exp: Explanation, row: int | None = None, features=None):
    """Long-form table of one row's tabular attributions.

    Returns
    -------
    pandas.DataFrame
        Columns method, feature, value, sign, input (the feature's value or NaN).
    """
    import pandas as pd

    pos = _row_position(exp, row)
    values = np.asarray(exp.values, dtype=float)[pos]  # (n_features,)
    inputs = None
    if exp.data is not None and np.asarray(exp.data).ndim == 2:
        inputs = np.asarray(exp.data)[pos]
    index = {n: i for i, n in enumerate(exp.feature_names)}
    names = list(features) if features is not None else list(exp.feature_names)
    records = []
    for name in names:
        i = index.get(name)
        if i is None:
            continue
        v = float(values[i])
        records.append(
            {
                "method": exp.method,
                "feature": str(name),
                "value": v,
                "sign": SIGN_DOMAIN[0] if v >= 0 else SIGN_DOMAIN[1],
                "input": None if inputs is None else _scalar(inputs[i]),
            }
        )
    return pd.DataFrame.from_records(records, columns=["method", "feature", "value", "sign", "input"])


def _scalar(v):
    try:
        f = float(v)
        return f if np.isfinite(f) else None
    except (TypeError, ValueError):
        return str(v)


@compact
def attribution_bars(explanations, row: int | None = None, order=None, top_k: int = 15, width: int | None = 220,
                     title: bool = True, unit: str | None = None):
    """Side-by-side signed bar charts, one per method, over the same features.

    Parameters
    ----------
    explanations : Explanation or list of Explanation
        Tabular attributions.
    row : int, optional
        Dataset row to show.
    order : list of str, optional
        Feature order (default :func:`shared_feature_order` of the inputs).
    top_k : int
        Features shown when ``order`` is not given.
    width : int or None
        Width of each chart in pixels; None lets the container decide.
    title : bool
        Name each chart after its method.
    unit : str, optional
        The value axis title (default :func:`studio.charts.captions.axis_unit`, e.g. ``contribution to
        P(malignant)``).

    Returns
    -------
    altair.HConcatChart or altair.Chart
    """
    from studio.charts.captions import axis_unit

    import altair as alt

    if isinstance(explanations, Explanation):
        explanations = [explanations]
    explanations = [e for e in explanations if _tabular(e)]
    if not explanations:
        raise ValueError("attribution_bars needs at least one tabular attribution explanation")
    order = list(order) if order is not None else shared_feature_order(explanations, row, top_k)
    charts = []
    for i, exp in enumerate(explanations):
        frame = attribution_frame(exp, row, order)
        size = {"width": width} if width else {}
        output = explained_output(exp, _row_position(exp, row))  # the class or output explained, for the axis
        charts.append(
            alt.Chart(frame, title=exp.method if title else "", **size)
            .mark_bar()
            .encode(
                # a chart sized by its container may sit in a narrow column: shorter feature labels and a title
                # wrapped shorter leave the value axis room for its title and ticks (issue 14)
                y=alt.Y("feature:N", sort=order, title=None,
                        axis=label_axis(labels=i == 0, labelLimit=220 if width else NARROW_LABEL_PX)),
                x=alt.X("value:Q", title=wrap_title(unit or axis_unit(exp, short_label(output) if output else None),
                                                    24 if width else 16),
                        axis=alt.Axis(titleLimit=0), scale=alt.Scale(zero=True, nice=True)),
                color=alt.Color("sign:N", scale=alt.Scale(domain=SIGN_DOMAIN, range=SIGN_RANGE), legend=None),
                tooltip=[
                    alt.Tooltip("method:N"), alt.Tooltip("feature:N"), alt.Tooltip("value:Q", format=".4g"),
                    alt.Tooltip("input:N", title="feature value"),
                ],
            )
        )
    if len(charts) == 1:
        return charts[0]
    return alt.hconcat(*charts, spacing=8).resolve_scale(x="independent")


def importance_frame(exp: Explanation):
    """Global importance of every feature as a table.

    Importance payloads give mean and std directly; tabular attributions over
    several rows give mean |attribution| and its std over rows (e.g. mean
    |SHAP|).

    Returns
    -------
    pandas.DataFrame
        Columns method, feature, mean, std, low, high.
    """
    import pandas as pd

    if exp.kind == "importance":
        rows = [(i.feature, float(i.mean), float(i.std)) for i in exp.importances]
    elif _tabular(exp):
        mag = np.abs(np.asarray(exp.values, dtype=float))  # (n_rows, n_features)
        rows = list(zip(exp.feature_names, mag.mean(axis=0), mag.std(axis=0)))
    else:
        raise ValueError(f"{exp.method} ({exp.kind}) has no feature importances")
    frame = pd.DataFrame(rows, columns=["feature", "mean", "std"])
    frame.insert(0, "method", exp.method)
    frame["std"] = frame["std"].fillna(0.0)
    frame["low"] = frame["mean"] - frame["std"]
    frame["high"] = frame["mean"] + frame["std"]
    frame["feature"] = frame["feature"].astype(str)
    return frame


def shared_importance_order(explanations, top_k: int | None = 15) -> list[str]:
    """One order of features (and EBM terms) for several importance results: the average share over methods
    (each method's means scaled to sum to 1), largest first."""
    if isinstance(explanations, Explanation):
        explanations = [explanations]
    weights: dict[str, float] = {}
    for f in (importance_frame(e) for e in explanations):
        total = f["mean"].clip(lower=0).sum() or 1.0
        for name, m in zip(f["feature"], f["mean"]):
            weights[name] = weights.get(name, 0.0) + max(float(m), 0.0) / total
    order = sorted(weights, key=lambda n: -weights[n])
    return order if top_k is None else order[:top_k]


@compact
def importance_bars(explanations, top_k: int = 15, width: int | None = 220, order=None, unit: str = "importance",
                    title: bool = True):
    """Importance bars with a +-1 std whisker, one chart per method, shared order.

    The order is the average rank share over methods (each method's means
    scaled to sum to 1), unless ``order`` gives it (features or terms).
    ``width`` None lets the container decide; ``unit`` titles the value axis.
    """
    import altair as alt

    if isinstance(explanations, Explanation):
        explanations = [explanations]
    frames = [importance_frame(e) for e in explanations]
    order = list(order)[:top_k] if order is not None else shared_importance_order(explanations, top_k)
    charts = []
    for i, frame in enumerate(frames):
        frame = frame[frame["feature"].isin(order)]
        size = {"width": width} if width else {}
        base = alt.Chart(frame, title=str(frame["method"].iloc[0]) if len(frame) and title else "", **size)
        # labels on the first chart, and on any chart with a term the first does not have (EBM pairs `a x b`)
        own = set(frame["feature"]) - set(frames[0]["feature"])
        y = alt.Y("feature:N", sort=order, title=None, axis=label_axis(labels=i == 0 or bool(own), labelLimit=200))
        bars = base.mark_bar(color="#7f7fbf").encode(
            y=y, x=alt.X("mean:Q", title=wrap_title(unit, 32)),
            tooltip=[alt.Tooltip("method:N"), alt.Tooltip("feature:N"), alt.Tooltip("mean:Q", format=".4g"),
                     alt.Tooltip("std:Q", format=".3g")],
        )
        whiskers = base.mark_rule(color="#888").encode(y=y, x="low:Q", x2="high:Q")
        charts.append(bars + whiskers)
    if len(charts) == 1:
        return charts[0]
    return alt.hconcat(*charts, spacing=8).resolve_scale(x="independent")


def image_attribution_chart(exp: Explanation, row: int | None = None, size: int = 160):
    """One image attribution map as a diverging heatmap.

    Channels are summed and the map is divided by its 99th percentile of
    |value| and clipped to [-1, 1], so every method's map is drawn with the
    same normalisation. Maps larger than :data:`MAX_POINTS` cells are
    block-averaged (the title says so).
    """
    import altair as alt
    import pandas as pd

    m = normalised_map(exp, row)  # (H, W) in [-1, 1]
    h, w = m.shape
    step = 1
    while (h // step) * (w // step) > MAX_POINTS:
        step += 1
    note = ""
    if step > 1:
        hh, ww = h // step, w // step
        m = m[: hh * step, : ww * step].reshape(hh, step, ww, step).mean(axis=(1, 3))  # (hh, ww)
        note = f" ({step}x{step} blocks averaged)"
    ys, xs = np.indices(m.shape)
    frame = pd.DataFrame({"x": xs.ravel(), "y": ys.ravel(), "value": m.ravel()})
    return (
        alt.Chart(frame, title=exp.method + note, width=size, height=size)
        .mark_rect()
        .encode(
            x=alt.X("x:O", axis=None), y=alt.Y("y:O", axis=None),
            color=alt.Color("value:Q", scale=alt.Scale(scheme="redblue", domain=[1, -1]), legend=None),
            tooltip=["x:O", "y:O", alt.Tooltip("value:Q", format=".3g")],
        )
    )


def normalised_map(exp: Explanation, row: int | None = None, percentile: float = 99.0) -> np.ndarray:
    """Channel-summed attribution map scaled by its ``percentile`` of |value|, clipped to [-1, 1].

    Returns
    -------
    ndarray of shape (H, W)
    """
    values = np.asarray(exp.values, dtype=float)[_row_position(exp, row)]  # (C, H, W)
    m = values.sum(axis=0)  # (H, W)
    scale = float(np.percentile(np.abs(m), percentile))
    if scale <= 0:
        scale = float(np.abs(m).max()) or 1.0
    return np.clip(m / scale, -1.0, 1.0)


def method_color():
    """A colour encoding for the method field (shared palette)."""
    import altair as alt

    return alt.Color("method:N", scale=alt.Scale(scheme=METHOD_SCHEME))


@compact
def comparison_bars(exp: Explanation, row: int, other_values, other_label: str, order=None, top_k: int = 15,
                    width: int = 260):
    """One method's attributions on ``row`` beside another set (a second row, or a subset's mean).

    Parameters
    ----------
    other_values : ndarray of shape (n_features,)
        In ``exp.feature_names`` order.
    other_label : str
        Legend name of the other set, e.g. ``"row 12"`` or ``"mean of subset A (20 rows)"``.
    """
    import altair as alt
    import pandas as pd

    order = list(order) if order is not None else shared_feature_order([exp], row, top_k)
    mine = attribution_frame(exp, row, order)
    mine["instance"] = f"row {row}"
    index = {n: i for i, n in enumerate(exp.feature_names)}
    other = np.asarray(other_values, dtype=float)
    theirs = pd.DataFrame({"method": exp.method, "feature": order, "value": [float(other[index[f]]) for f in order]})
    theirs["instance"] = str(other_label)
    frame = pd.concat([mine[["method", "feature", "value", "instance"]], theirs], ignore_index=True)
    return (
        alt.Chart(frame, title=f"{exp.method}: row {row} vs {short_label(other_label)}", width=width)
        .mark_bar()
        .encode(
            y=alt.Y("feature:N", sort=order, title=None, axis=label_axis()), yOffset=alt.YOffset("instance:N"),
            x=alt.X("value:Q", title="attribution"),
            color=alt.Color("instance:N", scale=alt.Scale(range=["#d6604d", "#999999"]), title=None),
            tooltip=["instance:N", "feature:N", alt.Tooltip("value:Q", format=".4g")],
        )
    )
