"""Grad-CAM and guided Grad-CAM, for eager and TorchScript models.

Layer methods need a layer's activation and the gradient at it. Eager
modules give both through forward hooks. PyTorch refuses Python hooks on
TorchScript modules, so a scripted network is first turned into an *eager
view* (:func:`layer_view`): when its scripted ``forward`` is a plain chain
of submodule calls (what ``torch.jit.script(nn.Sequential(...))`` gives,
checked on the TorchScript graph itself), the view is an ``nn.Sequential``
that calls the same scripted submodules in the same order, each inside a
small eager wrapper that can be hooked. Same weights, same outputs.

Any other scripted module (residual connections, functional calls) is
reached through its graph (:class:`GraphTap`): a copy of the TorchScript
forward graph is inlined, the chosen convolution is found by the weight it
reads (``layer4.1.conv2.weight`` names layer ``layer4.1.conv2``), and the
graph is rewritten to return that convolution's output next to the model's
output. This uses torch's graph API (``torch._C``), the only way into a
scripted graph; if it fails, ``is_compatible`` says why.

Either way the layer's *true* output is read: an in-place op after the
layer (``nn.ReLU(inplace=True)``, as in torchvision's SqueezeNet, or
``out += identity``) would otherwise overwrite it before Grad-CAM reads it.
The hook keeps the output and hands the rest of the network a clone; the
rewritten graph clones the convolution's value for its later uses. Guided
backpropagation needs ReLU modules to guide, so guided Grad-CAM runs on
eager models and scripted chains only.
"""

from __future__ import annotations

from studio.errors import StudioError
from studio.explainers.base import Cost
from studio.explainers.gradients import GradientExplainer, forward_for, rows_per_batch
from studio.explainers.params import Param, ParamSpec

_LAYER = Param("layer", "str", "", "Layer to explain, by module name (e.g. '6' or 'layer4.1.conv2'); empty: the last Conv2d.")


class NotSplittable(StudioError):
    """A scripted module whose layers cannot be reached."""


def _is_script(module) -> bool:
    import torch

    return isinstance(module, torch.jit.ScriptModule)


def chain_order(script_module) -> list[str]:
    """Child names in call order when a scripted forward is a plain chain.

    The TorchScript graph must consist only of ``prim::GetAttr`` of direct
    children and ``prim::CallMethod[forward]`` nodes, each taking the
    previous call's output, the first taking the graph input and the last
    giving the graph output.

    Raises
    ------
    NotSplittable
        With the reason, when the graph is anything else.
    """
    graph = script_module.graph
    inputs = list(graph.inputs())
    if len(inputs) != 2:
        raise NotSplittable(f"its scripted forward takes {len(inputs) - 1} inputs, not one tensor")
    self_value, current = inputs
    attrs, order = {}, []
    for node in graph.nodes():
        kind = node.kind()
        ins = list(node.inputs())
        if kind == "prim::GetAttr" and ins[0] is self_value:
            attrs[node.output()] = node.s("name")
        elif kind == "prim::CallMethod" and node.s("name") == "forward" and len(ins) == 2 and ins[0] in attrs:
            if ins[1] is not current:
                raise NotSplittable("its scripted forward is not a chain: a submodule does not take the previous one's output")
            order.append(attrs[ins[0]])
            current = node.output()
        elif kind == "prim::Constant":
            continue  # a constant only matters where a call uses it, which the checks above refuse
        else:
            raise NotSplittable(
                f"its scripted forward holds a {kind} node between submodule calls, so it is not a plain chain of "
                "layers; save it as a state dict with a card naming its architecture, or script an nn.Sequential"
            )
    outs = list(graph.outputs())
    if len(outs) != 1 or outs[0] is not current or len(set(order)) != len(order):
        raise NotSplittable("its scripted forward does not return the last submodule's output, each submodule once")
    return order


def layer_view(net):
    """An eager module computing ``net`` whose every layer can be hooked.

    Eager modules are returned as they are. A scripted chain becomes an
    ``nn.Sequential`` with the same child names (so ``"6"`` or
    ``"features.3"`` name the same layers), sharing the weights.
    """
    from collections import OrderedDict

    from torch import nn

    if not _is_script(net):
        return net
    children = dict(net.named_children())
    if not children:
        return _Call.wrap(net)
    order = chain_order(net)
    parts = OrderedDict()
    for name in order:
        child = children[name]
        try:
            parts[name] = layer_view(child)
        except NotSplittable:
            parts[name] = _Call.wrap(child)  # reachable as a whole, not inside
    return nn.Sequential(parts)


