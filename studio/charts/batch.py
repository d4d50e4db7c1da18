"""Charts of batch results (``studio.batch``): a dependence scatter and values by subset.

Pure functions of the frames :mod:`studio.batch.results` returns; nothing
here reads files or runs a model. Mean |attribution| importance is drawn by
:func:`studio.charts.importance_bars` from
:func:`studio.batch.results.importance_explanation`.
"""

from __future__ import annotations

from studio.charts.base import compact, sample_note


@compact
def dependence_chart(points, feature: str, total: int, method: str = "shap", width: int | None = None, height: int = 340):
    """Attribution of ``feature`` against its value, one point per sampled row.

    Parameters
    ----------
    points : DataFrame with columns row_id, value, attribution, output
        From :func:`studio.batch.results.dependence` (at most MAX_POINTS rows).
    total : int
        Rows in the results; the title states the sample (e.g. "sample of 5,000 of 100,000 rows").
    """
    import altair as alt

    note = sample_note(len(points), total).strip(" ()")
    title = alt.TitleParams(f"{method} dependence: {feature}", subtitle=note or f"all {total:,} rows",
                            subtitleColor="#555")
    size = {"width": width} if width else {}
    return alt.Chart(points, title=title, height=height, **size).mark_circle(size=12, opacity=0.5).encode(
        x=alt.X("value:Q", title=feature, scale=alt.Scale(zero=False)),
        y=alt.Y("attribution:Q", title=f"{method} value of {feature}"),
        color=alt.Color("output:Q", title="output", scale=alt.Scale(scheme="viridis"),
                        legend=alt.Legend(gradientLength=120)),
        tooltip=[alt.Tooltip("row_id:Q"), alt.Tooltip("value:Q", format=".4g"),
                 alt.Tooltip("attribution:Q", format=".4g"), alt.Tooltip("output:Q", format=".3g")],
    )


@compact
def subset_chart(groups, column: str, features: list, top_k: int = 8, width: int | None = None):
    """Mean |attribution| per feature in each group of ``column`` (grouped bars, the top features overall).

    Parameters
    ----------
    groups : DataFrame
        From :func:`studio.batch.results.by_subset`: group, rows, mean_output, ``mean_abs:<feature>`` ...
    """
    import altair as alt
    import pandas as pd

    weights = {f: float((groups[f"mean_abs:{f}"] * groups["rows"]).sum()) for f in features}
    top = sorted(features, key=lambda f: -weights[f])[:top_k]
    long = pd.DataFrame([{"group": str(g), "rows": int(n), "feature": f, "mean_abs": float(row[f"mean_abs:{f}"])}
                         for (_, row), g, n in zip(groups.iterrows(), groups["group"], groups["rows"]) for f in top])
    size = {"width": width} if width else {}
    return alt.Chart(long, title=f"mean |attribution| by {column}", **size).mark_bar().encode(
        y=alt.Y("feature:N", sort=top, title=None),
        x=alt.X("mean_abs:Q", title="mean |attribution|"),
        color=alt.Color("group:N", title=column, sort=list(dict.fromkeys(long["group"])),
                        legend=alt.Legend(orient="bottom", columns=2, labelLimit=240)),
        yOffset=alt.YOffset("group:N", sort=list(dict.fromkeys(long["group"]))),
        tooltip=["group:N", alt.Tooltip("rows:Q", format=","), "feature:N", alt.Tooltip("mean_abs:Q", format=".4g")],
    )
