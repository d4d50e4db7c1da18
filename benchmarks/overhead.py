"""Item 1: the studio's overhead over the library it wraps, same model, data and params.

Each studio call uses ``cache=False`` so the cache is not what is measured.
The direct call is built from the parameters the studio actually used
(``Explanation.params``), with the library's own defaults for everything the
studio does not set; where the two should agree numerically, the row's note
says how far apart they were, so a cheap shortcut cannot pass as speed.
"""

from __future__ import annotations

import numpy as np

from benchmarks import common
from benchmarks.common import Row, fixture, median_times, missing_reason, not_measured, registered

SUITE = "overhead"
GOAL = 1.10


def _fixed_cost(studio_fn, sizes) -> float:
    """Median seconds of the same call answered from a (temporary) cache: the studio's per-call
    bookkeeping (alignment, checks, targets, versions, key, read), without the computation."""
    import tempfile

    from studio.cache import Cache

    cache = Cache(tempfile.mkdtemp(prefix="studio-bench-hit-"))
    studio_fn(cache=cache)
    return median_times({"hit": lambda: studio_fn(cache=cache)}, sizes)["hit"]


def _compare(name, studio_fn, direct_fn, sizes, ref_label, check=None, goal=GOAL, note="") -> Row:
    t = median_times({"studio": studio_fn, "direct": direct_fn}, sizes)
    try:
        hit = _fixed_cost(studio_fn, sizes)
        cost = (f"studio - direct = {1e3 * (t['studio'] - t['direct']):.0f} ms; the same call from the cache "
                f"(the per-call bookkeeping alone) = {1e3 * hit:.0f} ms")
        note = cost + ("; " + note if note else "")
    except Exception as exc:
        note = f"(cache-hit timing failed: {exc}) " + note
    extra = {}
    if check is not None:
        try:
            note = (note + "; " if note else "") + check()
        except Exception as exc:  # a failed agreement check is reported, not fatal
            note = (note + "; " if note else "") + f"agreement check failed: {exc}"
    return Row(SUITE, name, ours=t["studio"], ref=t["direct"], ref_label=ref_label, goal=goal, note=note, extra=extra)


def _explain(model, data, method, rows=None, params=None, device="cpu", cache=False):
    import studio

    return studio.explain(model, data, method, rows=rows, params=params, device=device, cache=cache)


# ------------------------------------------------------------------------- tabular
def bench_permutation_importance(sizes, device) -> Row:
    from sklearn.inspection import permutation_importance

    model, data = fixture("gbt"), fixture("table")
    params = {"n_repeats": 5, "seed": 0}
    x, y = data.x, data.y
    exp = _explain(model, data, "permutation_importance", params=params)

    def studio_fn(cache=False):
        return _explain(model, data, "permutation_importance", params=params, cache=cache)

    def direct_fn():
        return permutation_importance(model.native, x, y, scoring="accuracy", n_repeats=5, random_state=0, n_jobs=1)

    def check():
        ref = direct_fn()
        ours = np.array([imp.mean for imp in exp.importances])
        return f"max |importance diff| vs sklearn {np.abs(ours - ref.importances_mean).max():.2e}"

    return _compare("permutation_importance vs sklearn.inspection.permutation_importance", studio_fn, direct_fn,
                    sizes, "sklearn", check)


def bench_shap(sizes, device) -> Row:
    name = "shap (tree path) vs shap.TreeExplainer"
    if not registered("shap", "tabular"):
        return not_measured(SUITE, name, missing_reason("shap", "tabular"), GOAL)
    import shap

    from studio.explainers.tabular_utils import sample_rows

    model, data = fixture("gbt"), fixture("table")
    rows = list(range(sizes.local_rows))
    exp = _explain(model, data, "shap", rows=rows)
    p = dict(exp.params)
    background = np.asarray(data.x[sample_rows(len(data), p["background"], p["seed"])], dtype=np.float64)
    x = np.asarray(data.x[rows], dtype=np.float64)
    paths = [k for k in exp.checks if k.startswith("path_")]

    def studio_fn(cache=False):
        return _explain(model, data, "shap", rows=rows, cache=cache)

    def direct_fn():
        explainer = shap.TreeExplainer(model.native, data=background, model_output="probability",
                                       feature_perturbation="interventional")
        return explainer(x, check_additivity=False).values

    def check():
        ref = np.asarray(direct_fn())
        if ref.ndim == 3:
            ref = np.stack([ref[i, :, t] for i, t in enumerate(exp.target)])
        else:
            ref = np.where(np.asarray(exp.target)[:, None] == 1, ref, -ref)
        return (f"{len(rows)} rows, background {len(background)}, studio {', '.join(paths)}; "
                f"max |SHAP diff| vs direct {np.abs(ref - exp.values).max():.2e}")

    return _compare(name, studio_fn, direct_fn, sizes, "shap", check)


