"""The Activations page's views (after ActiVis): graph, activation matrix, projection, instance drill-down.

Uses only the Model's public surface and :mod:`studio.activations` (whose
calls a sandboxed model answers in its worker).
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

import numpy as np
import streamlit as st

from studio.charts import activations as act_charts
from studio.errors import StudioError
from studio.evaluation import Condition, apply_conditions
from studio.ui import state, views

DEFAULT_ROWS = 500
PROJECTION_NAMES = {"pca": "PCA", "tsne": "t-SNE (openTSNE)", "umap": "UMAP (umap-learn)"}


def graph_of(model, data):
    """The model's graph (memoised per model), or None after showing why there is none."""
    from studio.activations import graph

    try:
        return state._memo("act-graph", model.cache_id + data.fingerprint, lambda: graph(model, data))
    except StudioError as exc:
        st.info(views.sentences(str(exc), "Load a torch or ONNX model on the Load page to explore its layers."))
        return None


def default_layer(g) -> str | None:
    """The last hidden layer: the last layer before the output layer that is not a reshape, pooling or dropout."""
    layers = g.layers
    if not layers:
        return None
    plain = ("Flatten", "Dropout", "Identity", "AdaptiveAvgPool2d", "AvgPool2d", "MaxPool2d", "Unflatten")
    ops = {}
    for n in g.nodes:
        ops.setdefault(n.layer, n.op)
    hidden = [name for name in layers[:-1] if ops.get(name) not in plain]
    return hidden[-1] if hidden else layers[0]


def dead_counts(model, data, n_rows: int) -> dict:
    """Dead neurons per layer on the same sampled rows as :func:`capture` (memoised); {} where it cannot count."""
    from studio.activations import dead_neurons
    from studio.ui.global_views import sample_rows

    rows = sample_rows(len(data), n_rows)
    try:
        return state._memo("act-dead", f"{model.cache_id}{data.fingerprint}{n_rows}",
                           lambda: dead_neurons(model, data, rows=rows))
    except StudioError:
        return {}


def render_graph(g, layer: str | None, dead: dict | None = None) -> None:
    """The graph drawn by Graphviz (repeated blocks collapsible) and its node table (with dead neurons per layer)."""
    depth = state.kept(st.selectbox, "Collapse repeated blocks", "act-collapse", options=[0, 1, 2], index=0,
                       format_func=lambda d: {0: "no: every node", 1: "to top-level blocks (layer1, ...)",
                                              2: "to second-level blocks (layer1.0, ...)"}[d])
    shown = g.collapse(int(depth))
    st.caption(f"{g.source}; input {'x'.join(map(str, g.input_shape or []))}; {len(g.nodes)} nodes, "
               f"{g.total_params:,} parameters, {g.total_macs:,} multiply-adds per row"
               + (f". {' '.join(g.notes)}" if g.notes else ""))
    tab_graph, tab_table = st.tabs(["Graph", "Table"])
    with tab_graph:
        st.graphviz_chart(act_charts.graph_dot(shown, highlight=layer))
    with tab_table:
        if dead:
            total = sum(v[0] for v in dead.values())
            st.caption(f"Dead neurons (never above 0 on the captured rows): {total} in "
                       f"{sum(1 for v in dead.values() if v[0])} of {len(dead)} layers.")
        table = act_charts.graph_table(shown, dead)
        st.caption("Select a node's row to explore its layer.")
        st.dataframe(table, hide_index=True, width="stretch", height=320, key="act-node-table",
                     on_select=partial(_select_layer, list(table["layer"]), list(g.layers)), selection_mode="single-row")


def _select_layer(layer_of_row: list, layers: list) -> None:
    """Node table callback: the selected node's layer becomes the page's layer (before the select box is drawn)."""
    selection = st.session_state["act-node-table"].selection
    if selection.rows:
        layer = layer_of_row[selection.rows[0]]
        if layer in layers:
            st.session_state["act-layer"] = layer


def capture(model, data, layer: str, n_rows: int, reduce: str):
    """Activations of ``layer`` for a seeded sample of ``n_rows`` rows (memoised per model, data and settings)."""
    from studio.activations import activations
    from studio.ui.global_views import sample_rows

    rows = sample_rows(len(data), n_rows)
    key = f"{model.cache_id}{data.fingerprint}{layer}{n_rows}{reduce}"
    return state._memo("act-capture", key, lambda: activations(model, data, layer, rows=rows, reduce=reduce))


def row_frame(act):
    """One row per captured instance: row, label, prediction, correct."""
    import pandas as pd

    frame = pd.DataFrame({"row": act.rows})
    if act.labels is not None:
        frame["label"] = [str(v) for v in act.labels]
    frame["prediction"] = [str(v) if isinstance(v, str) else v for v in act.predictions or []] or None
    correct = act.correct
    if correct is not None:
        frame["correct"] = correct
    return frame


