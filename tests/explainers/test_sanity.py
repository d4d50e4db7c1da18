"""Model-randomisation sanity check (Adebayo et al. 2018) on the sample TorchScript CNN."""

from __future__ import annotations

import numpy as np
import pytest

import studio
from studio.explainers.sanity import spearman, ssim

ROWS = [0, 1]


def _state(model):
    return {k: v.detach().clone() for k, v in model.native.state_dict().items()}


def test_saliency_and_grad_cam_depend_on_the_model_and_leave_it_untouched(cnn, digits):
    before = _state(cnn)
    for method in ("saliency", "grad_cam"):
        exp = studio.explain(cnn, digits, "model_randomisation", rows=ROWS, params={"method": method}, cache=False)
        steps = [k for k in exp.checks if k.startswith("spearman_after_")]
        assert steps == ["spearman_after_10", "spearman_after_6", "spearman_after_3", "spearman_after_0"]  # top first
        assert exp.checks["spearman_full"] < 0.5 and exp.checks["does_not_depend_on_model"] == 0.0, exp.checks
        assert exp.checks["ssim_full"] < 0.5
        plain = studio.explain(cnn, digits, method, rows=ROWS, cache=False)
        np.testing.assert_allclose(exp.values, plain.values, rtol=1e-6, atol=1e-12)  # the trained-model maps
    after = _state(cnn)
    assert all(np.array_equal(before[k].numpy(), after[k].numpy()) for k in before)


def test_input_times_gradient_is_flagged_as_the_paper_found(cnn, digits):
    """x * grad maps keep the input's shape (zero on the black background) whatever the weights."""
    exp = studio.explain(cnn, digits, "model_randomisation", rows=ROWS, params={"method": "input_x_gradient"}, cache=False)
    assert exp.checks["spearman_full"] > 0.5 and exp.checks["does_not_depend_on_model"] == 1.0
    again = studio.explain(cnn, digits, "model_randomisation", rows=ROWS, params={"method": "input_x_gradient"}, cache=False)
    assert again.checks == exp.checks  # the random weights are seeded


def test_similarity_measures():
    rng = np.random.default_rng(0)
    a = rng.random((1, 16, 16))
    assert spearman(a, a) == pytest.approx(1.0) and ssim(a, a) == pytest.approx(1.0)
    assert spearman(a, 2 * a + 1) == pytest.approx(1.0)  # ranks only
    assert spearman(a, -a) == pytest.approx(-1.0)
    b = rng.random((1, 16, 16))
    assert abs(spearman(a, b)) < 0.2 and ssim(a, b) < 0.3
