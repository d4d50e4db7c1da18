"""Item 2: integrated gradients against its floor and against captum at its defaults.

The floor is the time of the raw work IG cannot avoid: ``n_steps x images``
forward + backward passes of the same differentiable function (the model's
``torch_module("probabilities")``, normalisation included), on inputs built
before the clock starts, in one batch per image's ``n_steps`` points for
resnet18 (all points at once for the small CNN). The studio's time includes
everything it does (baseline, path points, batching, the completeness
check's two extra forward passes, packaging).

The studio's IG refines rows whose completeness gap exceeds ``max_gap``
(doubling their steps); the floor and overhead rows turn that off
(``max_gap=0``) so both sides do the same work, and a separate row (sample
CNN) times the studio at its defaults, refinement on, with the gaps of both.

"captum defaults" is ``IntegratedGradients(f).attribute(x, target=t)`` with
nothing else set (50 steps, zero baseline, no internal batching); for
resnet18 it is called one image at a time, since 16 x 50 points at 224x224 in
one batch need about 20 GB.
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import Row, fixture, median_times, missing_reason, not_measured, registered

SUITE = "ig_floor"
GOAL_FLOOR = 1.15
GOAL_CAPTUM = 1.0
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def resnet18_setup(n_images: int, device: str = "cpu", seed: int = 0):
    """resnet18 with random weights at 224x224, wrapped, and random images."""
    import torch
    import torchvision

    from studio.data.dataset import Dataset
    from studio.models.loaders import wrap_model

    torch.manual_seed(seed)
    net = torchvision.models.resnet18(weights=None, num_classes=1000).eval()
    model = wrap_model(net, card={"task": "classification", "input_size": [3, 224, 224], "mean": IMAGENET_MEAN,
                                  "std": IMAGENET_STD, "outputs": "logits"}, name="resnet18-random")
    rng = np.random.default_rng(seed)
    x = rng.random((n_images, 3, 224, 224), dtype=np.float32)
    data = Dataset(kind="image", x=x, y=None, name="random-224")
    return model, data


def _floor_fn(f, x, targets, n_steps, chunk):
    """Callable doing n_steps x len(x) forward+backward passes in batches of ``chunk`` points."""
    import torch

    alphas = torch.linspace(0, 1, n_steps, device=x.device).reshape(-1, 1, 1, 1)
    batches = []
    for i in range(len(x)):
        pts = (alphas * x[i : i + 1]).detach()  # (n_steps, C, H, W): the path from a black image
        tg = torch.full((n_steps,), int(targets[i]), device=x.device, dtype=torch.long)
        batches.append((pts, tg))
    pts = torch.cat([b[0] for b in batches])
    tgs = torch.cat([b[1] for b in batches])
    chunks = [(pts[s : s + chunk], tgs[s : s + chunk]) for s in range(0, len(pts), chunk)]

    def run(first_only=False):
        for inp, tg in chunks[:1] if first_only else chunks:
            inp = inp.clone().requires_grad_(True)
            out = f(inp)
            sel = out.gather(1, tg.reshape(-1, 1)).sum()
            (grad,) = torch.autograd.grad(sel, inp)
        return grad

    return run


def _gap(attr, f, x, baseline, targets):
    """Max over rows of |sum(attr) - (f(x) - f(baseline))| / |f(x) - f(baseline)|."""
    import torch

    with torch.no_grad():
        idx = torch.as_tensor(targets, device=x.device).reshape(-1, 1)
        delta = f(x).gather(1, idx)[:, 0] - f(baseline).gather(1, idx)[:, 0]
    gaps = (attr.reshape(len(attr), -1).sum(dim=1) - delta).abs() / delta.abs().clamp(min=1e-6)
    return float(gaps.max())


def _bench(label, model, data, n_images, n_steps, sizes, repeats, device, per_image_captum, chunk, refine) -> list:
    import torch
    from captum.attr import IntegratedGradients

    import studio

    rows = list(range(n_images))
    plain = {"n_steps": n_steps, "max_gap": 0.0}  # the studio's refinement off: the same work as the floor
    model.to(device)

    def studio_fn(params=plain):
        return studio.explain(model, data, "integrated_gradients", rows=rows, params=params, device=device, cache=False)

    def studio_default():
        return studio_fn({"n_steps": n_steps})

    f = model.torch_module("probabilities")
    x = torch.as_tensor(np.asarray(data.x[rows], dtype=np.float32), device=model.device)
    if refine:  # small model: a full untimed run gives the targets and the completeness gap
        exp = studio_fn()
        targets = [int(t) for t in exp.target]
    else:  # resnet18: each run takes minutes on 2 cores; warm up on one image only
        exp = None
        studio.explain(model, data, "integrated_gradients", rows=rows[:1], params=plain, device=device, cache=False)
        targets = [int(t) for t in model.predict(data.x[rows])]
    floor = _floor_fn(f, x, targets, n_steps, chunk)

    def captum_defaults():
        ig = IntegratedGradients(f)
        if per_image_captum:
            return torch.cat([ig.attribute(x[i : i + 1], target=targets[i]) for i in range(len(x))])
        return ig.attribute(x, target=targets)

    if sizes.warmup:  # one untimed pass of the floor's first batch and captum's first image
        floor(first_only=True)
        IntegratedGradients(f).attribute(x[:1], target=targets[0])
    from dataclasses import replace

    fns = {"studio": studio_fn, "floor": floor, "captum": captum_defaults}
    if refine:
        fns["studio_default"] = studio_default
        fns["captum_same"] = lambda: IntegratedGradients(f).attribute(
            x, baselines=torch.zeros_like(x), target=targets, n_steps=n_steps, internal_batch_size=chunk)
    t = median_times(fns, replace(sizes, repeats=repeats, warmup=0))
    gaps = ""
    if exp is not None:
        captum_gap = _gap(captum_defaults(), f, x, torch.zeros_like(x), targets)
        gaps = f"; completeness gap studio {exp.checks.get('completeness_gap', float('nan')):.2e}, captum {captum_gap:.2e}"
    what = f"{n_images} images x {n_steps} steps, median of {repeats}"
    out = [
        Row(SUITE, f"integrated_gradients vs raw fwd+bwd floor, {label}", ours=t["studio"], ref=t["floor"],
            ref_label="floor", goal=GOAL_FLOOR,
            note=f"{what}, refinement off (max_gap=0); floor in batches of {chunk} points" + gaps),
        Row(SUITE, f"integrated_gradients ({n_steps} steps, refinement off) vs captum IG defaults, {label}",
            ours=t["studio"], ref=t["captum"], ref_label="captum", goal=GOAL_CAPTUM,
            note="captum at its defaults: 50 steps, gausslegendre, no internal batching"
                 + (", one call per image" if per_image_captum else ", one call") + gaps),
    ]
    if refine:
        out.append(Row(SUITE, f"captum IG itself ({n_steps} steps, same batches) vs the floor, {label}",
                       ours=t["captum_same"], ref=t["floor"], ours_label="captum", ref_label="floor", status="info",
                       note="how much of the studio's distance to the floor is captum's own (path points, "
                            "Gauss-Legendre weights, gradient bookkeeping)"))
        dexp = studio_default()
        out.append(Row(SUITE, f"integrated_gradients at studio defaults (refinement on) vs captum IG defaults, {label}",
                       ours=t["studio_default"], ref=t["captum"], ref_label="captum", goal=GOAL_CAPTUM,
                       note=f"the studio doubles the steps of rows whose completeness gap exceeds max_gap=1% "
                            f"(up to 512): {int(dexp.checks.get('rows_refined', 0))} of {n_images} rows refined, up to "
                            f"{int(dexp.checks.get('n_steps_max', n_steps))} steps; completeness gap studio "
                            f"{dexp.checks.get('completeness_gap', float('nan')):.2e}, captum {captum_gap:.2e}"))
    return out


def run(sizes, device="cpu", methods=None) -> list:
    if not registered("integrated_gradients", "image"):
        reason = missing_reason("integrated_gradients", "image")
        return [not_measured(SUITE, f"integrated_gradients vs floor, {m}", reason, GOAL_FLOOR) for m in ("sample CNN", "resnet18 224")]
    out = []
    import torch

    torch.manual_seed(0)
    try:
        cnn, digits = fixture("cnn"), fixture("digits")
        n = sizes.ig_images
        out += _bench("sample CNN 32x32", cnn, digits, n, sizes.ig_steps, sizes, sizes.repeats, device,
                      per_image_captum=False, chunk=n * sizes.ig_steps, refine=True)
    except Exception as exc:
        out.append(not_measured(SUITE, "integrated_gradients vs floor, sample CNN", f"benchmark failed: {type(exc).__name__}: {exc}", GOAL_FLOOR))
    if not sizes.resnet_images:
        out.append(not_measured(SUITE, "integrated_gradients vs floor, resnet18 224x224", f"skipped at --{sizes.name} sizes", GOAL_FLOOR))
        return out
    try:
        model, data = resnet18_setup(sizes.resnet_images, device)
        out += _bench("resnet18 224x224 (random weights)", model, data, sizes.resnet_images, sizes.resnet_steps, sizes,
                      sizes.resnet_repeats, device, per_image_captum=True, chunk=sizes.resnet_steps, refine=False)
    except Exception as exc:
        out.append(not_measured(SUITE, "integrated_gradients vs floor, resnet18", f"benchmark failed: {type(exc).__name__}: {exc}", GOAL_FLOOR))
    return out
