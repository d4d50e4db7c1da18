"""Streamlit views shared by pages: feature table, image grids, image panels."""

from __future__ import annotations

import streamlit as st

from studio.charts.data import histogram_frame
from studio.charts.images import overlay_png, png_bytes, to_display

__all__ = ["csv_download", "feature_table", "image_grid", "metric_row", "residual_chart", "row_picker", "sentences",
           "overlay_png", "png_bytes", "to_display"]


def csv_download(frame, label: str, file_name: str, key: str) -> None:
    """A download button for ``frame`` as CSV, made only when clicked.

    Every CSV the app offers goes through :func:`studio.export.csv_bytes`,
    which neutralises cells a spreadsheet would run as formulas. (The data
    grids' own CSV export is off: ``client.disableDataExport``.)
    """
    from studio.export import csv_bytes

    st.download_button(label, data=lambda: csv_bytes(frame), file_name=file_name, mime="text/csv", key=key,
                       on_click="ignore")


def class_labels(classes, class_names) -> "object":
    """The class-count frame with each label written as the model names it (``malignant``, not ``0``) when the
    labels are class indices; unchanged otherwise."""
    if not class_names or classes is None or not len(classes):
        return classes
    names = [str(n) for n in class_names]
    labels = [str(c) for c in classes["class"]]
    if all(c in names for c in labels):
        return classes
    if not all(c.lstrip("-").isdigit() and 0 <= int(c) < len(names) for c in labels):
        return classes
    out = classes.copy()
    out["class"] = [names[int(c)] for c in labels]
    return out


def is_regression_target(data, model=None) -> bool:
    """Whether the label column is a quantity, not classes: the model says regression, or (no model) the labels
    are numbers with more than 20 distinct values."""
    import numpy as np

    if model is not None:
        return not model.is_classifier
    if data.y is None:
        return False
    y = np.asarray(data.y)
    return y.dtype.kind == "f" and len(np.unique(y[np.isfinite(y)])) > 20


def number_formats(frame, digits: int = 3) -> dict:
    """``column_config`` writing every float column with ``digits`` significant figures (not 15 digits)."""
    return {c: st.column_config.NumberColumn(format=f"%.{digits}g") for c in frame.columns
            if getattr(frame[c], "dtype", None) is not None and frame[c].dtype.kind == "f"}


def feature_table(prof, data, bins: int = 20) -> None:
    """Per-feature statistics with a small distribution (counts over every row) in each line.

    A DuckDB-backed table (``data.large``) gets its counts from SQL over every row of the file.
    """
    frame = prof.features.copy()
    large = getattr(data, "large", None)
    if large is not None:
        counts = large.distributions(bins)
        frame["distribution"] = [counts[name] for name in frame["feature"]]
    else:
        frame["distribution"] = [
            [int(c) for c in histogram_frame(data.frame[name] if data.frame is not None else data.x[:, i], bins)[0]["count"]]
            for i, name in enumerate(frame["feature"])
        ]
    flagged = {f.subject for f in prof.flags}
    frame.insert(0, "flag", ["⚠️" if f in flagged else "" for f in frame["feature"]])
    frame.insert(2, "distribution", frame.pop("distribution"))
    st.dataframe(
        frame, hide_index=True, width="stretch", height=min(38 + 35 * len(frame), 560),
        column_config={
            # bars from zero (y_min=0): a bin's height is its count, not its excess over the smallest bin
            "distribution": st.column_config.BarChartColumn("distribution", y_min=0, width="small",
                                                            help=f"{bins}-bin histogram over every row, from zero"),
            # narrow counts and a pinned name keep every column in view at 1280 px (issue 14)
            "flag": st.column_config.TextColumn(width=40),
            "feature": st.column_config.TextColumn(pinned=True),
            **{c: st.column_config.NumberColumn(width=60) for c in ("count", "missing", "distinct") if large is None},
            "mean": st.column_config.NumberColumn(format="%.3g"),
            "min": st.column_config.NumberColumn(format="%.3g"),
            "max": st.column_config.NumberColumn(format="%.3g"),
            "skew": st.column_config.NumberColumn(format="%.2f"),
            **({"distinct": st.column_config.NumberColumn(help="estimated (HyperLogLog) over every row")}
               if large is not None else {}),
        },
    )


def image_grid(data, per_class: int = 6) -> None:
    """A grid of sample images per class."""
    from studio.data.profile import samples_per_class

    st.markdown("**Samples per class**")
    grid = samples_per_class(data, per_class)
    for cls, rows in list(grid.items())[:20]:
        cols = st.columns([1] + [1] * per_class)
        cols[0].markdown(f"**{md_escape(cls)}**")
        for col, r in zip(cols[1:], rows):
            col.image(to_display(data.x[r]), width=56, caption=f"row {r}")


def metric_row(values: dict) -> None:
    """Task metrics as st.metric tiles."""
    labels = {"rows": "rows", "accuracy": "accuracy", "f1_macro": "F1 (macro)", "roc_auc": "ROC AUC", "r2": "R²",
              "mae": "MAE", "rmse": "RMSE"}
    items = [(labels[k], v) for k, v in values.items() if k in labels]
    for col, (label, v) in zip(st.columns(len(items)), items):
        col.metric(label, f"{v:,}" if isinstance(v, int) else ("n/a" if v != v else f"{v:.3f}"))


def residual_chart(frame, max_points: int = 2000):
    """Prediction against label (regression), sampled to ``max_points`` (the title says so)."""
    import altair as alt

    from studio.charts.base import sample_note

    shown = frame.sample(max_points, random_state=0) if len(frame) > max_points else frame
    return (
        alt.Chart(shown[["row", "label", "prediction"]], title="Prediction vs label" + sample_note(len(shown), len(frame)),
                  width=420, height=320)
        .mark_circle(size=16, opacity=0.5)
        .encode(x="label:Q", y="prediction:Q", tooltip=["row:Q", "label:Q", "prediction:Q"])
    )


def row_picker(data, label: str = "Instance (row) to explain") -> int:
    """A number input bound to ``st.session_state['row']`` (shared by the Model and Local pages)."""
    current = int(st.session_state.get("row", 0))
    current = current if 0 <= current < len(data) else 0
    row = st.number_input(label, min_value=0, max_value=len(data) - 1, value=current, step=1)
    st.session_state["row"] = int(row)
    return int(row)


def sentences(first: str, then: str) -> str:
    """Two messages as two sentences: ``first`` ends with one full stop (whatever it ended with) before ``then``."""
    first = str(first).rstrip()
    if not first:
        return then
    if first[-1] not in ".!?":
        first += "."
    return f"{first} {then}"


def md_escape(text) -> str:
    """User text made safe for st.markdown: HTML and Markdown specials shown literally."""
    import html
    import re

    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~>])", r"\\\1", html.escape(str(text), quote=False))
