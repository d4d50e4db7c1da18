"""Activation explorer charts (after ActiVis): graph as DOT, activation matrix heatmap, projection scatter.

Pure functions of :class:`studio.activations.Graph` / :class:`~studio.activations.Activations`
and plain arrays; nothing here captures activations.
"""

from __future__ import annotations

import numpy as np

from studio.charts.base import compact, MAX_POINTS

MAX_NEURONS = 64
"""At most this many neuron columns are drawn (the first in the chosen order; the title says so)."""


def graph_dot(g, highlight: str | None = None, max_nodes: int = 400) -> str:
    """The graph as Graphviz DOT (top to bottom), each node with op, output shape, parameters and MACs.

    Parameters
    ----------
    g : Graph
    highlight : str, optional
        Layer drawn filled (the selected one).
    max_nodes : int
        Larger graphs keep their first ``max_nodes`` nodes (the label of the last one says so).
    """
    nodes = g.nodes[:max_nodes]
    keep = {n.name for n in nodes}
    lines = ["digraph G {", "rankdir=TB;", 'node [shape=box, style="rounded", fontname="Helvetica", fontsize=10];',
             'edge [color="#888888"];']
    for i, n in enumerate(nodes):
        shape = "x".join(map(str, n.output_shape[1:] if n.output_shape and len(n.output_shape) > 1 else n.output_shape or []))
        parts = [f"{n.name}", n.op]
        if shape:
            parts.append(shape)
        if n.params:
            parts.append(f"{_short(n.params)} params")
        if n.macs:
            parts.append(f"{_short(n.macs)} MACs")
        if i == len(nodes) - 1 and len(g.nodes) > max_nodes:
            parts.append(f"({len(g.nodes) - max_nodes} more nodes not drawn)")
        label = "\\n".join(_dot_escape(p) for p in parts)
        style = ', style="rounded,filled", fillcolor="#ffd8a8"' if highlight and n.layer == highlight else ""
        if n.op.startswith("block"):
            style = ', style="rounded,filled", fillcolor="#e7f0fb"' if not style else style
        lines.append(f'"{_dot_escape(n.name)}" [label="{label}"{style}];')
    for a, b in g.edges:
        if a in keep and b in keep:
            lines.append(f'"{_dot_escape(a)}" -> "{_dot_escape(b)}";')
    lines.append("}")
    return "\n".join(lines)


def _dot_escape(text) -> str:
    return str(text).replace("\\", "\\\\").replace('"', '\\"')


