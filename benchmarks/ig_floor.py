"""Item 2: integrated gradients against its floor and against captum at its defaults.

The floor is the time of the raw work IG cannot avoid: ``n_steps x images``
forward + backward passes of the same differentiable function (the model's
``torch_module("probabilities")``, normalisation included), on inputs built
before the clock starts, in one batch per image's ``n_steps`` points for
resnet18 (all points at once for the small CNN). The studio's time includes
everything it does (baseline, path points, batching, the completeness
check's two extra forward passes, packaging).

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


def _bench(label, model, data, n_images, n_steps, sizes, repeats, device, per_image_captum, chunk) -> list:
    import torch
    from captum.attr import IntegratedGradients

    import studio

    rows = list(range(n_images))
    params = {"n_steps": n_steps}
    model.to(device)

    def studio_fn():
        return studio.explain(model, data, "integrated_gradients", rows=rows, params=params, device=device, cache=False)

    exp = studio_fn() if sizes.warmup else None
    f = model.torch_module("probabilities")
    x = torch.as_tensor(np.asarray(data.x[rows], dtype=np.float32), device=model.device)
    targets = [int(t) for t in (exp.target if exp is not None else model.predict(data.x[rows]))]
    floor = _floor_fn(f, x, targets, n_steps, chunk)

    def captum_defaults():
        ig = IntegratedGradients(f)
        if per_image_captum:
            return [ig.attribute(x[i : i + 1], target=targets[i]) for i in range(len(x))]
        return ig.attribute(x, target=targets)

    if sizes.warmup:  # one untimed pass of the floor's first batch and captum's first image
        floor(first_only=True)
        IntegratedGradients(f).attribute(x[:1], target=targets[0])
    from dataclasses import replace

    t = median_times({"studio": studio_fn, "floor": floor, "captum": captum_defaults},
                     replace(sizes, repeats=repeats, warmup=0))
    gap = exp.checks.get("completeness_gap") if exp is not None else None
    what = f"{n_images} images x {n_steps} steps"
    return [
        Row(SUITE, f"integrated_gradients vs raw fwd+bwd floor, {label}", ours=t["studio"], ref=t["floor"],
            ref_label="floor", goal=GOAL_FLOOR,
            note=f"{what}; floor batches of {chunk} points" + (f"; studio completeness_gap {gap:.2e}" if gap is not None else "")),
        Row(SUITE, f"integrated_gradients (defaults) vs captum IG defaults, {label}", ours=t["studio"], ref=t["captum"],
            ref_label="captum", goal=GOAL_CAPTUM,
            note=f"studio {n_steps} steps; captum at its defaults (50 steps, gausslegendre, no internal batching"
                 + (", one call per image)" if per_image_captum else ", one call)")),
    ]


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
                      per_image_captum=False, chunk=n * sizes.ig_steps)
    except Exception as exc:
        out.append(not_measured(SUITE, "integrated_gradients vs floor, sample CNN", f"benchmark failed: {type(exc).__name__}: {exc}", GOAL_FLOOR))
    if not sizes.resnet_images:
        out.append(not_measured(SUITE, "integrated_gradients vs floor, resnet18 224x224", f"skipped at --{sizes.name} sizes", GOAL_FLOOR))
        return out
    try:
        model, data = resnet18_setup(sizes.resnet_images, device)
        out += _bench("resnet18 224x224 (random weights)", model, data, sizes.resnet_images, sizes.resnet_steps, sizes,
                      sizes.resnet_repeats, device, per_image_captum=True, chunk=sizes.resnet_steps)
    except Exception as exc:
        out.append(not_measured(SUITE, "integrated_gradients vs floor, resnet18", f"benchmark failed: {type(exc).__name__}: {exc}", GOAL_FLOOR))
    return out
