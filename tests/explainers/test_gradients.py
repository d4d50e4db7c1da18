"""Gradient methods: IG completeness, quadrant localisation, normalisation once, tables."""

from __future__ import annotations

import numpy as np
import pytest
from image_test_models import block_images, image_dataset, quadrant_model, quadrant_share

import studio

IMAGE_METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "smoothgrad")
FAST = {"integrated_gradients": {"n_steps": 8, "max_gap": 0}, "smoothgrad": {"n_samples": 4}}


def _by_hand_gap(model, exp, x, ref):
    """|sum(attr) - (f(x) - f(ref))| / |f(x) - f(ref)| per row, from model.output."""
    rows = np.arange(len(x))
    t = np.asarray(exp.target)
    delta = model.output(x)[rows, t] - model.output(ref)[rows, t]
    return np.abs(exp.values.reshape(len(x), -1).sum(1) - delta) / np.abs(delta), delta


def test_ig_completeness_under_one_percent_on_sample_cnn_every_image(cnn, digits):
    rows = [0, 1, 2, 3]
    exp = studio.explain(cnn, digits, "integrated_gradients", rows=rows, params={"n_steps": 64}, cache=False)
    gap, delta = _by_hand_gap(cnn, exp, digits.x[rows], np.zeros_like(digits.x[rows]))
    assert np.all(np.abs(delta) > 0.1)
    assert np.all(gap < 0.01), gap
    assert exp.checks["completeness_gap"] == pytest.approx(gap.max(), rel=1e-3, abs=1e-5)
    np.testing.assert_allclose(exp.base_values, cnn.output(np.zeros_like(digits.x[rows]))[np.arange(4), exp.target], atol=1e-6)


def test_ig_check_is_the_measured_gap_without_refinement(cnn, digits):
    rows = [4, 5]
    exp = studio.explain(cnn, digits, "integrated_gradients", rows=rows, cache=False,
                         params={"n_steps": 8, "max_gap": 0, "baseline": "blurred"})
    from studio.explainers.gradients import image_baseline

    import torch

    ref = image_baseline(torch.as_tensor(digits.x[rows]), "blurred").numpy()
    gap, _ = _by_hand_gap(cnn, exp, digits.x[rows], ref)
    assert exp.checks["n_steps_max"] == 8 and exp.checks["rows_refined"] == 0
    assert exp.checks["completeness_gap"] == pytest.approx(gap.max(), rel=1e-3)


def test_ig_rows_in_several_calls_share_one_reference_and_refine_by_the_measured_gap(cnn, digits, monkeypatch):
    """With a batch of 8 points each row is its own call; the noise reference is still drawn once for
    all rows, and the rows refined are those whose gap at n_steps exceeded max_gap."""
    import torch

    import studio.device
    from studio.explainers.gradients import _ig, _row_gaps, image_baseline

    rows = [2, 9, 30]
    params = {"n_steps": 8, "baseline": "noise", "seed": 3, "max_gap": 0.02, "max_steps": 16}
    whole = studio.explain(cnn, digits, "integrated_gradients", rows=rows, params=params, cache=False)
    monkeypatch.setattr(studio.device, "batch_size_for", lambda numel, device, budget=None: 8)
    split = studio.explain(cnn, digits, "integrated_gradients", rows=rows, params=params, cache=False)
    x = torch.as_tensor(digits.x[rows])
    ref = image_baseline(x, "noise", seed=3)
    np.testing.assert_allclose(split.base_values, whole.base_values, rtol=0, atol=1e-6)
    np.testing.assert_allclose(split.base_values, cnn.output(ref.numpy())[np.arange(3), split.target], atol=1e-6)
    np.testing.assert_allclose(split.values, whole.values, rtol=1e-4, atol=1e-7)
    gap, _ = _by_hand_gap(cnn, split, digits.x[rows], ref.numpy())
    assert split.checks["completeness_gap"] == pytest.approx(gap.max(), rel=1e-3)
    f = cnn.torch_module("probabilities")
    t = [int(v) for v in split.target]
    first = _row_gaps(_ig(f, cnn, x, ref, t, 8), x, ref, t, f)
    assert split.checks["rows_refined"] == int((first > 0.02).sum())
    assert split.checks["n_steps_max"] == (16 if bool((first > 0.02).any()) else 8)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("method", ["saliency", "integrated_gradients"])