class _Call:
    """Builds the eager wrapper of a scripted leaf (class made lazily: torch import)."""

    _cls = None

    @classmethod
    def wrap(cls, module):
        if cls._cls is None:
            from torch import nn

            class ScriptedLayer(nn.Module):
                """Eager wrapper around a scripted layer, so hooks can be registered."""

                def __init__(self, inner):
                    super().__init__()
                    self.inner = inner
                    self.kind = getattr(inner, "original_name", type(inner).__name__)

                def forward(self, x):
                    return self.inner(x)

            cls._cls = ScriptedLayer
        return cls._cls(module)


def layer_kind(module) -> str:
    """The layer's class name, seen through the scripted wrapper."""
    return getattr(module, "kind", None) if type(module).__name__ == "ScriptedLayer" else type(module).__name__


def layers(view) -> dict:
    """Name -> module of every hookable layer, in registration order (wrappers' insides left out)."""
    return {name: m for name, m in view.named_modules() if name and "inner" not in name.split(".")}


def find_layer(view, name: str = ""):
    """The named layer, or the last Conv2d. Returns (name, module)."""
    found = layers(view)
    if name:
        if name not in found:
            raise StudioError(f"layer {name!r} not found; layers: {', '.join(list(found)[:40])}")
        return name, found[name]
    convs = [n for n, m in found.items() if layer_kind(m) == "Conv2d"]
    if not convs:
        raise StudioError("the model has no Conv2d layer; name a layer with the 'layer' parameter")
    return convs[-1], found[convs[-1]]


# ---- TorchScript graphs that are not a chain: tap the layer in the graph itself ----------
CONV_OPS = ("aten::conv2d", "aten::_convolution")


def _attr_path(value) -> list[str]:
    """The ``prim::GetAttr`` names leading from ``self`` to ``value`` (e.g. ["layer4", "1", "conv2", "weight"])."""
    path = []
    node = value.node()
    while node.kind() == "prim::GetAttr":
        path.append(node.s("name"))
        node = node.input().node()
    return path[::-1]


def graph_convs(script_module):
    """The inlined copy of the forward graph and its convolutions.

    Returns
    -------
    graph : torch.Graph
        A copy; the module is not changed.
    convs : list of (layer name, output value)
        In execution order.
    """
    import torch

    graph = script_module.forward.graph.copy()
    torch._C._jit_pass_inline(graph)  # submodule calls become aten ops that name their weights
    found = []
    for node in graph.nodes():
        if node.kind() in CONV_OPS:
            path = _attr_path(list(node.inputs())[1])
            if path and path[-1] == "weight":
                found.append((".".join(path[:-1]), node.output()))
    return graph, found


def keep_true_output(graph, value) -> None:
    """Make ``value`` immune to later in-place ops in ``graph`` (changed in place).

    A convolution followed by an in-place activation (``aten::relu_``, as
    ``nn.ReLU(inplace=True)`` scripts to) has its output overwritten, so a
    graph that returns the convolution's value would return the activation.
    An ``aten::clone`` of the value is inserted right after it and every later
    use reads the clone; ``value`` itself is read only by the clone (and by
    whatever the caller adds), so it stays the layer's true output, and
    gradients at it are the gradients through the rest of the network.
    """
    import torch

    none = graph.create("prim::Constant", 1)
    none.output().setType(torch._C.NoneType.get())
    clone = graph.create("aten::clone", [value, none.output()], 1)
    clone.output().setType(value.type())
    none.insertAfter(value.node())
    clone.insertAfter(none)
    value.replaceAllUsesAfterNodeWith(clone, clone.output())


