"""A model's computation graph: nodes with output shape, parameters and multiply-adds, and the edges between them.

Sources, by model:

- eager torch modules and ``torch.export`` programs: ``torch.fx`` (symbolic
  trace, then :class:`torch.fx.passes.shape_prop.ShapeProp` for the shapes of
  one input); modules fx cannot trace fall back to forward hooks on the
  module tree, edges following the tensors each layer received;
- TorchScript chains (``torch.jit.script(nn.Sequential(...))``): the eager
  view of :func:`studio.explainers.cam.layer_view`, hooked the same way;
  other TorchScript modules: the inlined TorchScript graph, rewritten to also
  return every op's output so one run gives every shape;
- ONNX: onnx's own graph (``onnx.load_model_from_string`` and
  ``onnx.shape_inference``), from the bytes the loader kept.

Multiply-adds (MACs) are counted for one input row, for the layers that hold
nearly all of them: linear/matmul (out elements x in features) and
convolutions (out elements x in channels / groups x kernel area). Other ops
count zero.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from studio.errors import StudioError

SCHEMA = "studio.activations/1"


@dataclass
class GraphNode:
    """One node of the graph.

    Attributes
    ----------
    name : str
        Unique within the graph (fx node name, module path or ONNX node name).
    op : str
        Layer class (``Conv2d``), function (``add``) or ONNX op type (``Gemm``).
    layer : str or None
        Module path that :func:`studio.activations.activations` accepts for
        this node (``layer1.0.conv1``); None where the node cannot be captured.
    output_shape : list of int or None
        Output shape for one input row (batch dimension 1 included).
    params : int
        Parameters this node owns (each parameter counted once in the graph).
    macs : int
        Multiply-adds for one input row.
    scope : str or None
        The module a function node runs inside (``layer1.0`` for a residual
        ``add``), from fx's ``nn_module_stack``; None at the top level.
    """

    name: str
    op: str
    layer: str | None = None
    output_shape: list | None = None
    params: int = 0
    macs: int = 0
    scope: str | None = None

    @property
    def path(self) -> str:
        """Module path used to group repeated blocks: the layer, else scope + name, else the name."""
        if self.layer:
            return self.layer
        return f"{self.scope}.{self.name}" if self.scope else self.name

    @property
    def group(self) -> str:
        """The module path without its last part ("layer1.0" for "layer1.0.conv1"; "" at the top)."""
        return self.path.rsplit(".", 1)[0] if "." in self.path else ""


@dataclass
class Graph:
    """A computation graph (see :func:`graph`).

    Attributes
    ----------
    nodes : list of GraphNode
        In execution order.
    edges : list of (str, str)
        (producer, consumer) node names; a node with two inputs (a residual
        add) has two incoming edges.
    source : str
        ``"torch.fx"``, ``"module hooks"``, ``"torchscript"`` or ``"onnx"``.
    input_shape : list of int
        The one-row input the shapes were computed for.
    notes : list of str
    """

    nodes: list
    edges: list
    source: str
    input_shape: list | None = None
    notes: list = field(default_factory=list)

    @property
    def total_params(self) -> int:
        return int(sum(n.params for n in self.nodes))

    @property
    def total_macs(self) -> int:
        return int(sum(n.macs for n in self.nodes))

    @property
    def layers(self) -> list:
        """Names accepted as ``layer`` by :func:`studio.activations.activations`, in graph order."""
        seen, out = set(), []
        for n in self.nodes:
            if n.layer and n.layer not in seen:
                seen.add(n.layer)
                out.append(n.layer)
        return out

    def collapse(self, depth: int) -> "Graph":
        """Merge nodes by the first ``depth`` parts of their module path (repeated blocks become one node each).

        Parameters
        ----------
        depth : int
            1 folds ``layer1.0.conv1`` into ``layer1``; 0 or less returns the graph as it is.

        Returns
        -------
        Graph
            Merged nodes sum their params and MACs, take the last member's
            output shape, and get op ``"block (k nodes)"``; edges inside a
            block disappear.
        """
        if depth <= 0:
            return self
        key_of, merged, order = {}, {}, []
        for n in self.nodes:
            parts = n.path.split(".")
            key = ".".join(parts[:depth]) if len(parts) > depth else n.name
            key_of[n.name] = key
            if key not in merged:
                merged[key] = [n]
                order.append(key)
            else:
                merged[key].append(n)
        nodes = []
        for key in order:
            members = merged[key]
            if len(members) == 1 and members[0].name == key:
                nodes.append(members[0])
                continue
            nodes.append(GraphNode(key, f"block ({len(members)} nodes)", key if any(m.layer for m in members) else None,
                                   members[-1].output_shape, sum(m.params for m in members), sum(m.macs for m in members)))
        edges, seen = [], set()
        for a, b in self.edges:
            edge = (key_of.get(a, a), key_of.get(b, b))
            if edge[0] != edge[1] and edge not in seen:
                seen.add(edge)
                edges.append(edge)
        return Graph(nodes, edges, self.source, self.input_shape, list(self.notes))

    def to_dict(self, model=None) -> dict:
        """The graph as schema ``studio.activations/1`` (``kind: "graph"``); see docs/activations.md."""
        out = {"schema": SCHEMA, "kind": "graph"}
        if model is not None:
            out["model"] = {"id": model.fingerprint, "format": model.format, "name": model.name}
        out.update({"source": self.source, "input_shape": self.input_shape, "total_params": self.total_params,
                    "total_macs": self.total_macs, "nodes": [asdict(n) for n in self.nodes],
                    "edges": [list(e) for e in self.edges], "notes": list(self.notes)})
        return out

    def to_json(self, model=None, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(model), indent=indent)

    @classmethod
    def from_dict(cls, d: dict) -> "Graph":
        if d.get("schema") != SCHEMA or d.get("kind") != "graph":
            raise StudioError(f"not a {SCHEMA} graph (schema {d.get('schema')!r}, kind {d.get('kind')!r})")
        nodes = [GraphNode(**n) for n in d["nodes"]]
        return cls(nodes, [tuple(e) for e in d["edges"]], d["source"], d.get("input_shape"), list(d.get("notes") or []))


# ---- entry point ------------------------------------------------------------------------------------
def graph(model, data=None, cache=True) -> Graph:
    """The model's computation graph, with shapes, parameters and MACs for one input row.

    Parameters
    ----------
    model : Model
        A torch model (eager, TorchScript, ``torch.export``, state dict) or an
        ONNX model. A sandboxed model (``model.remote``) builds its graph in
        its worker.
    data : Dataset, optional
        Its first row is the example input when the card gives no input size
        or feature names.
    cache : bool or Cache
        True uses the default disk cache (keyed by the model's cache id and
        the data's fingerprint; a hit makes no call to the model or its
        worker); False builds it afresh.

    Returns
    -------
    Graph

    Raises
    ------
    StudioError
        For scikit-learn models (no layers), or when no example input shape is known.
    """
    if cache:
        from studio.activations import store

        key = store.graph_key(model, data)
        hit = store.get_graph(cache, key)
        if hit is not None:
            return hit
        built = graph(model, data, cache=False)
        store.put_graph(cache, key, built, model)
        return built
    if getattr(model, "remote", False):
        return model.graph(data)
    if model.format == "onnx":
        return onnx_graph(model)
    if not getattr(model, "differentiable", False) or not hasattr(model, "torch_module"):
        raise StudioError(f"{model.name!r} is a {model.format} model without layers; the graph view is for torch and ONNX models")
    return torch_graph(model, example_input(model, data))


def example_input(model, data=None) -> np.ndarray:
    """One input row of zeros in the model's input shape, shape (1, ...) float32."""
    shape = model._example_shape() if hasattr(model, "_example_shape") else None
    if shape is None and data is not None and len(data):
        shape = tuple(np.asarray(data.x[:1]).shape[1:])
    if shape is None:
        raise StudioError(f"the input shape of {model.name!r} is unknown; give the card an input_size or feature "
                          "names, or pass a dataset")
    return np.zeros((1, *shape), dtype=np.float32)