def test_quadrant_model_mass_in_quadrant(method, channels):
    model = quadrant_model(channels, scripted=True)
    data = image_dataset(block_images(channels, n=3, seed=channels))
    exp = studio.explain(model, data, method, rows=[0, 1, 2], params=FAST.get(method), cache=False)
    assert np.all(quadrant_share(exp.values) >= 0.9)
    assert np.abs(exp.values).sum() > 0


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_dtypes_and_determinism(channels):
    model = quadrant_model(channels)
    data = image_dataset(block_images(channels, n=2))
    results = {}
    for method in IMAGE_METHODS:
        params = dict(FAST.get(method, {}))
        if method == "integrated_gradients":
            params["baseline"] = "noise"
        a = studio.explain(model, data, method, rows=[0, 1], params=params, cache=False)
        b = studio.explain(model, data, method, rows=[0, 1], params=params, cache=False)
        assert a.values.shape == (2, channels, 32, 32) and a.values.dtype == np.float32, method
        assert a.base_values.shape == (2,)
        np.testing.assert_array_equal(a.values, b.values)
        results[method] = a
    c = studio.explain(model, data, "smoothgrad", rows=[0, 1], params={"n_samples": 4, "seed": 1}, cache=False)
    assert not np.array_equal(c.values, results["smoothgrad"].values)  # the seed matters


def test_card_normalisation_applied_exactly_once():
    """Signed saliency of a linear softmax model equals the hand-computed gradient,
    which carries the card's 1/std once: d p_t / dx = p_t (W_t - sum_j p_j W_j) / std."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 3)).eval()
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.5]
    card = {"task": "classification", "class_names": ["a", "b", "c"], "input_size": [3, 32, 32], "mean": mean, "std": std}
    model = studio.wrap_model(net, card=card)
    x = block_images(3, n=2, seed=5)
    exp = studio.explain(model, image_dataset(x), "saliency", rows=[0, 1], params={"absolute": False}, cache=False)
    w = net[1].weight.detach().numpy().reshape(3, 3, 32, 32)  # (classes, C, H, W)
    b = net[1].bias.detach().numpy()
    m, s = np.asarray(mean)[:, None, None], np.asarray(std)[:, None, None]
    for i, t in enumerate(exp.target):
        z = (w * ((x[i] - m) / s)[None]).reshape(3, -1).sum(1) + b
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        grad = p[t] * (w[t] - np.tensordot(p, w, axes=1)) / s
        np.testing.assert_allclose(exp.values[i], grad, rtol=1e-4, atol=1e-5 * np.abs(grad).max())
        np.testing.assert_allclose(model.output(x[i : i + 1])[0], p, rtol=1e-5)


def test_tabular_saliency_and_ig_on_torch_mlp(mlp, table):
    rows = [0, 1, 2]
    sal = studio.explain(mlp, table, "saliency", rows=rows, cache=False)
    assert sal.values.shape == (3, 30) and sal.feature_names == table.feature_names
    exp = studio.explain(mlp, table, "integrated_gradients", rows=rows, params={"n_steps": 32}, cache=False)
    mean_row = np.repeat(table.numeric_x().mean(axis=0, keepdims=True), 3, axis=0)
    gap, delta = _by_hand_gap(mlp, exp, table.x[rows], mean_row)
    assert exp.values.shape == (3, 30) and exp.values.dtype == np.float64
    assert np.all(gap < 0.01), gap
    np.testing.assert_allclose(exp.base_values, mlp.output(mean_row)[np.arange(3), exp.target], atol=1e-6)


def test_gradients_unavailable_for_onnx_and_sklearn(gbt, mlp_onnx, table):
    for model in (gbt, mlp_onnx):
        info = {(m.name, m.data_kind): m for m in studio.methods(model, table)}
        assert not info[("integrated_gradients", "tabular")].available
        assert "gradients" in info[("saliency", "tabular")].reason