def _short(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(int(n))


def graph_table(g, dead: dict | None = None):
    """The graph's nodes as a DataFrame: node, op, layer, output shape, params, MACs, inputs (and dead neurons).

    Parameters
    ----------
    g : Graph
    dead : dict of str to (int, int), optional
        :func:`studio.activations.dead_neurons`: adds a column "dead neurons" ("3 of 32") per layer.
    """
    import pandas as pd

    inputs: dict = {}
    for a, b in g.edges:
        inputs.setdefault(b, []).append(a)
    return pd.DataFrame({
        "node": [n.name for n in g.nodes],
        "op": [n.op for n in g.nodes],
        "layer": [n.layer or "" for n in g.nodes],
        "output shape": ["x".join(map(str, n.output_shape)) if n.output_shape else "?" for n in g.nodes],
        "params": [int(n.params) for n in g.nodes],
        "MACs": [int(n.macs) for n in g.nodes],
        "inputs": [", ".join(inputs.get(n.name, [])) for n in g.nodes],
    }).assign(**({"dead neurons": [f"{dead[n.layer][0]} of {dead[n.layer][1]}" if n.layer in dead else ""
                                   for n in g.nodes]} if dead else {}))


@compact
def matrix_chart(names: list, means: np.ndarray, neuron_names: list, order=None, dead=None, counts=None,
                 reduction: str = "", max_neurons: int = MAX_NEURONS, title: str = "Mean activation"):
    """Heatmap: rows (instances, subsets, classes) x neurons, colour = mean activation.

    Parameters
    ----------
    names : list of str
        Row names, drawn top to bottom in this order.
    means : ndarray of shape (n_rows, n_neurons)
    neuron_names : list of str
    order : ndarray of int, optional
        Neuron order (e.g. by the difference between two rows); the first
        ``max_neurons`` are drawn.
    dead : ndarray of bool (n_neurons,), optional
        Dead neurons get a "dead" mark in their column label.
    counts : list of int, optional
        Rows behind each mean (tooltip).
    reduction : str
        How a neuron became one number, said in the title.
    """
    import altair as alt
    import pandas as pd

    means = np.asarray(means, dtype=float)
    k = means.shape[1]
    order = np.arange(k) if order is None else np.asarray(order)
    shown = order[:max_neurons]
    dead = np.zeros(k, dtype=bool) if dead is None else np.asarray(dead)
    label = [f"{neuron_names[j]} (dead)" if dead[j] else neuron_names[j] for j in range(k)]
    rows = []
    for i, name in enumerate(names):
        for pos, j in enumerate(shown):
            rows.append({"row": name, "neuron": label[j], "position": pos, "activation": means[i, j],
                         "rows behind": None if counts is None else int(counts[i])})
    frame = pd.DataFrame(rows)
    lo, hi = np.nanmin(means[:, shown]) if means.size else 0.0, np.nanmax(means[:, shown]) if means.size else 1.0
    scale = alt.Scale(scheme="redblue", domainMid=0, reverse=True) if lo < 0 < hi else alt.Scale(scheme="blues")
    note = f"{title} per neuron" + (f" ({reduction})" if reduction and reduction != "none" else "")
    if k > len(shown):
        note += f"; first {len(shown)} of {k} neurons in the chosen order"
    return (
        alt.Chart(frame, title=note, height=alt.Step(20), width=alt.Step(14))
        .mark_rect()
        .encode(
            x=alt.X("neuron:N", sort=[label[j] for j in shown],
                    axis=alt.Axis(labelAngle=-90, title="neuron", labelOverlap=False)),
            y=alt.Y("row:N", sort=list(names), title=None, axis=alt.Axis(labelOverlap=False, labelLimit=220)),
            color=alt.Color("activation:Q", scale=scale, title="mean activation"),
            tooltip=["row:N", "neuron:N", alt.Tooltip("activation:Q", format=".4g"), "rows behind:Q"],
        )
    )


@compact
def projection_chart(xy: np.ndarray, frame, colour: str, method: str, max_points: int = MAX_POINTS):
    """Scatter of a 2-D projection, coloured by ``colour`` (a column of ``frame``), with a brush and a point selection.

    Dragging draws the brush (selection ``brush``: x and y ranges); clicking a
    point picks it (selection ``pick``: its ``row``).

    Parameters
    ----------
    xy : ndarray of shape (n, 2)
    frame : DataFrame with n rows
        Columns shown in tooltips (row, label, prediction, correct).
    colour : str
        Column of ``frame`` to colour by.
    method : str
        Named in the title.
    """
    import altair as alt

    data = frame.copy()
    data["x"], data["y"] = xy[:, 0], xy[:, 1]
    if len(data) > max_points:
        data = data.sample(max_points, random_state=0)
    brush = alt.selection_interval(name="brush")
    pick = alt.selection_point(name="pick", fields=["row"], on="click", clear="dblclick")
    kind = "Q" if data[colour].dtype.kind in "fc" else "N"
    names = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
    return (
        alt.Chart(data, title=f"{names.get(method, method)} of the rows' activations ({len(data)} points)",
                  width=460, height=380)
        .mark_circle(size=28, opacity=0.75)
        .encode(x=alt.X("x:Q", title=None), y=alt.Y("y:Q", title=None),
                color=alt.Color(f"{colour}:{kind}", title=colour, scale=_colour_scale(data[colour], kind)),
                tooltip=[c for c in ("row", "label", "prediction", "correct") if c in data.columns])
        .add_params(brush, pick)
    )


def _colour_scale(values, kind: str):
    """Correctness in two unmistakable colours; other categories in tableau10; numbers in viridis."""
    import altair as alt

    if kind == "Q":
        return alt.Scale(scheme="viridis")
    if values.dtype == bool:
        return alt.Scale(domain=[True, False], range=["#4c78a8", "#e45756"])
    return alt.Scale(scheme="tableau10")