def _macs(op: str, weight_shape, out_shape) -> int:
    """Multiply-adds of a linear or convolution layer from its weight and output shapes (one row)."""
    if weight_shape is None or out_shape is None:
        return 0
    out = int(np.prod(out_shape))
    if op in ("Linear", "linear", "addmm", "Gemm", "MatMul", "LazyLinear"):
        return out * int(weight_shape[-1] if op not in ("Gemm", "MatMul") else weight_shape[0])
    if op.lower().startswith("conv") or op in ("convolution", "_convolution"):
        return out * int(np.prod(weight_shape[1:]))
    return 0


def _shape(t):
    import torch

    if isinstance(t, torch.Tensor):
        return list(t.shape)
    if isinstance(t, (tuple, list)) and t and isinstance(t[0], torch.Tensor):
        return list(t[0].shape)
    return None


# ---- torch ---------------------------------------------------------------------------------------------
def torch_graph(model, x: np.ndarray) -> Graph:
    """Graph of a torch model for the one-row input ``x`` (already in raw units; the card's normalisation is applied)."""
    import torch

    from studio.explainers.cam import _is_chain, _is_script, layer_view

    net = model.native
    mean, std = model.card.mean, model.card.std
    t = torch.as_tensor(x, device=model.device)
    if mean is not None:
        shape = (1, -1, 1, 1) if t.ndim == 4 else (1, -1)
        t = (t - torch.tensor(mean, dtype=t.dtype).reshape(shape)) / torch.tensor(std, dtype=t.dtype).reshape(shape)
    notes = []
    with torch.no_grad():
        if _is_script(net):
            if _is_chain(net):
                return hook_graph(layer_view(net), t, notes=["TorchScript chain: layers hooked through its eager view"])
            return script_graph(net, t)
        try:
            return fx_graph(net, t)
        except Exception as exc:  # noqa: BLE001 -- any tracing failure means: use the module tree
            notes.append(f"torch.fx could not trace the model ({type(exc).__name__}); module tree with forward hooks")
        return hook_graph(net, t, notes=notes)


