"""Charts for live training streams, chosen by the value's kind (pure functions of window values).

- ``scalar``: a line over steps, one line per series (run and stream).
- ``layers``: a multi-line chart, one line per layer, dashed by series.
- ``histogram``: a histogram over time (a heatmap: value bins across, steps down, colour = count), one
  panel per series.
- ``images``: a grid (:func:`image_grid` returns the tiles and captions; the page draws them).

Each chart sends at most :data:`~studio.charts.base.MAX_POINTS` rows: the latest windows are kept.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from studio.charts.base import MAX_POINTS, METHOD_SCHEME


def frame(series: dict) -> pd.DataFrame:
    """Long table of scalar and per-layer windows.

    Parameters
    ----------
    series : dict of str to list of WindowValue
        Series label (e.g. ``"run-a · loss"``) to its windows, oldest first.

    Returns
    -------
    DataFrame
        Columns ``series``, ``layer`` (empty for scalars), ``step``, ``value``, ``window``.
    """
    rows = []
    for label, values in series.items():
        for v in values:
            if v.kind == "scalar":
                rows.append((label, "", v.step, v.value, v.window))
            elif v.kind == "layers":
                rows.extend((label, layer, v.step, x, v.window) for layer, x in v.value.items())
    df = pd.DataFrame(rows, columns=["series", "layer", "step", "value", "window"])
    return df.tail(MAX_POINTS).reset_index(drop=True)


def line_chart(series: dict, title: str = "", height: int = 260, stored=()) -> alt.Chart:
    """Scalars as one line per series over steps; per-layer values as one line per layer, dashed by series.

    ``stored`` names the series read from stored runs: their scalar lines are dashed, so a recording of the
    live run drawn over it stays visible.
    """
    df = frame(series)
    df["run"] = np.where(df["series"].isin(list(stored)), "stored", "live")
    layers = bool((df["layer"] != "").any())
    enc = {"x": alt.X("step:Q", title="step", axis=alt.Axis(format="d", tickMinStep=1)), "y": alt.Y("value:Q", title=title or "value",
                                                            scale=alt.Scale(zero=False)),
           "tooltip": ["series", "layer", "step", alt.Tooltip("value:Q", format=".4g"), "window"]}
    if layers:
        enc["color"] = alt.Color("layer:N", scale=alt.Scale(scheme=METHOD_SCHEME))
        enc["strokeDash"] = alt.StrokeDash("series:N", legend=alt.Legend(labelLimit=300))
    else:
        enc["color"] = alt.Color("series:N", scale=alt.Scale(scheme=METHOD_SCHEME), legend=alt.Legend(labelLimit=300))
        if (df["run"] == "stored").any():
            # no legend of its own: the series names say which runs are stored ("(stored)", "(tensorboard)", ...)
            enc["strokeDash"] = alt.StrokeDash("run:N", legend=None,
                                               scale=alt.Scale(domain=["live", "stored"], range=[[1, 0], [6, 3]]))
    return (alt.Chart(df).mark_line(point=len(df) < 200).encode(**enc)
            .properties(title=title, height=height, width="container"))


def histogram_frame(series: dict, max_windows: int = 60) -> pd.DataFrame:
    """Long table of histogram windows: ``series``, ``step``, ``lo``, ``hi``, ``count``."""
    rows = []
    for label, values in series.items():
        for v in values[-max_windows:]:
            counts, edges = np.asarray(v.value["counts"]), np.asarray(v.value["edges"])
            rows.extend((label, v.step, float(edges[i]), float(edges[i + 1]), int(c)) for i, c in enumerate(counts))
    return pd.DataFrame(rows, columns=["series", "step", "lo", "hi", "count"]).tail(MAX_POINTS)


def histogram_chart(series: dict, title: str = "", height: int = 240) -> alt.Chart:
    """Histograms over time: value bins across, one row per window (by step), colour = count."""
    df = histogram_frame(series)
    base = alt.Chart(df).mark_rect().encode(
        x=alt.X("lo:Q", title=title or "value"), x2="hi:Q", y=alt.Y("step:O", title="step", sort="descending"),
        color=alt.Color("count:Q", scale=alt.Scale(scheme="blues")),
        tooltip=["series", "step", alt.Tooltip("lo:Q", format=".4g"), alt.Tooltip("hi:Q", format=".4g"), "count"])
    if df["series"].nunique() > 1:
        return base.properties(height=height, width=260).facet(column=alt.Column("series:N", title=None)).properties(
            title=title)
    return base.properties(title=title, height=height, width="container")


def image_grid(value, max_images: int = 16) -> tuple[list, list]:
    """Tiles and captions for an ``images`` window.

    Parameters
    ----------
    value : dict
        ``images`` of shape (n, H, W), (n, 1, H, W) or (n, 3, H, W), and ``pred``, ``target``, ``loss``
        of shape (n,) where present.

    Returns
    -------
    tiles : list of ndarray of shape (H, W) or (H, W, 3), floats in [0, 1]
    captions : list of str
        ``pred 3 / true 5 · loss 2.31``.
    """
    images = np.asarray(value["images"], dtype=np.float64)[:max_images]
    if images.ndim == 4:
        images = images[:, 0] if images.shape[1] == 1 else np.moveaxis(images[:, :3], 1, -1)
    elif images.ndim == 2:  # rows of a table: no picture to show
        return [], []
    tiles, captions = [], []
    for i, img in enumerate(images):
        lo, hi = float(img.min()), float(img.max())
        tile = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
        scale = max(1, 64 // max(tile.shape[0], 1))
        tiles.append(np.kron(tile, np.ones((scale, scale) + (1,) * (tile.ndim - 2))))
        parts = []
        if "pred" in value:
            parts.append(f"pred {int(value['pred'][i])}")
        if "target" in value:
            parts.append(f"true {int(value['target'][i])}")
        text = " / ".join(parts)
        if "loss" in value:
            text += f" · loss {float(value['loss'][i]):.3g}"
        captions.append(text)
    return tiles, captions
