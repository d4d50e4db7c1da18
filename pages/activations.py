"""Activations (after ActiVis): the model's graph, one layer's neurons for instances, subsets and classes, a projection."""

import streamlit as st

from studio.activations import REDUCTIONS
from studio.errors import StudioError
from studio.ui import activations as ui
from studio.ui import state

state.through_router(__file__)

st.title("Activations")
model, data = state.current()
graph = ui.graph_of(model, data)
if graph is not None and not graph.layers:
    st.info("This model's graph is shown below; capturing activations needs a torch or ONNX model with layers.")
if graph is not None:
    layers = graph.layers
    layer = None
    if layers:
        c1, c2, c3 = st.columns([3, 2, 2])
        with c1:
            layer = state.kept(st.selectbox, "Layer", "act-layer", options=layers,
                               index=layers.index(ui.default_layer(graph)),
                               help="A node of the graph below; its neurons are the columns of the matrix.")
        with c2:
            n_rows = state.kept(st.number_input, "Rows captured (sampled)", "act-rows", min_value=3,
                                max_value=max(len(data), 3), value=min(ui.DEFAULT_ROWS, len(data)), step=100)
        with c3:
            reduce = state.kept(st.selectbox, "Channel reduction", "act-reduce", options=list(REDUCTIONS),
                                format_func=lambda r: f"spatial {r}", help="How a conv channel's map becomes one number.")
    with st.expander("Computation graph", expanded=not layers):
        ui.render_graph(graph, layer, ui.dead_counts(model, data, int(n_rows)) if layer else None)
    if layer:
        try:
            act = ui.capture(model, data, layer, int(n_rows), reduce)
        except StudioError as exc:
            st.error(str(exc))
            act = None
        if act is not None:
            frame, _ = state.predictions(model, data)
            st.subheader(f"Layer {act.layer}: {len(act.neuron_names)} neurons, output {'x'.join(map(str, act.layer_shape))}")
            groups = ui.pick_rows(act)
            groups.update(ui.subset_rows(act, frame))
            by = state.kept(st.radio, "Classes as rows", "act-classes", horizontal=True,
                            options=["label", "prediction", "(none)"])
            groups.update(ui.class_rows(act, by))
            ui.render_matrix(act, groups)
            st.subheader("Projection")
            picked = ui.render_projection(act, key=f"{model.cache_id}{data.fingerprint}{act.layer}{n_rows}{reduce}")
            st.subheader("Instance")
            ui.instance_table(act)
            ui.drill_down(model, data, frame, picked)
