"""Gradient attributions (Captum) for differentiable torch models.

Every method explains ``model.torch_module("probabilities")`` (the
probability of the target class; the prediction for regression) on the
model's device. Inputs go to the device once; no tensor comes back to the
CPU until the result is final.

Image methods: ``saliency``, ``input_x_gradient``, ``integrated_gradients``,
``smoothgrad``. Table methods (torch models on numeric tables):
``saliency``, ``integrated_gradients``.

Each explainer's :meth:`attribute` takes an optional ``net`` (a variant of
the network, e.g. with randomised weights) so the sanity check
(:mod:`studio.explainers.sanity`) reruns exactly the same computation.
"""

from __future__ import annotations

import numpy as np

from studio.errors import StudioError
from studio.explainers.base import Cost, Explainer, batched
from studio.explainers.params import Param, ParamSpec
from studio.explanation import Explanation

IMAGE_BASELINES = ("black", "blurred", "noise")
TABLE_BASELINES = ("mean", "zeros")
_N_STEPS = Param("n_steps", "int", 32, "Points on the path from the baseline to the input.", low=2, high=1024,
                 fit_low=16, fit_why="fewer steps leave a large completeness gap")
_MAX_GAP = Param("max_gap", "float", 0.01, "Rows whose completeness gap (relative) exceeds this are recomputed with "
                 "twice the steps, up to max_steps; 0 turns refinement off.", low=0.0, high=1.0)
_MAX_STEPS = Param("max_steps", "int", 512, "Most steps a refined row may get.", low=2, high=8192)
_SEED = Param("seed", "int", 0, "Random seed (noise baselines and noisy samples).", low=0)


# ---- shared torch helpers ------------------------------------------------------------
def rows_tensor(model, data, rows):
    """The explained rows as a float32 tensor on the model's device.

    Returns
    -------
    torch.Tensor of shape (n_rows, C, H, W) or (n_rows, n_features)
    """
    import torch

    x = np.asarray(data.x[rows], dtype=np.float32)
    return torch.as_tensor(x, device=model.device)


def target_list(ctx, n: int) -> list[int]:
    """One output column per row: the context's classes, or 0 for regression."""
    return [int(t) for t in ctx.targets] if ctx.targets is not None else [0] * n


def explained_output(f, x, targets):
    """``f(x)[i, targets[i]]`` for every row, without gradients.

    Returns
    -------
    torch.Tensor of shape (n_rows,), on ``x``'s device
    """
    import torch

    with torch.no_grad():
        out = f(x)
    idx = torch.as_tensor(targets, device=out.device).reshape(-1, 1)
    return out.gather(1, idx)[:, 0]


def forward_for(model, net=None, output: str = "probabilities"):
    """The differentiable explained function: the model's own or around ``net``."""
    return model.torch_module(output) if net is None else model.torch_module_over(net, output)


def rows_per_batch(model, x) -> int:
    """Rows per batch so that a batch (with activations) fits the device memory."""
    from studio.device import batch_size_for

    return batch_size_for(int(np.prod(x.shape[1:])), model.device)


def generator(device: str, seed: int):
    """A torch random generator on ``device`` seeded with ``seed``."""
    import torch

    return torch.Generator(device=device).manual_seed(int(seed))