def fx_graph(net, t) -> Graph:
    """Graph by ``torch.fx`` symbolic tracing and shape propagation."""
    import torch
    from torch import fx
    from torch.fx.passes.shape_prop import ShapeProp

    gm = net if isinstance(net, fx.GraphModule) else fx.symbolic_trace(net)
    ShapeProp(gm).propagate(t)
    modules = dict(gm.named_modules())
    hookable = net is not gm  # traced here: call_module targets are paths of modules in ``net`` (hooks fire)
    nodes, edges, counted, attrs = [], [], set(), {}
    for node in gm.graph.nodes:
        if node.op == "call_module" and node.target.startswith("_guards"):  # torch.export's input guards
            continue
        meta = node.meta.get("tensor_meta")
        shape = list(meta.shape) if meta is not None and hasattr(meta, "shape") else None
        layer, params, weight = None, 0, None
        if node.op == "placeholder":
            op = "input"
        elif node.op == "output":
            op = "output"
            arg = node.args[0]
            src = arg[0] if isinstance(arg, (tuple, list)) and arg else arg
            if isinstance(src, fx.Node):
                shape = _fx_shape(src)
        elif node.op == "call_module":
            module = modules[node.target]
            op = type(module).__name__
            layer = node.target if hookable else None
            if node.target not in counted:
                counted.add(node.target)
                params = sum(p.numel() for p in module.parameters())
            w = getattr(module, "weight", None)
            weight = list(w.shape) if isinstance(w, torch.Tensor) else None
        elif node.op == "get_attr":  # a parameter read by the nodes using it: counted there, not drawn
            value = _fx_attr(gm, node.target)
            attrs[node.name] = value.numel() if isinstance(value, torch.Tensor) and node.target not in counted else 0
            counted.add(node.target)
            continue
        else:
            target = node.target
            schema = getattr(target, "_schema", None)  # aten operators of exported programs
            op = schema.name.split("::")[-1] if schema is not None else (getattr(target, "__name__", None) or str(target))
            layer = None if hookable else node.name  # exported programs: any node, by name, through fx.Interpreter
            if op in ("conv2d", "conv1d", "linear", "convolution", "addmm") and len(node.args) > 1:
                w = node.args[2] if op == "addmm" else node.args[1]
                if isinstance(w, fx.Node):
                    weight = _fx_shape(w)
                    if op == "addmm" and weight is not None:
                        weight = weight[::-1]
        stack = node.meta.get("nn_module_stack") or {}
        scope = next(reversed(stack.values()))[0] if stack and node.op != "call_module" else None
        params += sum(attrs.pop(src.name, 0) for src in node.all_input_nodes)
        nodes.append(GraphNode(node.name, op, layer, shape, int(params), _macs(op, weight, shape),
                               scope if isinstance(scope, str) and scope else None))
        for src in node.all_input_nodes:
            if src.op != "get_attr":
                edges.append((src.name, node.name))
    return Graph(nodes, edges, "torch.fx", list(t.shape))