class GraphTap:
    """Builds an eager module that runs a scripted graph rewritten to also
    return one convolution's output (class made lazily: torch import)."""

    _cls = None

    @classmethod
    def build(cls, script_module, layer: str = ""):
        import torch
        from torch import nn

        try:
            graph, convs = graph_convs(script_module)
        except Exception as exc:  # noqa: BLE001 - any failure of the graph passes means: cannot split
            raise NotSplittable(f"its TorchScript graph could not be inlined ({type(exc).__name__})") from None
        if not convs:
            raise NotSplittable("its TorchScript graph has no convolution")
        names = [n for n, _ in convs]
        if layer and layer not in names:
            raise StudioError(f"layer {layer!r} not found among the scripted model's convolutions: {', '.join(names[:40])}")
        name, value = convs[names.index(layer)] if layer else convs[-1]
        try:
            keep_true_output(graph, value)
            out = list(graph.outputs())[0]
            tup = graph.create("prim::TupleConstruct", [out, value], 1)
            tup.insertBefore(graph.return_node())
            tup.output().setType(torch._C.TupleType([out.type(), value.type()]))
            graph.eraseOutput(0)
            graph.registerOutput(tup.output())
            fn = torch._C._create_function_from_graph("forward_with_layer", graph)
        except Exception as exc:  # noqa: BLE001
            raise NotSplittable(f"its TorchScript graph could not be rewritten to return layer {name!r} ({exc})") from None
        if cls._cls is None:

            class TappedGraph(nn.Module):
                """Runs the rewritten graph; keeps the layer's output of the last call."""

                def __init__(self, inner, fn, layer):
                    super().__init__()
                    self.inner = inner
                    self.fn = fn
                    self.layer = layer
                    self.activation = None

                def forward(self, x):
                    out, self.activation = self.fn(self.inner._c, x)
                    return out

            cls._cls = TappedGraph
        return cls._cls(script_module, fn, name)


def layer_tap(net, layer: str = ""):
    """An eager module computing ``net`` and a way to read one layer's output.

    Eager modules and scripted chains: a forward hook on the layer of the
    eager view. Other scripted modules: the scripted graph, inlined and
    rewritten to also return the chosen convolution's output. Both read the
    layer's true output, before any later in-place op (see the module
    docstring).

    Returns
    -------
    module : torch.nn.Module
    name : str
        The layer's name.
    read : callable() -> torch.Tensor or None
        The layer's output of the last forward call.
    close : callable()
        Removes the hook (call when done).
    """
    first_error = None
    if not _is_script(net) or _is_chain(net):
        try:
            view = layer_view(net)
            name, module = find_layer(view, layer)
            store = {}
            handle = module.register_forward_hook(_true_output_hook(store))
            return view, name, lambda: store.get("a"), handle.remove
        except StudioError as exc:
            if not _is_script(net):
                raise
            first_error = exc
    try:
        tap = GraphTap.build(net, layer)
    except NotSplittable as exc:
        raise first_error or exc from None
    return tap, tap.layer, lambda: tap.activation, lambda: None


def _true_output_hook(store: dict):
    """A forward hook that keeps the layer's true output in ``store["a"]``.

    The rest of the network gets a clone instead: an in-place op after the
    layer (``nn.ReLU(inplace=True)`` in torchvision's SqueezeNet, ResNet's
    ``out += identity``) then overwrites the clone, not the tensor kept here,
    so Grad-CAM reads the layer's own output and its gradient flows through
    the clone.
    """

    def hook(module, inputs, output):
        import torch

        if not isinstance(output, torch.Tensor):
            store["a"] = output
            return None
        store["a"] = output
        return output.clone()

    return hook


def _is_chain(net) -> bool:
    try:
        chain_order(net)
        return True
    except NotSplittable:
        return False


def cam_compatible(model, data, layer: str = "") -> tuple[bool, str]:
    """Whether Grad-CAM can reach a convolutional layer of this model, and why not."""
    if model.format == "torch_export":
        return False, "torch.export programs run as one flattened graph; layer hooks never fire (use TorchScript or a state dict)"
    try:
        _, _, _, close = layer_tap(model.native, layer)
        close()
    except StudioError as exc:
        return False, f"cannot reach the model's layers: {exc}"
    return True, ""


def grad_cam(model, x, targets, layer: str = "", net=None, relu: bool = True, with_output: bool = False):
    """Grad-CAM maps (Selvaraju et al. 2017) at input resolution.

    Parameters
    ----------
    model : TorchModel
    x : torch.Tensor of shape (n, C, H, W) on the model's device
    targets : list of int
    layer : str
        Module name; empty picks the last Conv2d.
    net : torch.nn.Module, optional
        A variant of the network (same card) to explain instead.
    with_output : bool
        Also return the explained output of the same forward pass.

    Returns
    -------
    cam : torch.Tensor of shape (n, 1, H, W)
        ReLU of the gradient-weighted sum of the layer's channels, upsampled
        bilinearly.
    output : torch.Tensor of shape (n,)
        ``f(x)[i, targets[i]]``, only with ``with_output``.
    """
    import torch
    import torch.nn.functional as F

    module, _, read, close = layer_tap(model.native if net is None else net, layer)
    try:
        x = x.detach().clone().requires_grad_(True)
        out = forward_for(model, module)(x)
        act = read()
    finally:
        close()
    if act is None:
        raise StudioError("the chosen layer was never called in the forward pass; pick another layer")
    if act.ndim != 4:
        raise StudioError(f"layer output has shape {tuple(act.shape)}; Grad-CAM needs a (n, channels, h, w) map")
    idx = torch.as_tensor(targets, device=out.device).reshape(-1, 1)
    explained = out.gather(1, idx)  # (n, 1)
    (grad,) = torch.autograd.grad(explained.sum(), act)
    weights = grad.mean(dim=(2, 3), keepdim=True)  # (n, K, 1, 1)
    cam = (weights * act).sum(dim=1, keepdim=True)  # (n, 1, h, w)
    if relu:
        cam = cam.clamp(min=0)
    cam = F.interpolate(cam, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False).detach()
    return (cam, explained[:, 0].detach()) if with_output else cam


