"""Small charts of the data and model quality (always aggregated first)."""

from __future__ import annotations

import numpy as np

from studio.charts.base import compact, label_axis, short_label, short_labels

MAX_CATEGORIES = 20


def histogram_frame(values, bins: int = 20):
    """Counts per bin (numbers) or per category (top :data:`MAX_CATEGORIES`).

    Computed on every value given; only the counts go to the chart.

    Returns
    -------
    frame : pandas.DataFrame
        Numbers: columns start, end, count. Categories: value, count.
    numeric : bool
    """
    import pandas as pd

    s = pd.Series(np.asarray(values).ravel() if not isinstance(values, pd.Series) else values)
    numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
    s = s.dropna()
    if numeric:
        arr = s.to_numpy(dtype=float)
        arr = arr[np.isfinite(arr)]
        if len(arr) == 0:
            return pd.DataFrame({"start": [], "end": [], "count": []}), True
        lo, hi = float(arr.min()), float(arr.max())
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        counts, edges = np.histogram(arr, bins=bins, range=(lo, hi))
        return pd.DataFrame({"start": edges[:-1], "end": edges[1:], "count": counts}), True
    counts = s.astype(str).value_counts()
    other = int(counts.iloc[MAX_CATEGORIES:].sum())
    counts = counts.iloc[:MAX_CATEGORIES]
    frame = pd.DataFrame({"value": counts.index.astype(str), "count": counts.to_numpy()})
    if other:
        frame.loc[len(frame)] = ["(other)", other]
    return frame, False


def distribution_chart(values, name: str = "", bins: int = 20, width: int = 160, height: int = 60, small: bool = True):
    """A small histogram (numbers) or bar chart (categories) of one column (counts over every value)."""
    frame, numeric = histogram_frame(values, bins)
    return histogram_chart(frame, numeric, name, width, height, small)


@compact
def histogram_chart(frame, numeric: bool, name: str = "", width: int = 160, height: int = 60, small: bool = True):
    """The chart :func:`distribution_chart` draws, from counts already made (:func:`histogram_frame`'s frame,
    or :meth:`studio.data.large.LargeTable.histogram`'s, counted by DuckDB over every row)."""
    import altair as alt

    font = 8 if small else 11
    x_title, y_title = (None, None) if small else ("value", "rows")  # a full-size chart names its axes
    if numeric:
        return (
            alt.Chart(frame, width=width, height=height)
            .mark_bar(color="#6f8fbf")
            .encode(
                x=alt.X("start:Q", bin="binned", title=x_title, axis=alt.Axis(labelFontSize=font, tickCount=4)),
                x2="end:Q", y=alt.Y("count:Q", title=y_title, axis=None if small else alt.Axis(labelFontSize=font)),
                tooltip=[alt.Tooltip("start:Q", format=".3g"), alt.Tooltip("end:Q", format=".3g"), "count:Q"],
            )
            .properties(title=alt.TitleParams(short_label(name), fontSize=font + 2) if name else "")
        )
    return (
        alt.Chart(frame, width=width, height=height)
        .mark_bar(color="#6f8fbf")
        .encode(x=alt.X("value:N", sort="-y", title=x_title, axis=label_axis(labelFontSize=8)),
                y=alt.Y("count:Q", title=y_title),
                tooltip=["value:N", "count:Q"])
        .properties(title=alt.TitleParams(short_label(name), fontSize=10) if name else "")
    )


@compact
def class_balance_chart(labels, width: int = 320):
    """Bars of label counts (all labels counted; one bar per class).

    Parameters
    ----------
    labels : array-like or pandas.DataFrame
        The labels, or a frame of counts with columns class and count
        (as :func:`studio.data.profile.class_counts` returns).
    """
    import altair as alt
    import pandas as pd

    if isinstance(labels, pd.DataFrame):
        frame = labels[["class", "count"]].copy()
    else:
        counts = pd.Series(np.asarray(labels).ravel()).astype(str).value_counts().sort_index()
        frame = pd.DataFrame({"class": counts.index.astype(str), "count": counts.to_numpy()})
    frame["class"] = frame["class"].astype(str)
    frame["share"] = frame["count"] / max(int(frame["count"].sum()), 1)
    n = len(frame)
    frame = frame.head(100)
    return (
        alt.Chart(frame, title="Class balance" + (" (first 100 classes)" if n > 100 else ""), width=width)
        .mark_bar(color="#7f9f7f")
        .encode(y=alt.Y("class:N", title=None, sort=None, axis=label_axis()), x=alt.X("count:Q"),
                tooltip=["class:N", "count:Q", alt.Tooltip("share:Q", format=".1%")])
    )


@compact
def confusion_chart(matrix, class_names, size: int = 280):
    """Confusion matrix heatmap (rows: true label, columns: prediction)."""
    import altair as alt
    import pandas as pd

    m = np.asarray(matrix)
    names = short_labels([str(c) for c in class_names])  # k x k cells each carry two names: drawn short
    k = min(len(names), 60)  # at most 3,600 cells
    records = [
        {"true": names[i], "predicted": names[j], "count": int(m[i, j]), "i": i, "j": j}
        for i in range(k) for j in range(k)
    ]
    frame = pd.DataFrame(records)
    base = alt.Chart(frame, title="Confusion matrix" + (f" (first {k} classes)" if len(names) > k else ""),
                     width=size, height=size)
    rect = base.mark_rect().encode(
        x=alt.X("predicted:N", sort=names[:k]), y=alt.Y("true:N", sort=names[:k]),
        color=alt.Color("count:Q", scale=alt.Scale(scheme="blues")),
        tooltip=["true:N", "predicted:N", "count:Q"],
    )
    text = base.mark_text(fontSize=10).encode(
        x=alt.X("predicted:N", sort=names[:k]), y=alt.Y("true:N", sort=names[:k]), text="count:Q",
        color=alt.condition(f"datum.count > {float(m[:k, :k].max()) / 2}", alt.value("white"), alt.value("#222")),
    )
    return rect + text if k <= 20 else rect