def pick_rows(act) -> OrderedDict:
    """ActiVis' rows of the matrix: picked instances (correct left, misclassified right), subsets, classes.

    Returns
    -------
    OrderedDict of str to bool mask over ``act.rows``
    """
    groups = OrderedDict()
    correct = act.correct
    options = act.rows.tolist()
    left, right = st.columns(2)
    if correct is not None:
        good = [r for r, c in zip(options, correct) if c][:500]
        bad = [r for r, c in zip(options, correct) if not c][:500]
        with left:
            picked_good = state.kept(st.multiselect, "Correct instances", "act-good", options=good,
                                     default=good[:1], help="Rows the model got right (first 500 captured).")
        with right:
            picked_bad = state.kept(st.multiselect, "Misclassified instances", "act-bad", options=bad,
                                    default=bad[:1], help="Rows the model got wrong (first 500 captured).")
        for r in picked_good:
            groups[f"row {r} (correct)"] = act.rows == r
        for r in picked_bad:
            groups[f"row {r} (wrong)"] = act.rows == r
        groups["all correct"] = correct
        groups["all misclassified"] = ~correct
    else:
        with left:
            picked = state.kept(st.multiselect, "Instances", "act-picked", options=options[:500], default=options[:1])
        for r in picked:
            groups[f"row {r}"] = act.rows == r
    return groups


def subset_rows(act, frame) -> OrderedDict:
    """The session's named subsets (Model page, or saved from the projection) as masks over ``act.rows``."""
    groups = OrderedDict()
    for name, conds in st.session_state.get("subsets", {}).items():
        try:
            mask = apply_conditions(frame, conds)
        except StudioError as exc:
            st.error(f"subset {name}: {exc}")
            continue
        groups[f"subset: {name}"] = mask[act.rows]
    return groups


def class_rows(act, by: str) -> OrderedDict:
    if by == "(none)":
        return OrderedDict()
    try:
        return OrderedDict((f"{by} = {k}", v) for k, v in act.groups_by(by).items())
    except StudioError as exc:
        st.caption(str(exc))
        return OrderedDict()


def render_matrix(act, groups: OrderedDict) -> None:
    """The activation matrix: chosen rows x neurons, neurons sorted by the difference between two rows."""
    names, means, counts = act.group_means(groups)
    keep = [i for i, c in enumerate(counts) if c > 0]
    if not keep:
        st.info("Pick instances, subsets or classes to compare.")
        return
    names, means, counts = [names[i] for i in keep], means[keep], counts[keep]
    c1, c2 = st.columns(2)
    sort_options = ["(graph order)"] + names
    default_a = "all misclassified" if "all misclassified" in names else names[0]
    default_b = "all correct" if "all correct" in names else names[-1]
    with c1:
        first = state.kept(st.selectbox, "Sort neurons by the difference between", "act-sort-a", options=sort_options,
                           index=sort_options.index(default_a))
    with c2:
        second = state.kept(st.selectbox, "and", "act-sort-b", options=names, index=names.index(default_b))
    order = None
    if first != "(graph order)" and first != second:
        order, diff = act.order_by_difference(groups[first], groups[second])
        top = ", ".join(f"{act.neuron_names[j]} ({diff[j]:+.3g})" for j in order[:5])
        st.caption(f"Largest |{first} − {second}| first: {top}.")
    dead = act.dead
    st.altair_chart(act_charts.matrix_chart(names, means, act.neuron_names, order=order, dead=dead, counts=counts,
                                            reduction=act.reduction))
    if act.n_dead:
        listed = ", ".join(act.neuron_names[j] for j in np.flatnonzero(dead)[:30])
        st.warning(f"{act.n_dead} of {len(dead)} neurons of layer {act.layer} are dead: never above 0 on the "
                   f"{len(act.rows)} captured rows, at any position ({listed}{', ...' if act.n_dead > 30 else ''}).")
    else:
        st.caption(f"No dead neurons in layer {act.layer} on the {len(act.rows)} captured rows.")


