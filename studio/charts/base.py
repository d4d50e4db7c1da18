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


# ---- compact numbers on every axis, legend and text label ------------------------------------------
def number_format(values) -> str:
    """A d3 number format for an axis (or legend, or text label) over ``values``, chosen from their magnitude.

    ``"~s"`` (SI prefixes: ``150k``, ``2.5M``) when the largest finite |value| is 1e5 or more; else ``".4~g"``
    (four significant digits, trailing zeros dropped, exponent only for tiny values: ``0.25``, ``1500``,
    ``-2e-11``), or ``".6~g"`` from 1e4 (``12345``). Vega's default writes every tick with the decimals its step
    needs, so an axis over attributions of about 1e-11 read ``-0.00000000002``, too long to fit; and a ``g``
    format without a precision lets Vega take one from the tick step (one digit for a step of 50), so ticks at
    100, 150, 200 read ``1e+2 1.5e+2 2e+2`` (d3-format and d3-scale's ``tickFormat``, https://d3js.org/d3-format).
    """
    import numpy as np

    a = np.asarray(values, dtype=object).ravel()
    a = np.array([v for v in a if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)], float)
    a = np.abs(a[np.isfinite(a)])
    top = a.max() if a.size else 0.0
    return "~s" if top >= 1e5 else ".6~g" if top >= 1e4 else ".4~g"


def compact_numbers(chart, data=None):
    """Give every quantitative axis, legend and text label of ``chart`` (layers and concatenations included) that
    has no format of its own the :func:`number_format` of its field's values; returns ``chart`` (changed in
    place). ``data`` is the data inherited from an enclosing chart. Every chart builder in ``studio.charts``
    passes its chart through this (:func:`compact`)."""
    import pandas as pd
    from altair.utils import parse_shorthand

    own = chart._kwds.get("data") if hasattr(chart, "_kwds") else None
    data = own if isinstance(own, pd.DataFrame) else data
    for part in ("layer", "hconcat", "vconcat", "concat"):
        for sub in (chart._kwds.get(part) or []) if hasattr(chart, "_kwds") else []:
            if hasattr(sub, "_kwds"):
                compact_numbers(sub, data)
    spec = chart._kwds.get("spec") if hasattr(chart, "_kwds") else None
    if spec is not None and hasattr(spec, "_kwds"):
        compact_numbers(spec, data)
    enc = chart._kwds.get("encoding") if hasattr(chart, "_kwds") else None
    if data is None or enc is None or not hasattr(enc, "_kwds"):
        return chart
    for name in ("x", "y", "color", "text", "size"):
        ch = enc._kwds.get(name)
        if ch is None or not hasattr(ch, "_kwds"):
            continue
        kw = ch._kwds
        short = kw.get("shorthand")
        parsed = parse_shorthand(short) if isinstance(short, str) else {}
        field = parsed.get("field", kw.get("field"))
        kind = parsed.get("type", kw.get("type"))
        if kind != "quantitative" or not isinstance(field, str) or field not in data.columns or parsed.get("aggregate"):
            continue
        fmt = number_format(data[field].to_numpy())
        if name == "text":
            if _unset(kw.get("format")):
                ch.format = fmt
            continue
        guide = "legend" if name in ("color", "size") else "axis"
        current = kw.get(guide)
        if current is None:  # the chart asked for no axis / legend
            continue
        if _unset(current):
            import altair as alt

            setattr(ch, guide, (alt.Legend if guide == "legend" else alt.Axis)(format=fmt))
        elif hasattr(current, "_kwds") and _unset(current._kwds.get("format")) and _unset(current._kwds.get("labelExpr")):
            current.format = fmt
    return chart


def _unset(value) -> bool:
    from altair.utils.schemapi import Undefined

    return value is Undefined


def compact(build):
    """Decorator for a chart builder: its chart goes through :func:`compact_numbers` (None passes through)."""
    import functools

    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        chart = build(*args, **kwargs)
        return fit_width(compact_numbers(chart)) if chart is not None and hasattr(chart, "_kwds") else chart

    return wrapper


def fit_width(chart):
    """Let a single or layered ``chart`` fit its container's width but keep its own plot height; returns it.

    Streamlit gives a stretched chart with no ``autosize`` Vega-Lite's ``fit``, which squeezes the title,
    legend and axes into the chart's ``height``: a 300 px effect curve kept an 80 px plot and its title was
    cut at the top (issue 14). ``fit-x`` fits the width only, so the height is the plot's and the title, axes
    and legend are added around it (https://vega.github.io/vega-lite/docs/size.html#autosize). Concatenated
    and faceted charts (where Vega-Lite cannot fit) and charts that set ``autosize`` are left as they are; a
    chart of a set width gets ``pad``: its plot at its own size, everything else around it.
    """
    kw = getattr(chart, "_kwds", {})
    if any(not _unset(kw.get(k, _undefined())) for k in ("hconcat", "vconcat", "concat", "facet", "repeat", "autosize")):
        return chart
    import altair as alt

    if isinstance(kw.get("width"), (int, float)):  # a chart of a set width is drawn at its size: its plot is
        # width x height and the axes, title and legend go around it ("pad"); else Streamlit's "fit" squeezed them
        # into it (the Quality page's curves: a 200 px plot drawn 10-70 px tall, the title under the control above)
        chart.autosize = alt.AutoSizeParams(type="pad")
        return chart
    chart.autosize = alt.AutoSizeParams(type="fit-x", contains="padding")
    return chart


def _undefined():
    from altair.utils.schemapi import Undefined

    return Undefined
