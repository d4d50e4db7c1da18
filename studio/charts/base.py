"""Shared chart settings: the point budget, colours, label shortening, and a point counter."""

from __future__ import annotations

MAX_POINTS = 5000
"""Most data points any chart sends to the browser."""

POSITIVE = "#d6604d"  # pushes the explained output up
NEGATIVE = "#4393c3"  # pushes it down
SIGN_DOMAIN = ["raises output", "lowers output"]
SIGN_RANGE = [POSITIVE, NEGATIVE]
METHOD_SCHEME = "tableau10"
SUBTITLE_COLOR = "#8a8d98"
"""Subtitles: Streamlit's chart theme colours titles, axes and legends for light and dark pages but leaves
subtitles black, unreadable on the dark theme; this grey reads on both."""

LABEL_CHARS = 60
"""Names longer than this are shown as their first LABEL_CHARS characters and an ellipsis."""
ELLIPSIS = "\u2026"
LABEL_EXPR = (f"length(datum.label) > {LABEL_CHARS} ? "
              f"slice(datum.label, 0, {LABEL_CHARS}) + '{ELLIPSIS}' : datum.label")
"""Vega expression shortening an axis label the same way as :func:`short_label` (the data keep the whole name)."""


def short_label(text, limit: int = LABEL_CHARS) -> str:
    """``text`` for display: its first ``limit`` characters and an ellipsis when longer.

    Names come from uploaded files and may be 200,000 characters long; the
    renderers measure every label they draw (vl-convert's time grew
    quadratically with a label's length), so charts and the report draw the
    short form and keep the whole name in a tooltip or ``title`` attribute.
    """
    text = str(text)
    return text if len(text) <= limit else text[:limit] + ELLIPSIS


def short_labels(names, limit: int = LABEL_CHARS) -> list:
    """:func:`short_label` of each name, kept distinct (a shortened name that repeats gets `` #i``)."""
    out = [short_label(n, limit) for n in names]
    seen: dict = {}
    for i, label in enumerate(out):
        seen.setdefault(label, []).append(i)
    for label, where in seen.items():
        if len(where) > 1 and any(len(str(names[i])) > limit for i in where):
            for i in where:
                out[i] = f"{label} #{i}"
    return out


def label_axis(**kwargs):
    """An ``alt.Axis`` whose labels are shortened by :data:`LABEL_EXPR` (nominal axes of names)."""
    import altair as alt

    return alt.Axis(labelExpr=LABEL_EXPR, **kwargs)


def chart_points(chart) -> int:
    """Number of data rows a chart sends to the browser (all its datasets)."""
    spec = chart.to_dict()
    total = 0
    for values in (spec.get("datasets") or {}).values():
        total += len(values)

    def walk(node):
        nonlocal total
        if isinstance(node, dict):
            data = node.get("data")
            if isinstance(data, dict) and isinstance(data.get("values"), list):
                total += len(data["values"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk({k: v for k, v in spec.items() if k != "datasets"})
    return total


def sample_note(shown: int, total: int, what: str = "rows") -> str:
    """Title suffix saying a chart shows a sample, or ``""``."""
    return f" (sample of {shown:,} of {total:,} {what})" if shown < total else ""


def explained_output(exp, position: int = 0) -> str:
    """Name of the output an explanation explains (its class, or a multi-output regressor's output), or ``""``.

    Parameters
    ----------
    exp : Explanation
    position : int
        Index into ``exp.target`` (local explanations: the row's position).
    """
    names = exp.output_names or []
    if not exp.target or len(names) < 2:
        return ""
    t = exp.target[min(position, len(exp.target) - 1)]
    return str(names[int(t)]) if t is not None and 0 <= int(t) < len(names) else ""
