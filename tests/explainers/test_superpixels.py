"""Perturbation methods: superpixels, occlusion, ablation, LIME, anchors, SHAP."""

from __future__ import annotations

import numpy as np
import pytest
from image_test_models import Q, block_images, image_dataset, quadrant_model, quadrant_share

import studio
from studio.explainers.superpixels import segment

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]

FAST = {
    "occlusion": {},
    "feature_ablation": {"n_segments": 16},
    "lime": {"n_samples": 120, "n_segments": 16},
    "shap": {"max_evals": 120},
    "anchors": {"n_segments": 16, "batch_size": 80, "n_validate": 300},
}


def test_slic_with_sigma_returns_about_the_segments_asked(digits):
    for i in range(5):
        labels = segment(digits.x[i], n_segments=25)
        n = labels.max() + 1
        assert labels.shape == (32, 32) and set(np.unique(labels)) == set(range(n))
        assert 10 <= n <= 40, n
    grid = segment(digits.x[0], n_segments=16, method="grid")
    assert grid.max() + 1 == 16 and np.all(grid[:8, :8] == 0) and np.all(grid[8:16, :8] == 4)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("method,params", [("occlusion", {"window": 4, "stride": 4}),
                                           ("feature_ablation", {"n_segments": 16, "segmentation": "grid"})])
def test_quadrant_model_mass_in_quadrant(method, params, channels):
    model = quadrant_model(channels, scripted=True)
    data = image_dataset(block_images(channels, n=3, seed=channels))
    exp = studio.explain(model, data, method, rows=[0, 1, 2], params=params, cache=False)
    assert np.all(quadrant_share(exp.values) >= 0.9), quadrant_share(exp.values)
    assert np.abs(exp.values).sum() > 0


@pytest.mark.parametrize("baseline", ["black", "blurred"])
def test_occlusion_of_all_images_at_once_equals_occlusion_image_by_image(cnn, digits, baseline):
    """One captum call over all images (per-row targets and references, several windows per pass,
    a last pass with fewer) gives each image's own occlusion map; base values are f(x)."""
    import torch
    from captum.attr import Occlusion as CaptumOcclusion

    from studio.explainers.superpixels import occlude, references

    rows = [0, 40, 80, 120]  # four different digits: four different predicted classes
    exp = studio.explain(cnn, digits, "occlusion", rows=rows, cache=False,
                         params={"window": 6, "stride": 4, "baseline": baseline})
    targets = [int(t) for t in exp.target]
    assert len(set(targets)) == 4
    f = cnn.torch_module("probabilities")
    x = torch.as_tensor(digits.x[rows])
    refs = references(x, baseline)
    with torch.no_grad():
        one_by_one = torch.cat([
            CaptumOcclusion(f).attribute(x[i : i + 1], sliding_window_shapes=(1, 6, 6), strides=(1, 4, 4),
                                         baselines=refs[i : i + 1], target=targets[i])
            for i in range(len(rows))
        ])
        at_once = occlude(f, x, refs, targets, window=6, stride=4, per_eval=5)  # 49 windows: 9 passes of 5, one of 4
    assert one_by_one.abs().max() > 1e-2
    # float32 outputs: batched and one-by-one convolutions may round differently, by a few units in the last
    # place of the outputs (probabilities), so the tolerance is float32's precision (~1e-5 relative) times
    # the outputs' magnitude: about 1e-5 here, a thousand times under the largest map value (over 1e-2, checked above)
    tol = 1e-5 * max(1.0, float(f(x).abs().max()))
    torch.testing.assert_close(at_once, one_by_one, rtol=0, atol=tol)
    np.testing.assert_allclose(exp.values, one_by_one.numpy(), rtol=0, atol=tol)
    np.testing.assert_allclose(exp.base_values, cnn.output(digits.x[rows])[np.arange(4), targets], atol=tol)


def test_feature_ablation_is_the_drop_per_superpixel():
    import torch

    from studio.explainers.gradients import image_baseline

    model = quadrant_model(3)
    x = block_images(3, n=1, seed=4)
    exp = studio.explain(model, image_dataset(x), "feature_ablation", rows=[0], cache=False,
                         params={"n_segments": 16, "segmentation": "grid", "baseline": "black"})
    t = exp.target[0]
    ref = image_baseline(torch.as_tensor(x), "black").numpy()
    fx = model.output(x)[0, t]
    for cell in (0, 5, 15):
        r, c = divmod(cell, 4)
        hidden = x.copy()
        hidden[..., 8 * r : 8 * r + 8, 8 * c : 8 * c + 8] = ref[..., 8 * r : 8 * r + 8, 8 * c : 8 * c + 8]
        want = fx - model.output(hidden)[0, t]
        np.testing.assert_allclose(exp.values[0, 0, 8 * r : 8 * r + 8, 8 * c : 8 * c + 8], want, atol=1e-6)
    assert exp.values.shape == (1, 1, 32, 32) and exp.checks["n_segments_min"] == 16


def test_anchor_precision_holds_on_fresh_samples(cnn, digits):
    import torch

    from studio.explainers.superpixels import masked, references

    rows = [0, 3]
    exp = studio.explain(cnn, digits, "anchors", rows=rows, params=FAST["anchors"], cache=False)
    assert exp.kind == "rule" and len(exp.rules) == 2
    rng = np.random.default_rng(12345)  # a stream the explainer never used
    for rule, row, t in zip(exp.rules, rows, exp.target):
        seg = np.asarray(rule.extra["segments"])
        ids = rule.extra["superpixels"]
        assert rule.predicates == [f"superpixel_{s} == original" for s in ids] and ids
        assert rule.coverage == pytest.approx(0.5 ** len(ids))
        keep = rng.random((2000, seg.max() + 1)) < rule.extra["p_keep"]
        keep[:, ids] = True
        x = torch.as_tensor(digits.x[row])
        ref = references(x[None], rule.extra["baseline"])[0]
        imgs = masked(x, ref, torch.as_tensor(seg), torch.as_tensor(keep)).numpy()
        fresh = float((cnn.predict(imgs) == t).mean())
        assert fresh >= 0.95, (fresh, rule)
        assert rule.precision >= 0.95


