"""Charts of an assessment (:func:`studio.assess`): heatmaps, robustness and faithfulness curves (Altair)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from studio.charts.base import METHOD_SCHEME, compact, label_axis


def records_frame(assessment) -> pd.DataFrame:
    """The assessment's records as a frame, with ``scenario`` = ``attack s<severity>`` (``clean`` without attack)."""
    frame = pd.DataFrame(assessment.records)
    if frame.empty:
        return frame
    frame["scenario"] = [f"{a} s{int(s)}" if a else "clean" for a, s in zip(frame["attack"], frame["severity"].fillna(0))]
    return frame


CELL = "cell"
"""Name of the heatmap's click selection (a point on ``method`` and ``scenario``), for ``st.altair_chart(on_select=)``."""


def method_scenario_heatmap(frame: pd.DataFrame, metric: str, title: str, width: int = 560, selectable: bool = False):
    """Methods x perturbations heatmap of one resilience metric (blank where no row kept its prediction).

    ``selectable`` adds a click selection named :data:`CELL` on (method, scenario): the page opens that cell.
    """
    import altair as alt

    sub = frame[(frame["attribute"] == "resilience") & (frame["metric"] == metric)].copy()
    order = list(dict.fromkeys(sub["scenario"]))
    sub["value"] = sub["value"].astype(float)
    base = alt.Chart().encode(
        x=alt.X("scenario:N", sort=order, title="perturbation (attack, severity)"),
        y=alt.Y("method:N", title="method", axis=label_axis()),
    )
    rect = base.mark_rect(cursor="pointer" if selectable else alt.Undefined).encode(
        color=alt.Color("value:Q", scale=alt.Scale(domain=[-1 if metric == "rank_correlation" else 0, 1],
                                                   scheme="viridis"), title=metric.replace("_", " ")),
        tooltip=["method", "scenario", alt.Tooltip("value:Q", format=".3f"), alt.Tooltip("n_rows:Q", title="rows kept")])
    if selectable:
        rect = rect.add_params(alt.selection_point(name=CELL, fields=["method", "scenario"], on="click"))
    text = base.mark_text(fontSize=10).encode(
        text=alt.Text("value:Q", format=".2f"),
        color=alt.condition("datum.value > 0.5", alt.value("black"), alt.value("white")))
    return alt.layer(rect, text, data=sub).properties(title=title, width=alt.Step(max(40, min(70, width // max(len(order), 1)))),
                                                      height=alt.Step(30))


def deviation_heatmap(names: list, matrix: np.ndarray, metric: str, title: str):
    """Methods x methods agreement (the diagonal is a method against itself, 1)."""
    import altair as alt

    rows = [{"method": a, "other": b, "value": None if not np.isfinite(matrix[i, j]) else float(matrix[i, j])}
            for i, a in enumerate(names) for j, b in enumerate(names)]
    base = alt.Chart().encode(x=alt.X("other:N", sort=names, title="method", axis=label_axis()),
                                                y=alt.Y("method:N", sort=names, title="method", axis=label_axis()))
    rect = base.mark_rect().encode(
        color=alt.Color("value:Q", scale=alt.Scale(domain=[-1 if metric == "rank_correlation" else 0, 1],
                                                   scheme="viridis"), title=metric.replace("_", " ")),
        tooltip=["method", "other", alt.Tooltip("value:Q", format=".3f")])
    text = base.mark_text(fontSize=11).encode(text=alt.Text("value:Q", format=".2f"),
                                              color=alt.condition("datum.value > 0.5", alt.value("black"),
                                                                  alt.value("white")))
    return alt.layer(rect, text, data=pd.DataFrame(rows)).properties(title=title, width=alt.Step(60),
                                                                    height=alt.Step(30))


@compact
def robustness_chart(frame: pd.DataFrame, metric: str, title: str, y_title: str):
    """The model's ``metric`` (accuracy, r2 or prediction_kept) against severity, one line per attack."""
    import altair as alt

    sub = frame[(frame["attribute"] == "performance") & (frame["metric"] == metric)].copy()
    clean = sub[sub["attack"] == ""]
    lines = sub[sub["attack"] != ""].copy()
    if not clean.empty:  # every attack starts from the clean value at severity 0
        for attack in lines["attack"].unique():
            if not ((lines["attack"] == attack) & (lines["severity"] == 0)).any():
                lines = pd.concat([lines, clean.assign(attack=attack, severity=0, attack_params=[{}] * len(clean))])
    lines["parameters"] = [", ".join(f"{k} {v}" for k, v in (p or {}).items()) or "none" for p in lines["attack_params"]]
    return alt.Chart(lines).mark_line(point=True).encode(
        x=alt.X("severity:Q", title="severity (0 = clean)", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("value:Q", title=y_title, scale=alt.Scale(domain=[0, 1]) if metric != "r2" else alt.Undefined),
        color=alt.Color("attack:N", scale=alt.Scale(scheme=METHOD_SCHEME)),
        tooltip=["attack", "severity", alt.Tooltip("value:Q", format=".3f"), "parameters"],
    ).properties(title=title, width=260, height=200)  # two side by side, legends included, in a 1280 px page


@compact
def resilience_chart(frame: pd.DataFrame, attack: str, title: str):
    """Resilience (rank correlation, clean vs perturbed, over rows whose prediction held) against severity."""
    import altair as alt

    sub = frame[(frame["attribute"] == "resilience") & (frame["metric"] == "rank_correlation")
                & (frame["attack"] == attack)].copy()
    return alt.Chart(sub).mark_line(point=True).encode(
        x=alt.X("severity:Q", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("value:Q", title="rank correlation with clean", scale=alt.Scale(domain=[-1, 1])),
        color=alt.Color("method:N", scale=alt.Scale(scheme=METHOD_SCHEME)),
        tooltip=["method", "severity", alt.Tooltip("value:Q", format=".3f"), alt.Tooltip("n_rows:Q", title="rows kept")],
    ).properties(title=title, width=420, height=240)


@compact
def faithfulness_chart(curves: dict, kind: str, title: str, y_title: str):
    """Mean deletion or insertion curve per method, the random-order baseline dashed."""
    import altair as alt

    rows = []
    for method, c in curves.items():
        if kind not in c:
            continue
        for f, v in zip(c["fractions"], c[kind]):
            rows.append({"method": "random order" if method == "random" else method, "fraction": f, "score": v,
                         "baseline": method == "random"})
    return alt.Chart(pd.DataFrame(rows)).mark_line().encode(
        x=alt.X("fraction:Q", title=f"share of units {'removed' if kind == 'deletion' else 'inserted'}",
                axis=alt.Axis(format="%")),
        y=alt.Y("score:Q", title=y_title),
        color=alt.Color("method:N", scale=alt.Scale(scheme=METHOD_SCHEME)),
        strokeDash=alt.StrokeDash("baseline:N", legend=None),
        tooltip=["method", alt.Tooltip("fraction:Q", format=".0%"), alt.Tooltip("score:Q", format=".3f")],
    ).properties(title=title, width=420, height=240)
