"""Model-randomisation sanity check (Adebayo et al. 2018, "Sanity checks for
saliency maps").

A map that explains the model should change when the model's weights are
destroyed. The check computes a method's maps on the trained model, then on
a copy whose layers are re-initialised one after another from the top
(output) layer down, cumulatively, and compares each randomised map with
the original: Spearman rank correlation of |map| and SSIM of the
|map| scaled to [0, 1] (per image, averaged over the explained rows).

The copy is a ``copy.deepcopy`` of the network (TorchScript modules
included); its parameters are re-initialised in place, so the user's model
is never touched.
"""

from __future__ import annotations

import numpy as np

from studio.errors import StudioError
from studio.explainers import registry
from studio.explainers.base import Cost
from studio.explainers.gradients import GradientExplainer, rows_tensor, target_list, explained_output
from studio.explainers.params import Param, ParamSpec
from studio.explanation import Explanation

CHECKED = ("saliency", "input_x_gradient", "integrated_gradients", "smoothgrad", "grad_cam", "guided_grad_cam")


def parameter_layers(net) -> list[tuple[str, list]]:
    """Layers with parameters, in the order their parameters are registered.

    Returns
    -------
    list of (layer name, list of parameter tensors)
    """
    groups: dict[str, list] = {}
    for name, p in net.named_parameters():
        groups.setdefault(name.rpartition(".")[0] or "(root)", []).append(p)
    return list(groups.items())


def reinitialise(params, generator) -> None:
    """Re-initialise a layer's parameters in place, as torch initialises new layers.

    Tensors of 2 or more dimensions: Kaiming-uniform (``a=sqrt(5)``); 1-D
    tensors: uniform in +-1/sqrt(fan_in) of the layer's weight.
    """
    import math

    import torch

    with torch.no_grad():
        weight = next((p for p in params if p.ndim >= 2), None)
        fan_in = weight[0].numel() if weight is not None else 1
        for p in params:
            if p.ndim >= 2:
                torch.nn.init.kaiming_uniform_(p, a=math.sqrt(5), generator=generator)
            else:
                bound = 1.0 / math.sqrt(fan_in)
                p.uniform_(-bound, bound, generator=generator)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (ties get average ranks); 0 when one is constant."""
    from scipy.stats import spearmanr

    a, b = a.ravel(), b.ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two (C, H, W) maps as |map| summed over channels, each scaled to [0, 1]."""
    from skimage.metrics import structural_similarity

    def prep(m):
        m = np.abs(m).sum(axis=0)
        top = m.max()
        return m / top if top > 0 else m

    a, b = prep(a), prep(b)
    win = min(7, *a.shape) | 1
    return float(structural_similarity(a, b, data_range=1.0, win_size=win))


class ModelRandomisation(GradientExplainer):
    """Cascading model-randomisation test of a gradient or CAM method.

    ``values``: the method's maps on the trained model (n_rows, C, H, W);
    ``base_values``: f(x). ``checks``: ``spearman_after_<layer>`` and
    ``ssim_after_<layer>`` after each cumulative randomisation step (top
    layer first), ``spearman_full``/``ssim_full`` with every layer
    randomised, and ``does_not_depend_on_model`` = 1.0 when the fully
    randomised maps still correlate above ``threshold`` (the method fails
    the check), else 0.0.
    """

    name = "model_randomisation"
    libraries = ("torch", "captum", "scipy", "scikit-image")
    summary = "Sanity check: do a method's maps change when the model's weights are randomised?"
    params = ParamSpec(
        (
            Param("method", "str", "saliency", "The method to check.", choices=CHECKED),
            Param("max_layers", "int", 0, "Randomise at most this many layers from the top (0: all).", low=0),
            Param("threshold", "float", 0.5, "Spearman correlation above which maps 'do not depend on the model'.",
                  low=0.0, high=1.0),
            Param("n_steps", "int", 16, "Steps, when the method is integrated_gradients.", low=2, high=1024,
                  fit_low=8, fit_why="fewer steps leave a large completeness gap"),
            Param("seed", "int", 0, "Seed of the random weights (and of the method, when it is stochastic).", low=0),
        )
    )

    def is_compatible(self, model, data):
        ok, reason = super().is_compatible(model, data)
        if not ok:
            return ok, reason
        if not parameter_layers(model.native):
            return False, "the model has no parameters to randomise"
        return True, ""

    def _inner(self, params):
        inner = registry.get(params["method"], "image")
        given = {"seed": params["seed"], "n_steps": params["n_steps"], "max_gap": 0.0}
        inner_params = {k: v for k, v in inner.params.defaults().items()}
        inner_params.update({k: v for k, v in given.items() if k in inner_params})
        return inner, inner_params

    def cost(self, model, data, params, n_rows):
        """The checked method's attribution on all rows at once (its :meth:`step_cost`), on the trained model and
        after each of the randomised layers, and one forward pass for the base values. Own work: the layer
        re-initialisations and the Spearman / SSIM comparisons, per layer and row."""
        inner, inner_params = self._inner(params)
        n_layers = len(parameter_layers(model.native))
        if params.get("max_layers"):
            n_layers = min(n_layers, params["max_layers"])
        once = inner.step_cost(model, data, inner_params, n_rows)
        return once.times(n_layers + 1) + Cost(calls=1, rows=n_rows, own=n_layers * n_rows, own_unit="layers x rows")

    def probe_params(self, params, data, k):
        return dict(params, max_layers=k + 1), 1

    def explain(self, model, data, params, ctx):
        import copy

        import torch

        inner, inner_params = self._inner(params)
        ok, reason = inner.is_compatible(model, data)
        if not ok:
            raise StudioError(f"{params['method']} cannot run on this model: {reason}")
        x = rows_tensor(model, data, ctx.rows)
        targets = target_list(ctx, len(x))
        original = inner.attribute(model, x, targets, inner_params, data).detach()
        try:
            net = copy.deepcopy(model.native)
        except Exception as exc:  # noqa: BLE001 - any copy failure means the same to the user
            raise StudioError(f"cannot copy the network to randomise it ({type(exc).__name__}: {exc})") from None
        layers = list(reversed(parameter_layers(net)))  # top (output) layer first
        if params["max_layers"]:
            layers = layers[: params["max_layers"]]
        gen = torch.Generator(device=model.device).manual_seed(params["seed"])
        orig = original.cpu().numpy()
        checks = {}
        for k, (name, tensors) in enumerate(layers):
            ctx.progress(k / len(layers), f"randomising layer {name}")
            reinitialise(tensors, gen)
            randomised = inner.attribute(model, x, targets, inner_params, data, net=net).detach().cpu().numpy()
            checks[f"spearman_after_{name}"] = float(np.mean([spearman(np.abs(o), np.abs(r)) for o, r in zip(orig, randomised)]))
            checks[f"ssim_after_{name}"] = float(np.mean([ssim(o, r) for o, r in zip(orig, randomised)]))
        last = layers[-1][0]
        checks["spearman_full"] = checks[f"spearman_after_{last}"]
        checks["ssim_full"] = checks[f"ssim_after_{last}"]
        checks["does_not_depend_on_model"] = float(checks["spearman_full"] > params["threshold"])
        base = explained_output(model.torch_module("probabilities"), x, targets)
        ctx.progress(1.0, "done")
        return Explanation(
            method=self.name, kind="attribution", values=orig.astype(np.float32),
            base_values=base.cpu().numpy().astype(np.float64), output_names=model.output_names, checks=checks,
        )