def bench_lime(sizes, device) -> Row:
    name = "lime vs lime.LimeTabularExplainer"
    if not registered("lime", "tabular"):
        return not_measured(SUITE, name, missing_reason("lime", "tabular"), GOAL)
    from lime.lime_tabular import LimeTabularExplainer

    model, data = fixture("gbt"), fixture("table")
    rows = list(range(max(1, sizes.local_rows // 2)))
    exp = _explain(model, data, "lime", rows=rows)
    p = dict(exp.params)
    n_samples = int(p.get("num_samples", p.get("n_samples", 5000)))
    n_features = int(p.get("num_features", p.get("n_features", data.n_features)) or data.n_features)
    x = np.asarray(data.x, dtype=np.float64)

    def studio_fn(cache=False):
        return _explain(model, data, "lime", rows=rows, cache=cache)

    def direct_fn():
        explainer = LimeTabularExplainer(x, feature_names=list(data.feature_names), class_names=model.class_names,
                                         discretize_continuous=bool(p.get("discretize", True)), random_state=int(p.get("seed", 0)),
                                         mode="classification")
        for r, t in zip(rows, exp.target):
            explainer.explain_instance(x[r], model.native.predict_proba, labels=(int(t),), num_features=n_features,
                                       num_samples=n_samples)

    return _compare(name, studio_fn, direct_fn, sizes, "lime",
                    note=f"{len(rows)} rows, num_samples={n_samples}, num_features={n_features}")


def bench_pdp(sizes, device) -> Row:
    name = "pdp vs sklearn partial_dependence (brute)"
    if not registered("pdp", "tabular"):
        return not_measured(SUITE, name, missing_reason("pdp", "tabular"), GOAL)
    from sklearn.inspection import partial_dependence

    model, data = fixture("gbt"), fixture("table")
    params = {"max_rows": 0}  # every row on both sides (the studio samples 500 by default)
    exp = _explain(model, data, "pdp", params=params)
    curves = exp.curves
    x = np.asarray(data.x, dtype=np.float64)
    names = list(data.feature_names)
    specs = [(c.feature, [np.asarray(g) for g in c.grid]) for c in curves]

    def studio_fn(cache=False):
        return _explain(model, data, "pdp", params=params, cache=cache)

    def direct_fn():
        out = []
        for feature, grid in specs:
            feats = [names.index(f) for f in (feature if isinstance(feature, (tuple, list)) else [feature])]
            out.append(partial_dependence(model.native, x, feats, method="brute", kind="average",
                                          custom_values={i: g for i, g in zip(feats, grid)}))
        return out

    def check():
        ref = direct_fn()
        t = (exp.target or [1])[0]
        diffs = []
        for c, r in zip(curves, ref):
            avg = np.asarray(r["average"])
            avg = avg[t] if avg.shape[0] > 1 else (avg[0] if t == 1 else 1 - avg[0])
            diffs.append(np.abs(np.asarray(c.average) - avg).max())
        return f"{len(curves)} curves, grid {len(specs[0][1][0]) if specs else 0}; max |PDP diff| vs sklearn {max(diffs):.2e}"

    return _compare(name, studio_fn, direct_fn, sizes, "sklearn", check)


def _ale_loop(predict, x, j, edges, target):
    """The textbook first-order ALE (Apley & Zhu 2020), one predict call per bin."""
    idx = np.clip(np.searchsorted(edges, x[:, j], side="left") - 1, 0, len(edges) - 2)
    effects = np.zeros(len(edges) - 1)
    counts = np.zeros(len(edges) - 1)
    for k in range(len(edges) - 1):
        in_bin = x[idx == k]
        if not len(in_bin):
            continue
        lo, hi = in_bin.copy(), in_bin.copy()
        lo[:, j], hi[:, j] = edges[k], edges[k + 1]
        effects[k] = (predict(hi)[:, target] - predict(lo)[:, target]).mean()
        counts[k] = len(in_bin)
    acc = np.concatenate([[0.0], np.cumsum(effects)])
    centres = (acc[:-1] + acc[1:]) / 2
    return acc - np.sum(centres * counts) / max(1, counts.sum())


def bench_ale(sizes, device) -> Row:
    name = "ale vs reference loop (one predict per bin)"
    if not registered("ale", "tabular"):
        return not_measured(SUITE, name, missing_reason("ale", "tabular"), GOAL)
    model, data = fixture("gbt"), fixture("table")
    params = {"max_rows": 0}
    exp = _explain(model, data, "ale", params=params)
    x = np.asarray(data.x, dtype=np.float64)
    names = list(data.feature_names)
    target = (exp.target or [1])[0]
    specs = [(names.index(c.feature), np.asarray(c.grid[0], dtype=np.float64)) for c in exp.curves
             if not isinstance(c.feature, (tuple, list))]
    predict = model.native.predict_proba

    def studio_fn(cache=False):
        return _explain(model, data, "ale", params=params, cache=cache)

    def direct_fn():
        return [_ale_loop(predict, x, j, grid, target) for j, grid in specs]

    def check():
        ref = direct_fn()
        diffs = [np.abs(np.asarray(c.average) - r).max() for c, r in zip(exp.curves, ref) if len(c.average) == len(r)]
        agree = f"max |ALE diff| vs loop {max(diffs):.2e}" if diffs else "grids differ in length; values not compared"
        return f"{len(specs)} curves; {agree}"

    return _compare(name, studio_fn, direct_fn, sizes, "loop", check)


# --------------------------------------------------------------------------- images
def _images(model_name, n):
    data = fixture("digits")
    rows = list(range(n))
    return fixture(model_name), data, rows


def bench_integrated_gradients(sizes, device) -> Row:
    name = "integrated_gradients vs captum IntegratedGradients (same n_steps, baseline)"
    if not registered("integrated_gradients", "image"):
        return not_measured(SUITE, name, missing_reason("integrated_gradients", "image"), GOAL)
    import torch
    from captum.attr import IntegratedGradients

    model, data, rows = _images("cnn", sizes.ig_images)
    params = {"n_steps": sizes.ig_steps, "max_gap": 0.0}  # refinement off: captum does no refinement
    exp = _explain(model, data, "integrated_gradients", rows=rows, params=params, device=device)
    x = torch.as_tensor(np.asarray(data.x[rows], dtype=np.float32), device=model.device)
    targets = [int(t) for t in exp.target]
    f = model.torch_module("probabilities")

    def studio_fn(cache=False):
        return _explain(model, data, "integrated_gradients", rows=rows, params=params, device=device, cache=cache)

    def direct_fn():
        return IntegratedGradients(f).attribute(x, baselines=torch.zeros_like(x), target=targets, n_steps=sizes.ig_steps)

    def check():
        ref = direct_fn().detach().cpu().numpy()
        return f"{len(rows)} images, {sizes.ig_steps} steps; max |attr diff| vs captum {np.abs(ref - exp.values).max():.2e}"

    return _compare(name, studio_fn, direct_fn, sizes, "captum", check,
                    note="refinement off (max_gap=0); captum called once on the whole batch, internal_batch_size at its default")


def _last_conv(module):
    import torch

    last = None
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d):
            last = m
    return last


def bench_grad_cam(sizes, device) -> Row:
    name = "grad_cam vs captum LayerGradCam + interpolate"
    if not registered("grad_cam", "image"):
        return not_measured(SUITE, name, missing_reason("grad_cam", "image"), GOAL)
    import torch
    from captum.attr import LayerAttribution, LayerGradCam

    model, data, rows = _images("cnn_state", sizes.image_rows)
    exp = _explain(model, data, "grad_cam", rows=rows, device=device)
    x = torch.as_tensor(np.asarray(data.x[rows], dtype=np.float32), device=model.device)
    targets = [int(t) for t in exp.target]
    f = model.torch_module("probabilities")
    layer = _last_conv(model.native)

    def studio_fn(cache=False):
        return _explain(model, data, "grad_cam", rows=rows, device=device, cache=cache)

    def direct_fn():
        attr = LayerGradCam(f, layer).attribute(x, target=targets, relu_attributions=True)
        return LayerAttribution.interpolate(attr, tuple(x.shape[-2:]), interpolate_mode="bilinear")

    return _compare(name, studio_fn, direct_fn, sizes, "captum", note=f"{len(rows)} images, last Conv2d")


def bench_occlusion(sizes, device) -> Row:
    name = "occlusion vs captum Occlusion (same window, stride)"
    if not registered("occlusion", "image"):
        return not_measured(SUITE, name, missing_reason("occlusion", "image"), GOAL)
    import torch
    from captum.attr import Occlusion

    model, data, rows = _images("cnn", sizes.image_rows)
    exp = _explain(model, data, "occlusion", rows=rows, device=device)
    p = dict(exp.params)
    window = int(p.get("window", p.get("window_size", 4)))
    stride = int(p.get("stride", p.get("strides", window // 2 or 1)))
    c = data.image_shape[0]
    x = torch.as_tensor(np.asarray(data.x[rows], dtype=np.float32), device=model.device)
    targets = [int(t) for t in exp.target]
    f = model.torch_module("probabilities")
    baseline = float(p.get("baseline_value", 0.0)) if not isinstance(p.get("baseline"), str) else 0.0

    def studio_fn(cache=False):
        return _explain(model, data, "occlusion", rows=rows, device=device, cache=cache)

    def direct_fn():
        return Occlusion(f).attribute(x, sliding_window_shapes=(c, window, window), strides=(c, stride, stride),
                                      target=targets, baselines=baseline)

    return _compare(name, studio_fn, direct_fn, sizes, "captum",
                    note=f"{len(rows)} images, window {window}, stride {stride}, params {p}; captum's default perturbations_per_eval=1",
                    goal=GOAL)


BENCHES = {
    "shap": bench_shap,
    "lime": bench_lime,
    "pdp": bench_pdp,
    "ale": bench_ale,
    "permutation_importance": bench_permutation_importance,
    "integrated_gradients": bench_integrated_gradients,
    "grad_cam": bench_grad_cam,
    "occlusion": bench_occlusion,
}


def run(sizes, device="cpu", methods=None) -> list:
    rows = []
    for method, bench in BENCHES.items():
        if methods and method not in methods:
            continue
        try:
            rows.append(bench(sizes, device))
        except Exception as exc:
            rows.append(not_measured(SUITE, method, f"benchmark failed: {type(exc).__name__}: {exc}", GOAL))
    return rows