def _fx_shape(node):
    meta = node.meta.get("tensor_meta")
    return list(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def _fx_attr(gm, target: str):
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def hook_graph(net, t, notes=()) -> Graph:
    """Graph from forward hooks on every leaf module (and scripted leaves of an eager view).

    Edges follow tensors: a layer's input that is another layer's output (the
    same tensor object) gives an edge; an input produced by a function call
    between layers links to the layer called just before.
    """
    import torch

    from studio.explainers.cam import layer_kind, layers

    found = layers(net) if any(type(m).__name__ == "ScriptedLayer" for m in net.modules()) else dict(net.named_modules())
    leaves = {name: m for name, m in found.items() if name and (type(m).__name__ == "ScriptedLayer" or not list(m.children()))}
    nodes, edges, producer, calls = [], [], {}, []
    counted = set()

    def hook(name, module):
        def fn(mod, inputs, output):
            node_name = name if name not in calls else f"{name}#{calls.count(name)}"
            srcs = [producer[id(i)] for i in inputs if isinstance(i, torch.Tensor) and id(i) in producer]
            if not srcs:
                srcs = [nodes[-1].name] if nodes else ["input"]
            calls.append(name)
            params = 0
            if name not in counted:
                counted.add(name)
                params = sum(p.numel() for p in mod.parameters())
            w = getattr(getattr(mod, "inner", mod), "weight", None)
            shape = _shape(output)
            op = layer_kind(mod)
            nodes.append(GraphNode(node_name, op, name, shape, int(params),
                                   _macs(op, list(w.shape) if isinstance(w, torch.Tensor) else None, shape)))
            edges.extend((s, node_name) for s in srcs)
            if isinstance(output, torch.Tensor):
                producer[id(output)] = node_name
            keep.append(output)  # ids stay unique while the outputs live
        return fn

    keep = []
    handles = [m.register_forward_hook(hook(n, m)) for n, m in leaves.items()]
    try:
        out = net(t)
    finally:
        for h in handles:
            h.remove()
    nodes.insert(0, GraphNode("input", "input", None, list(t.shape)))
    last = producer.get(id(out), nodes[-1].name)
    nodes.append(GraphNode("output", "output", None, _shape(out)))
    edges.append((last, "output"))
    return Graph(nodes, edges, "module hooks", list(t.shape), list(notes))


# ---- TorchScript graphs that are not a chain -------------------------------------------------------------
_SKIP_KINDS = ("prim::", "aten::size", "aten::Int", "aten::dim", "aten::len", "aten::__", "aten::format",
               "aten::warn", "aten::eq", "aten::ne", "aten::item")


def script_ops(script_module):
    """The inlined copy of a scripted forward graph and its tensor-producing ops.

    Returns
    -------
    graph : torch.Graph
        A copy; the module is not changed.
    ops : list of (name, op, layer, weight value or None, output value, input values)
        ``layer`` is the module path of the weight the op reads
        (``layer4.1.conv2``), else None; ``name`` is unique.
    """
    import torch

    from studio.explainers.cam import _attr_path

    graph = script_module.forward.graph.copy()
    torch._C._jit_pass_inline(graph)
    ops, used = [], {}
    for node in graph.nodes():
        kind = node.kind()
        if kind.startswith(_SKIP_KINDS) or node.outputsSize() != 1:
            continue
        out = node.output()
        if not isinstance(out.type(), torch._C.TensorType):
            continue
        layer, weight = None, None
        for value in list(node.inputs())[1:3]:
            path = _attr_path(value)
            if path and path[-1] == "weight":
                layer, weight = ".".join(path[:-1]), value
                break
        op = kind.split("::")[-1]
        base = layer or op
        used[base] = used.get(base, 0) + 1
        name = base if used[base] == 1 else f"{base}#{used[base] - 1}"
        ops.append((name, op, layer, weight, out, list(node.inputs())))
    return graph, ops


def tap_script(script_module, graph, values):
    """A function running ``graph`` (a copy of the module's forward) that returns (output, *values).

    Each tapped value is its op's true output: later uses read a clone
    (:func:`studio.explainers.cam.keep_true_output`), so an in-place op after
    it (``aten::relu_`` from ``F.relu(x, inplace=True)``) cannot overwrite it.
    """
    import torch

    from studio.explainers.cam import keep_true_output

    for value in dict.fromkeys(values):
        keep_true_output(graph, value)
    out = list(graph.outputs())[0]
    tup = graph.create("prim::TupleConstruct", [out, *values], 1)
    tup.insertBefore(graph.return_node())
    tup.output().setType(torch._C.TupleType([out.type(), *[v.type() for v in values]]))
    graph.eraseOutput(0)
    graph.registerOutput(tup.output())
    fn = torch._C._create_function_from_graph("forward_with_taps", graph)
    return lambda x: fn(script_module._c, x)


def script_graph(net, t) -> Graph:
    """Graph of a scripted module that is not a chain: its inlined TorchScript ops, shapes from one tapped run."""
    import torch

    try:
        graph, ops = script_ops(net)
        results = tap_script(net, graph, [o[4] for o in ops])(t)
    except Exception as exc:  # noqa: BLE001 -- graph passes on a crafted module may fail in many ways
        raise StudioError(f"the TorchScript graph of the model could not be read ({type(exc).__name__}); "
                          "save it as a state dict with a card naming its architecture") from None
    outputs = results[1:]
    producer = {o[4].unique(): o[0] for o in ops}
    params = dict(net.named_parameters())
    nodes, edges, counted = [GraphNode("input", "input", None, list(t.shape))], [], set()
    graph_input = list(graph.inputs())[1].unique()
    for (name, op, layer, weight, out, inputs), value in zip(ops, outputs):
        shape = list(value.shape) if isinstance(value, torch.Tensor) else None
        n_params = 0
        if layer and layer not in counted:
            counted.add(layer)
            n_params = sum(p.numel() for k, p in params.items() if k.rsplit(".", 1)[0] == layer)
        w = params.get(f"{layer}.weight") if layer else None
        kind = "Linear" if op in ("linear", "addmm") else op
        nodes.append(GraphNode(name, op, layer, shape, int(n_params),
                               _macs(kind, list(w.shape) if w is not None else None, shape)))
        for value_in in inputs:
            src = producer.get(value_in.unique())
            if src is not None and src != name:
                edges.append((src, name))
            elif value_in.unique() == graph_input:
                edges.append(("input", name))
    final = _shape(results[0])
    nodes.append(GraphNode("output", "output", None, final))
    if ops:
        edges.append((ops[-1][0], "output"))
    return Graph(nodes, edges, "torchscript", list(t.shape),
                 ["TorchScript graph (inlined); layers are the ops that read a module's weight"])


# ---- ONNX ----------------------------------------------------------------------------------------------------
def onnx_graph(model) -> Graph:
    """Graph of an ONNX model from onnx's own graph, with shapes from onnx shape inference (batch size 1)."""
    import onnx
    from onnx import numpy_helper, shape_inference

    blob = getattr(model, "onnx_bytes", None)
    if blob is None:
        raise StudioError("this ONNX model was loaded without its bytes; load it again with studio.load_model")
    try:
        proto = onnx.load_model_from_string(blob)
        try:
            proto = shape_inference.infer_shapes(proto)
        except Exception:  # noqa: BLE001 -- shapes are optional
            pass
    except Exception as exc:  # noqa: BLE001
        raise StudioError(f"onnx could not read the model's graph ({type(exc).__name__}); the file may be damaged") from None
    g = proto.graph
    inits = {i.name: list(numpy_helper.to_array(i).shape) if not i.external_data else list(i.dims) for i in g.initializer}
    shapes = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else 1 for d in dims]
    producer = {}
    inputs = [i for i in g.input if i.name not in inits]
    nodes, edges = [], []
    for i in inputs:
        nodes.append(GraphNode(i.name, "input", None, shapes.get(i.name)))
        producer[i.name] = i.name
    counted = set()
    for k, n in enumerate(g.node):
        name = n.name or f"{n.op_type}_{k}"
        out = shapes.get(n.output[0]) if n.output else None
        params, weight = 0, None
        for j, inp in enumerate(n.input):
            if inp in inits:
                if inp not in counted:
                    counted.add(inp)
                    params += int(np.prod(inits[inp])) if inits[inp] else 1
                if j == 1:
                    weight = inits[inp]
            elif inp in producer:
                edges.append((producer[inp], name))
        if n.op_type == "Gemm" and weight is not None:
            trans_b = next((a.i for a in n.attribute if a.name == "transB"), 0)
            weight = weight[::-1] if trans_b else weight
        nodes.append(GraphNode(name, n.op_type, name if n.output else None, out, params, _macs(n.op_type, weight, out)))
        for o in n.output:
            producer[o] = name
    for o in g.output:
        nodes.append(GraphNode(f"output:{o.name}", "output", None, shapes.get(o.name)))
        if o.name in producer:
            edges.append((producer[o.name], f"output:{o.name}"))
    return Graph(nodes, edges, "onnx", shapes.get(inputs[0].name) if inputs else None,
                 ["ONNX graph (onnx shape inference, batch size 1); a node's activations are its first output, "
                  "added as an extra graph output and run by onnxruntime"])