def test_lime_reports_its_score_and_is_seeded(cnn, digits):
    a = studio.explain(cnn, digits, "lime", rows=[0, 1], params=FAST["lime"], cache=False)
    b = studio.explain(cnn, digits, "lime", rows=[0, 1], params=FAST["lime"], cache=False)
    assert a.values.shape == (2, 1, 32, 32) and a.values.dtype == np.float32
    assert 0.0 < a.checks["score"] <= 1.0
    np.testing.assert_array_equal(a.values, b.values)
    c = studio.explain(cnn, digits, "lime", rows=[0, 1], params=dict(FAST["lime"], seed=3), cache=False)
    assert not np.array_equal(a.values, c.values)


@pytest.mark.parametrize("channels", [1, 3])
def test_shap_partition_is_additive(channels):
    model = quadrant_model(channels)
    data = image_dataset(block_images(channels, n=2))
    exp = studio.explain(model, data, "shap", rows=[0, 1], params=FAST["shap"], cache=False)
    assert exp.values.shape == (2, channels, 32, 32) and exp.values.dtype == np.float32
    fx = model.output(data.x[:2])[np.arange(2), exp.target]
    total = exp.base_values + exp.values.reshape(2, -1).sum(1)
    np.testing.assert_allclose(total, fx, atol=1e-5)
    assert exp.checks["additivity_gap"] < 1e-5
    if channels == 3:
        again = studio.explain(model, data, "shap", rows=[0, 1], params=FAST["shap"], cache=False)
        np.testing.assert_array_equal(exp.values, again.values)
    assert quadrant_share(exp.values).min() >= 0.9  # hidden outside the quadrant: no credit there


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_determinism_every_perturbation_method(channels):
    model = quadrant_model(channels)
    data = image_dataset(block_images(channels, n=2, seed=7))
    for method in ("occlusion", "feature_ablation", "lime"):
        a = studio.explain(model, data, method, rows=[0, 1], params=FAST[method], cache=False)
        b = studio.explain(model, data, method, rows=[0, 1], params=FAST[method], cache=False)
        assert a.values.shape == (2, 1, 32, 32) and a.values.dtype == np.float32, method
        assert a.base_values.shape == (2,) and np.abs(a.values).sum() > 0
        np.testing.assert_array_equal(a.values, b.values)
    a = studio.explain(model, data, "anchors", rows=[0], params=FAST["anchors"], cache=False)
    b = studio.explain(model, data, "anchors", rows=[0], params=FAST["anchors"], cache=False)
    assert a.rules[0].extra["superpixels"] == b.rules[0].extra["superpixels"]
    assert a.rules[0].precision == b.rules[0].precision


def test_model_agnostic_methods_run_on_an_onnx_image_model(tmp_path, digits, cnn):
    import torch

    path = tmp_path / "cnn.onnx"
    eager = studio.load_model(ROOT / "models" / "image_cnn_state.pt", card=ROOT / "models" / "image_cnn_state.card.json", sandbox="off")
    torch.onnx.export(eager.native, (torch.zeros(1, 1, 32, 32),), str(path), input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}, dynamo=False)
    card = {"task": "classification", "class_names": list("0123456789"), "input_size": [1, 32, 32],
            "mean": [0.2], "std": [0.3]}
    onnx_model = studio.load_model(path, card=card, sandbox="off")
    info = {m.name: m for m in studio.methods(onnx_model, digits)}
    for name in ("lime", "anchors", "shap", "occlusion", "feature_ablation"):
        assert info[name].available, (name, info[name].reason)
    assert not info["saliency"].available and not info["grad_cam"].available
    a = studio.explain(onnx_model, digits, "feature_ablation", rows=[0], params=FAST["feature_ablation"], cache=False)
    b = studio.explain(cnn, digits, "feature_ablation", rows=[0], params=FAST["feature_ablation"], cache=False)
    np.testing.assert_allclose(a.values, b.values, atol=1e-5)


def test_every_image_method_is_listed_estimates_its_cost_and_caches(cnn, digits):
    from studio.explainers import registry

    info = {m.name: m for m in studio.methods(cnn, digits)}
    for name in [n for n, kinds in registry.REGISTRY.items() if "image" in kinds]:
        assert info[name].available, (name, info[name].reason)
        explainer = registry.get(name, "image")
        n = explainer.estimate_evaluations(cnn, digits, explainer.params.defaults(), 3)
        assert isinstance(n, int) and n >= 3, (name, n)
    first = studio.explain(cnn, digits, "anchors", rows=[0], params=FAST["anchors"])
    second = studio.explain(cnn, digits, "anchors", rows=[0], params=FAST["anchors"])
    assert (first.cache, second.cache) == ("miss", "hit")
    assert second.rules[0].extra["superpixels"] == first.rules[0].extra["superpixels"]
    assert second.rules[0].extra["segments"] == first.rules[0].extra["segments"]


def test_occlusion_with_a_stride_over_its_window_is_refused_in_one_sentence(cnn, digits):
    """Pixels between windows would never be hidden; captum only asserts it (an "unexpected" error before)."""
    from studio.errors import StudioError

    with pytest.raises(StudioError, match=r"stride \(6\) is larger than its window \(4\)"):
        studio.explain(cnn, digits, "occlusion", rows=[0], params={"window": 4, "stride": 6}, cache=False)