def image_baseline(x, kind: str, seed: int = 0, blur_sigma: float = 4.0):
    """Reference images for ``x``, on its device.

    Parameters
    ----------
    x : torch.Tensor of shape (n, C, H, W), values in [0, 1]
    kind : {"black", "blurred", "noise", "mean"}
        ``black``: zeros; ``blurred``: a Gaussian blur of each image
        (``blur_sigma`` pixels); ``noise``: uniform noise in [0, 1]
        (seeded); ``mean``: each image's per-channel mean.

    Returns
    -------
    torch.Tensor of the shape of ``x``
    """
    import torch

    if kind == "black":
        return torch.zeros_like(x)
    if kind == "noise":
        return torch.rand(x.shape, generator=generator(str(x.device), seed), device=x.device, dtype=x.dtype)
    if kind == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone()
    if kind == "blurred":
        from torchvision.transforms.functional import gaussian_blur

        k = int(2 * round(3 * blur_sigma) + 1)
        k = min(k, 2 * (min(x.shape[-2:]) // 2) - 1)  # odd, not larger than the image
        return gaussian_blur(x, kernel_size=[k, k], sigma=[blur_sigma, blur_sigma])
    raise StudioError(f"unknown baseline {kind!r}; choose one of {', '.join(IMAGE_BASELINES)}")


def table_baseline(x, kind: str, data):
    """Reference rows: zeros or the dataset's mean row (each column's mean over its observed values), shape of ``x``."""
    import torch

    if kind == "zeros":
        return torch.zeros_like(x)
    mean = np.nanmean(np.asarray(data.numeric_x(), dtype=np.float64), axis=0).astype(np.float32)  # observed values
    return torch.as_tensor(mean, device=x.device).reshape(1, -1).expand_as(x).clone()


def numeric_table_ok(data) -> tuple[bool, str]:
    """Gradients need numeric inputs; categorical columns cannot be differentiated."""
    if data is not None and data.kind == "tabular" and data.categorical:
        return False, f"needs numeric features; the data has categorical columns ({', '.join(data.categorical[:4])})"
    return True, ""


# ---- the explainers ---------------------------------------------------------------------
class GradientExplainer(Explainer):
    """Shared frame: rows to the device, attribute in batches, one result.

    Subclasses implement :meth:`attribute` and may override
    :meth:`reference` (the input whose output is ``base_values``) and
    :meth:`attribute_rows` (to hand back outputs their own forward passes
    computed, so that no extra pass is needed for base values and checks).
    """

    data_kind = "image"
    needs_gradients = True
    libraries = ("torch", "captum")

    def is_compatible(self, model, data):
        ok, reason = super().is_compatible(model, data)
        if not ok:
            return ok, reason
        return numeric_table_ok(data)

    def attribute(self, model, x, targets, params, data=None, net=None, ctx=None):
        """Attributions for ``x``.

        Parameters
        ----------
        model : TorchModel
        x : torch.Tensor of shape (n, ...) on the model's device
        targets : list of int, length n
        params : dict
        data : Dataset, optional
            For baselines built from the data (table means).
        net : torch.nn.Module, optional
            Explain this network (same card) instead of the model's.

        Returns
        -------
        torch.Tensor of the shape of ``x``
        """
        raise NotImplementedError

    def reference(self, model, x, params, data):
        """The input whose output goes into ``base_values`` (default: ``x`` itself)."""
        return x

    def attribute_rows(self, model, x, ref, targets, params, data=None, net=None):
        """Attributions for a batch of rows, and the outputs computed on the way.

        Parameters
        ----------
        x, ref : torch.Tensor of shape (n, ...)
            The rows and their reference inputs (:meth:`reference`, built
            once for all explained rows).

        Returns
        -------
        attr : torch.Tensor of the shape of ``x``
        outputs : dict of str -> torch.Tensor of shape (n,)
            ``"base"``: the explained output at ``ref``, when the method's
            own forward pass gave it (otherwise :meth:`explain` runs one);
            methods may add what their :meth:`measure` reads.
        """
        return self.attribute(model, x, targets, params, data, net=net), {}

    def explain(self, model, data, params, ctx):
        import torch

        x = rows_tensor(model, data, ctx.rows)
        targets = target_list(ctx, len(x))
        ref = self.reference(model, x, params, data)
        step = max(1, self.rows_per_call(model, x, params))
        parts, outs = [], []
        for start in range(0, len(x), step):
            stop = min(len(x), start + step)
            ctx.progress(start / len(x), f"{self.name}: rows {start}..{stop}")
            attr, out = self.attribute_rows(model, x[start:stop], ref[start:stop], targets[start:stop], params, data)
            parts.append(attr.detach())
            outs.append(out)
        attr = torch.cat(parts)
        outputs = {k: torch.cat([o[k] for o in outs]).detach() for k in outs[0]}
        if "base" not in outputs:
            outputs["base"] = explained_output(model.torch_module("probabilities"), ref, targets)
        checks = self.measure(attr, x, ref, targets, outputs)
        ctx.progress(1.0, "done")
        return self.package(model, data, attr, outputs["base"], checks, ctx)

    def rows_per_call(self, model, x, params) -> int:
        return rows_per_batch(model, x)

    gives_base = False
    """Whether :meth:`attribute_rows` hands back the base output (else :meth:`explain` runs one more pass)."""

    def step_cost(self, model, data, params, m: int) -> Cost:
        """Cost of one :meth:`attribute_rows` call on ``m`` rows: one forward+backward pass (the base)."""
        return Cost(grad_calls=1, grad_rows=m)

    def cost(self, model, data, params, n_rows):
        """The rows in steps of :meth:`rows_per_call`, each :meth:`step_cost`, then one forward pass over the
        references for the base values unless the method's own passes gave them. Own work: per row (packing,
        checks), per-model constants (pixels) in the calibration."""
        step = max(1, self.rows_per_call(model, data.x[:1], params))
        total = Cost(own=n_rows, own_unit="rows")
        for start in range(0, n_rows, step):
            total = total + self.step_cost(model, data, params, min(step, n_rows - start))
        if not self.gives_base and n_rows:
            total = total + Cost(calls=1, rows=n_rows)
        return total

    def probe_params(self, params, data, k):
        return dict(params), k + 1

    def measure(self, attr, x, ref, targets, outputs) -> dict:
        """Checks from the attributions and the outputs :meth:`attribute_rows` gave (float values)."""
        return {}

    def package(self, model, data, attr, base, checks, ctx) -> Explanation:
        values = attr.cpu().numpy()
        base_values = base.detach().cpu().numpy().astype(np.float64)
        checks = {k: float(v) for k, v in checks.items()}
        if data.kind == "tabular":
            return Explanation(
                method=self.name, kind="attribution", values=values.astype(np.float64), base_values=base_values,
                data=np.asarray(data.x[ctx.rows], dtype=np.float64), feature_names=list(data.feature_names),
                output_names=model.output_names, checks=checks,
            )
        return Explanation(
            method=self.name, kind="attribution", values=values.astype(np.float32), base_values=base_values,
            output_names=model.output_names, checks=checks,
        )


class Saliency(GradientExplainer):
    """Gradient of the explained output w.r.t. the input (Simonyan et al. 2014).

    ``values``: (n_rows, C, H, W) or (n_rows, n_features); ``base_values``:
    the explained output f(x) itself (the method has no reference input).
    """

    name = "saliency"
    summary = "Gradient of the class probability with respect to each input value."
    params = ParamSpec((Param("absolute", "bool", True, "Report |gradient| (the classic saliency map) instead of the signed gradient."),))

    def attribute(self, model, x, targets, params, data=None, net=None, ctx=None):
        from captum.attr import Saliency as CaptumSaliency

        x = x.detach().requires_grad_(True)  # captum would warn and do the same
        return CaptumSaliency(forward_for(model, net)).attribute(x, target=targets, abs=params["absolute"])



class TabularSaliency(Saliency):
    data_kind = "tabular"


class InputXGradient(GradientExplainer):
    """Input times gradient (Shrikumar et al. 2016); ``base_values`` = f(x)."""

    name = "input_x_gradient"
    summary = "Each input value times the gradient of the class probability."
    params = ParamSpec(())

    def attribute(self, model, x, targets, params, data=None, net=None, ctx=None):
        from captum.attr import InputXGradient as CaptumIxG

        x = x.detach().requires_grad_(True)
        return CaptumIxG(forward_for(model, net)).attribute(x, target=targets)


class IntegratedGradients(GradientExplainer):
    """Integrated gradients (Sundararajan et al. 2017), Gauss-Legendre rule.

    The ``n_steps`` points of every row are evaluated in batches (Captum's
    ``internal_batch_size``), never one step at a time. On a ReLU network the
    path integrand of a probability can be steep, so a fixed step count can
    leave a gap of several percent on some images (measured on the sample
    CNN: up to 11% at 64 steps, black baseline); rows above ``max_gap`` are
    therefore refined (steps doubled) up to ``max_steps``, and
    ``checks["n_steps_max"]``/``["rows_refined"]`` say so. ``base_values`` is
    f(baseline); ``checks["completeness_gap"]`` is
    max over rows |sum(attr) - (f(x) - f(baseline))| / |f(x) - f(baseline)|
    (rows with |f(x) - f(baseline)| < 1e-6 are left out of that maximum;
    ``completeness_gap_abs`` is the absolute gap over all rows).
    """

    name = "integrated_gradients"
    summary = "Path integral of gradients from a baseline image to the input (completeness checked)."
    params = ParamSpec(
        (
            _N_STEPS,
            Param("baseline", "str", "black", "Reference image: black, a blurred copy of the input, or uniform noise.",
                  choices=IMAGE_BASELINES),
            Param("blur_sigma", "float", 4.0, "Blur of the 'blurred' baseline, in pixels.", low=0.1, high=100),
            _MAX_GAP,
            _MAX_STEPS,
            _SEED,
        )
    )

    def rows_per_call(self, model, x, params):
        # each row costs n_steps evaluations in one internal batch
        return max(1, rows_per_batch(model, x) // params["n_steps"]) if params["n_steps"] else 1

    gives_base = True

    def step_cost(self, model, data, params, m):
        """f(x) and f(baseline) in one forward pass (2 m rows), then ``n_steps`` points per row in internal
        batches; rows over ``max_gap`` are refined with doubled steps (adaptive: not counted, ``bound``)."""
        steps = params.get("n_steps", 32)
        internal = max(1, min(m * steps, rows_per_batch(model, data.x[:1])))
        return Cost(calls=1, rows=2 * m, grad_calls=batched(m * steps, internal), grad_rows=m * steps,
                    bound=bool(params.get("max_gap", 0.01)))

    def probe_params(self, params, data, k):
        return dict(params, n_steps=min(params.get("n_steps", 32), 4 * (k + 1)), max_gap=0.0), 1

    def reference(self, model, x, params, data):
        return image_baseline(x, params["baseline"], params["seed"], params["blur_sigma"])

    def attribute(self, model, x, targets, params, data=None, net=None, ctx=None):
        return self.attribute_rows(model, x, self.reference(model, x, params, data), targets, params, data, net)[0]

    def attribute_rows(self, model, x, ref, targets, params, data=None, net=None):
        """IG with ``n_steps``; rows whose completeness gap exceeds ``max_gap``
        are recomputed with twice the steps until they pass or reach ``max_steps``.

        f(x) and f(ref) come from one forward pass over both; they serve the
        refinement, ``base_values`` and the completeness check. ``outputs``
        holds ``base`` (f(ref)), ``fx``, ``steps`` (steps used per row) and
        ``refined`` (bool per row).
        """
        import torch

        f = forward_for(model, net)
        ends = explained_output(f, torch.cat([x, ref]), list(targets) * 2)
        fx, fref = ends[: len(x)], ends[len(x) :]
        delta = fx - fref
        steps = params["n_steps"]
        attr = _ig(f, model, x, ref, targets, steps)
        used = torch.full((len(x),), steps, dtype=torch.long, device=x.device)
        todo = torch.arange(len(x), device=x.device)
        while params["max_gap"] and steps * 2 <= params["max_steps"]:
            todo = todo[_gaps(attr[todo], delta[todo]) > params["max_gap"]]
            if len(todo) == 0:
                break
            steps *= 2
            attr[todo] = _ig(f, model, x[todo], ref[todo], [targets[i] for i in todo.tolist()], steps)
            used[todo] = steps
        return attr, {"base": fref, "fx": fx, "steps": used, "refined": used > params["n_steps"]}

    def measure(self, attr, x, ref, targets, outputs):
        out = completeness(attr, x, ref, targets, fx=outputs["fx"], fref=outputs["base"])
        out["n_steps_max"] = int(outputs["steps"].max())
        out["rows_refined"] = int(outputs["refined"].sum())
        return out



def _ig(f, model, x, baseline, targets, steps):
    """Captum IG (Gauss-Legendre), the rows x steps points in internal batches."""
    from captum.attr import IntegratedGradients as CaptumIG

    internal = max(1, min(len(x) * steps, rows_per_batch(model, x)))
    return CaptumIG(f).attribute(
        x, baselines=baseline, target=targets, n_steps=steps, method="gausslegendre", internal_batch_size=internal,
    )


def _row_gaps(attr, x, ref, targets, f):
    """|sum(attr) - (f(x) - f(ref))| / max(|f(x) - f(ref)|, 1e-6) per row, shape (n,)."""
    return _gaps(attr, explained_output(f, x, targets) - explained_output(f, ref, targets))


def _gaps(attr, delta):
    """|sum(attr) - delta| / max(|delta|, 1e-6) per row, shape (n,); ``delta`` = f(x) - f(ref)."""
    return (attr.reshape(len(attr), -1).sum(dim=1) - delta).abs() / delta.abs().clamp(min=1e-6)


class TabularIntegratedGradients(IntegratedGradients):
    """Integrated gradients for torch models on numeric tables."""

    data_kind = "tabular"
    summary = "Path integral of gradients from a reference row (data mean or zeros) to the row."
    params = ParamSpec(
        (
            _N_STEPS,
            Param("baseline", "str", "mean", "Reference row: the dataset's mean row, or zeros (raw units).",
                  choices=TABLE_BASELINES),
            _MAX_GAP,
            _MAX_STEPS,
        )
    )

    def reference(self, model, x, params, data):
        return table_baseline(x, params["baseline"], data)

    def explain(self, model, data, params, ctx):
        from studio.explainers.tabular_utils import missing_column

        gone = missing_column(data.x[ctx.rows], data.feature_names)
        if gone is not None:  # the straight path from the reference row to a missing value does not exist
            raise StudioError(f"integrated gradients cannot explain rows with missing values (column {gone!r} is "
                              "missing in a row asked); choose rows without missing values, or use shap, lime or "
                              "anchors, which read them as the model does")
        return super().explain(model, data, params, ctx)


def completeness(attr, x, ref, targets, f=None, fx=None, fref=None) -> dict:
    """IG's completeness gap on the explained output (see DESIGN.md).

    Parameters
    ----------
    f : callable, optional
        The explained function; needed only when ``fx``/``fref`` are not given.
    fx, fref : torch.Tensor of shape (n,), optional
        f(x) and f(ref) at the targets, when already computed.

    Returns
    -------
    dict with ``completeness_gap`` (relative, max over rows) and
    ``completeness_gap_abs`` (absolute, max over rows).
    """
    import torch

    fx = explained_output(f, x, targets) if fx is None else fx
    fref = explained_output(f, ref, targets) if fref is None else fref
    delta = fx - fref  # (n,)
    total = attr.reshape(len(attr), -1).sum(dim=1)
    gap = (total - delta).abs()
    big = delta.abs() > 1e-6
    rel = (gap[big] / delta.abs()[big]).max() if bool(big.any()) else torch.tensor(float("nan"))
    return {"completeness_gap": rel.item(), "completeness_gap_abs": gap.max().item()}


class SmoothGrad(GradientExplainer):
    """SmoothGrad (Smilkov et al. 2017): saliency averaged over noisy copies.

    Noise standard deviation is ``noise_level`` times the input range
    (images are in [0, 1]). Deterministic under ``seed``.
    """

    name = "smoothgrad"
    summary = "Saliency averaged over noisy copies of the input (sharper, less noisy maps)."
    params = ParamSpec(
        (
            Param("n_samples", "int", 16, "Noisy copies per image.", low=1, high=1024, fit_low=8,
                  fit_why="an average of fewer noisy copies is hardly smoother than plain saliency"),
            Param("noise_level", "float", 0.15, "Noise std as a share of the [0, 1] pixel range.", low=0.0, high=1.0),
            Param("absolute", "bool", True, "Average |gradient| instead of the signed gradient."),
            _SEED,
        )
    )

    def rows_per_call(self, model, x, params):
        return max(1, rows_per_batch(model, x) // params["n_samples"])

    def attribute(self, model, x, targets, params, data=None, net=None, ctx=None):
        import torch
        from captum.attr import NoiseTunnel
        from captum.attr import Saliency as CaptumSaliency

        span = 1.0  # images are in [0, 1]
        devices = [x.device.index or 0] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(params["seed"])
            if devices:
                torch.cuda.manual_seed(params["seed"])
            return NoiseTunnel(CaptumSaliency(forward_for(model, net))).attribute(
                x, nt_type="smoothgrad", nt_samples=params["n_samples"], stdevs=params["noise_level"] * span,
                nt_samples_batch_size=max(1, min(params["n_samples"], rows_per_batch(model, x) // max(1, len(x)))),
                target=targets, abs=params["absolute"],
            )

    def step_cost(self, model, data, params, m):
        """Captum's NoiseTunnel: ``n_samples`` noisy copies of each row, as many copies of the ``m`` rows per
        forward+backward pass as a batch holds."""
        ns = params.get("n_samples", 16)
        per = max(1, min(ns, rows_per_batch(model, data.x[:1]) // max(1, m)))
        return Cost(grad_calls=batched(ns, per), grad_rows=m * ns)

    def probe_params(self, params, data, k):
        return dict(params, n_samples=min(params.get("n_samples", 16), 4 * (k + 1))), 1


def gradient_pass(model, x) -> None:
    """One forward+backward pass of the explained output over ``x`` (numpy rows), as gradient methods run it
    (for :func:`studio.cost.call_timing`)."""
    import torch

    t = torch.as_tensor(np.asarray(x, dtype=np.float32), device=model.device).requires_grad_(True)
    out = model.torch_module("probabilities")(t)
    out[:, 0].sum().backward()