def render_projection(act, key: str) -> int | None:
    """The 2-D projection scatter; a brushed region can be saved as a subset (``row in ...``).

    ``key`` names the captured activations (model, data, layer, rows, reduction) for the session memo.

    Returns
    -------
    int or None
        The dataset row of a clicked point, if one was clicked.
    """
    from studio.activations import MAX_PROJECTED

    c1, c2 = st.columns(2)
    with c1:
        method = state.kept(st.selectbox, "Projection", "act-projection", options=list(PROJECTION_NAMES),
                            format_func=PROJECTION_NAMES.get)
    table = row_frame(act)
    colours = [c for c in ("correct", "label", "prediction") if c in table.columns]
    with c2:
        colour = state.kept(st.selectbox, "Colour by", "act-colour", options=colours)
    if len(act.rows) < 3:
        st.info("Capture at least 3 rows for a projection.")
        return None
    key = f"{key}{method}"
    try:
        with st.spinner(f"Projecting {min(len(act.rows), MAX_PROJECTED)} rows with {PROJECTION_NAMES[method]}..."):
            proj = state._memo("act-projection", key, lambda: act.project(method))
    except StudioError as exc:
        st.error(str(exc))
        return None
    if len(act.rows) > len(proj.rows):
        st.caption(f"{len(proj.rows):,} of the {len(act.rows):,} captured rows are projected (a seeded sample; "
                   f"at most {MAX_PROJECTED:,}).")
    shown = table.iloc[proj.index].reset_index(drop=True)
    chart = act_charts.projection_chart(proj.xy, shown, colour, method)
    event = st.altair_chart(chart, on_select="rerun", key="act-projection-chart")
    st.caption("Drag to select a region (it can be saved as a subset); click a point to look at that instance below.")
    selection = (event or {}).get("selection", {}) if isinstance(event, dict) or hasattr(event, "get") else {}
    brush = selection.get("brush")
    picked_row = None
    for point in selection.get("pick") or []:
        if isinstance(point, dict) and "row" in point:
            picked_row = int(point["row"])
    if brush and "x" in brush and "y" in brush:
        (x0, x1), (y0, y1) = sorted(brush["x"]), sorted(brush["y"])
        inside = (proj.xy[:, 0] >= x0) & (proj.xy[:, 0] <= x1) & (proj.xy[:, 1] >= y0) & (proj.xy[:, 1] <= y1)
        picked = proj.rows[inside].tolist()
        st.caption(f"{len(picked)} rows in the selection.")
        s1, s2 = st.columns([3, 1], vertical_alignment="bottom")
        name = s1.text_input("Name the selection as a subset", key="act-subset-name",
                             placeholder="e.g. cluster of 7s")
        if s2.button("Save subset", disabled=not picked, key="act-save-subset"):
            if not name.strip():
                st.error("Give the subset a name, then press Save subset.")
            else:
                st.session_state.setdefault("subsets", {})[name.strip()] = [
                    Condition("row", "in", ",".join(map(str, picked)))]
                st.rerun()
    return picked_row


FAST_METHODS = {"image": ("saliency", "grad_cam", "integrated_gradients", "occlusion", "lime"),
                "tabular": ("shap", "integrated_gradients", "lime", "anchors")}
"""The local method the drill-down offers first, per data kind: the first of these the model supports."""


def instance_table(act) -> None:
    """The captured rows (label, prediction, correct; misclassified first), one selectable: it becomes the instance."""
    table = row_frame(act)
    if "correct" in table.columns:
        table = table.sort_values("correct", kind="stable").reset_index(drop=True)
    st.caption(f"The {len(table):,} captured rows, misclassified first; select one to look at it below.")
    st.dataframe(table, hide_index=True, width="stretch", height=220, key="act-instance-table",
                 on_select=partial(_select_row, table["row"].tolist()), selection_mode="single-row")


def _select_row(rows: list) -> None:
    """Instance table callback: the selected row becomes the shared instance (``st.session_state['row']``)."""
    selection = st.session_state["act-instance-table"].selection
    if selection.rows:
        st.session_state["row"] = int(rows[selection.rows[0]])


def drill_down(model, data, frame_all, picked: int | None = None) -> None:
    """One instance: the image or feature values, label and prediction, and its local explanations.

    The instance is ``st.session_state['row']`` (shared with the Model and
    Local pages), set by a clicked projection point (``picked``), a row of the
    instance table or the number input. Explanations run through
    :func:`studio.explain` with the Local page's session store and disk cache
    (:func:`studio.ui.explain.run_batches`), so a method run on either page
    is not run again on the other.
    """
    from studio.ui import explain as explain_ui
    from studio.ui import panels

    if picked is not None and st.session_state.get("act-picked") != picked:  # a new click, not a rerun of an old one
        st.session_state["act-picked"] = picked
        st.session_state["row"] = picked
    row = views.row_picker(data, "Instance (row); also the Local explanations page's instance")
    panels.instance_summary(model, data, row, frame_all)
    if data.kind == "tabular" and data.frame is not None:
        st.dataframe(data.frame.iloc[[row]], hide_index=True, width="stretch")
    import studio

    infos = [m for m in studio.methods(model, data) if m.scope == "local" and m.available]
    fast = next((n for n in FAST_METHODS.get(data.kind, ()) if n in {m.name for m in infos}), None)
    chosen = explain_ui.method_picker(model, data, "local", key="act-methods", default=[fast] if fast else None)
    plans = explain_ui.plan_runs(model, data, chosen, {}, n_rows=1, budget=explain_ui.DEFAULT_BUDGET_S)
    explain_ui.show_plans(plans)
    if st.button(f"Explain row {row}", key="act-explain", disabled=not chosen):
        explain_ui.run_batches(model, data, [(plans, [row], None)])
    results = explain_ui.stored(model, data, plans, [row], None)
    if results:
        panels.render_local(results, model, data, row, page="Activations")
    elif chosen:
        st.caption("Press Explain to compute; results are shared with the Local explanations page and cached.")