def guided_backprop(model, x, targets, net=None):
    """Guided backpropagation (Springenberg et al. 2015) on the eager view.

    Every ReLU layer (eager ``nn.ReLU`` or scripted ReLU) passes back only
    positive gradients where its input was positive. ReLUs called as
    functions inside a module's forward are not guided.

    Returns
    -------
    torch.Tensor of the shape of ``x``
    """
    import torch

    view = layer_view(model.native if net is None else net)
    relus = [m for m in layers(view).values() if layer_kind(m) == "ReLU"]
    handles = [m.register_forward_hook(lambda mod, i, o: _guided_relu(i[0])) for m in relus]
    try:
        x = x.detach().clone().requires_grad_(True)
        out = forward_for(model, view)(x)
        idx = torch.as_tensor(targets, device=out.device).reshape(-1, 1)
        (grad,) = torch.autograd.grad(out.gather(1, idx).sum(), x)
    finally:
        for h in handles:
            h.remove()
    return grad.detach()


_GUIDED = None


def _guided_relu(t):
    global _GUIDED
    if _GUIDED is None:
        import torch

        class GuidedReLU(torch.autograd.Function):
            @staticmethod
            def forward(ctx, inp):
                ctx.save_for_backward(inp)
                return inp.clamp(min=0)

            @staticmethod
            def backward(ctx, grad):
                (inp,) = ctx.saved_tensors
                return grad.clamp(min=0) * (inp > 0).to(grad.dtype)

        _GUIDED = GuidedReLU
    return _GUIDED.apply(t)


class GradCam(GradientExplainer):
    """Grad-CAM: where the chosen convolutional layer sees evidence for the class.

    ``values``: (n_rows, 1, H, W) float32, non-negative; ``base_values``: f(x),
    from Grad-CAM's own forward pass.
    """

    name = "grad_cam"
    libraries = ("torch",)
    summary = "Class activation map of the last convolutional layer, upsampled to the image."
    params = ParamSpec((_LAYER,))

    def is_compatible(self, model, data):
        ok, reason = super().is_compatible(model, data)
        if not ok:
            return ok, reason
        return cam_compatible(model, data)

    def rows_per_call(self, model, x, params):
        return rows_per_batch(model, x)

    gives_base = True  # Grad-CAM's own forward pass gives f(x)

    def attribute(self, model, x, targets, params, data=None, net=None, ctx=None):
        return self.attribute_rows(model, x, x, targets, params, data, net)[0]

    def attribute_rows(self, model, x, ref, targets, params, data=None, net=None):
        cam, out = grad_cam(model, x, targets, params["layer"], net=net, with_output=True)
        return cam, {"base": out}


class GuidedGradCam(GradCam):
    """Guided backpropagation times Grad-CAM: (n_rows, C, H, W) float32."""

    name = "guided_grad_cam"
    summary = "Guided backpropagation masked by Grad-CAM: fine detail inside the class region."

    def is_compatible(self, model, data):
        ok, reason = super().is_compatible(model, data)
        if not ok:
            return ok, reason
        try:
            layer_view(model.native)
        except NotSplittable as exc:
            return False, (f"guided backpropagation needs the model's ReLU layers as modules, but {exc} "
                           "(grad_cam itself works on it)")
        return True, ""

    def attribute_rows(self, model, x, ref, targets, params, data=None, net=None):
        cam, out = grad_cam(model, x, targets, params["layer"], net=net, with_output=True)
        return guided_backprop(model, x, targets, net=net) * cam, {"base": out}

    def step_cost(self, model, data, params, m):
        """Grad-CAM's pass and the guided-backpropagation pass: two forward+backward passes of the rows."""
        return Cost(grad_calls=2, grad_rows=2 * m)
