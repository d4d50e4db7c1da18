"""Activations of an ONNX model: the chosen intermediate value exposed as an extra graph output, run by onnxruntime.

The model's graph is read with ``onnx`` (external data inlined in memory, as
the loader does), the layer's value is appended to ``graph.output`` with its
type from ``onnx.shape_inference`` (``onnx.helper.make_tensor_value_info``),
and one onnxruntime session computes both the model's explained output and
the layer's value per batch. Reduction and dead neurons follow
:mod:`studio.activations.capture` (spatial mean or max per channel, peak
before the reduction), computed with numpy on the batch.

Runs where the model runs: in the sandbox worker for a sandboxed model.
"""

from __future__ import annotations

import numpy as np

from studio.errors import StudioError

_SESSIONS_KEPT = 4


def onnx_layers(proto) -> dict:
    """``{layer name: value name}``: each node by its name (``/1/Gemm``) and each node output by its own name."""
    out = {}
    for k, n in enumerate(proto.graph.node):
        if not n.output:
            continue
        out.setdefault(n.name or f"{n.op_type}_{k}", n.output[0])
        for o in n.output:
            out.setdefault(o, o)
    return out


def tapped_session(model, layer: str):
    """(onnxruntime session returning [explained output, layer value], value name), kept per model and layer."""
    import onnx
    from onnx import helper, shape_inference

    from studio.models.loaders import _inline_external_data, ort_session

    kept = model.__dict__.setdefault("_onnx_taps", {})
    if layer in kept:
        return kept[layer]
    blob, _, _, _ = _inline_external_data(model.onnx_bytes, model.name, getattr(model, "onnx_extra", None))
    proto = onnx.load_model_from_string(blob)
    names = onnx_layers(proto)
    if layer not in names:
        raise StudioError(f"layer {layer!r} not found in the ONNX graph; layers: {', '.join(list(names)[:40])}")
    value = names[layer]
    if value not in {o.name for o in proto.graph.output}:
        try:
            typed = {vi.name: vi for vi in shape_inference.infer_shapes(proto).graph.value_info}
        except Exception:  # noqa: BLE001 -- types are optional: onnxruntime infers them
            typed = {}
        info = typed.get(value)
        elem = info.type.tensor_type.elem_type if info is not None else onnx.TensorProto.FLOAT
        proto.graph.output.append(helper.make_tensor_value_info(value, elem, None))
    try:
        session = ort_session(proto.SerializeToString())
    except Exception as exc:  # noqa: BLE001
        raise StudioError(f"onnxruntime could not run the graph with {layer!r} as an output ({type(exc).__name__}); "
                          "pick another layer") from None
    while len(kept) >= _SESSIONS_KEPT:
        kept.pop(next(iter(kept)))
    kept[layer] = (session, value)
    return kept[layer]


def onnx_activations(model, data, layer: str, rows: np.ndarray, reduce: str, batch_size: int | None):
    """:func:`studio.activations.activations` for an ONNX model (no cache; see the module docstring)."""
    from studio.activations.capture import default_batch, finish

    session, value = tapped_session(model, layer)
    bs = int(batch_size or default_batch(data))
    matrix = peak = shape = None
    outs = []
    for start in range(0, len(rows), bs):
        chunk = rows[start : start + bs]
        out, v = session.run([model.output_name, value], model.feeds(data.x[chunk]))
        v = np.asarray(v)
        if v.ndim == 0 or v.shape[0] != len(chunk):
            raise StudioError(f"layer {layer!r} has no batch dimension (shape {list(v.shape)}); pick another layer")
        v = v.reshape(len(v), 1) if v.ndim == 1 else v
        shape = list(v.shape[1:])
        if v.ndim == 2:
            reduced = row_max = v
        else:
            flat = v.reshape(v.shape[0], v.shape[1], -1)
            row_max = flat.max(axis=2)
            reduced = row_max if reduce == "max" else flat.mean(axis=2, dtype=np.float64)
        if matrix is None:
            matrix = np.empty((len(rows), reduced.shape[1]), dtype=np.float32)
        matrix[start : start + len(chunk)] = reduced
        top = row_max.max(axis=0)
        peak = top if peak is None else np.maximum(peak, top)
        outs.append(np.asarray(out))
    return finish(model, data, rows, matrix, peak, np.concatenate(outs), layer, shape, reduce, [])
