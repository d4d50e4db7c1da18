"""Rank correlation and top-k overlap against scipy and by hand; perturbations at severity 0."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from studio.quality import perturb, rank_correlation, top_k_overlap
from studio.quality.metrics import magnitudes


def test_rank_correlation_matches_scipy_and_hand():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 4.0])
    # rank differences 0, 1, 1, 0: rho = 1 - 6 * 2 / (4 * (16 - 1)) = 0.8
    assert rank_correlation(a, b) == pytest.approx(0.8)
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=30), rng.normal(size=30)
    y[:5] = y[5]  # ties
    assert rank_correlation(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert rank_correlation(x, -x) == pytest.approx(-1.0)
    assert np.isnan(rank_correlation(np.ones(4), a))


def test_top_k_overlap_by_hand():
    a = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    assert top_k_overlap(a, a[::-1], 2) == 0.0
    assert top_k_overlap(a, a[::-1], 3) == pytest.approx(1 / 3)  # {0,1,2} & {4,3,2}
    assert top_k_overlap(a, a * 7, 4) == 1.0
    assert top_k_overlap(a, np.array([5.0, 1.0, 4.0, 2.0, 3.0]), 2) == 0.5
    assert top_k_overlap(a, a, 99) == 1.0  # k capped at the size


def test_image_magnitudes_sum_channels():
    v = np.zeros((2, 3, 4, 5))
    v[0, 0, 1, 2], v[0, 2, 1, 2] = -1.0, 2.0
    m = magnitudes(v, "image")
    assert m.shape == (2, 20) and m[0, 1 * 5 + 2] == 3.0 and m.sum() == 3.0


def test_severity_zero_is_identity_and_noise_is_seeded():
    x = np.random.default_rng(0).random((4, 1, 8, 8)).astype(np.float32)
    assert np.array_equal(perturb(x, "image", "noise", 0), x)
    assert np.array_equal(perturb(x, "image", "blur", 0), x)
    one, again = perturb(x, "image", "noise", 2, seed=1), perturb(x, "image", "noise", 2, seed=1)
    assert np.array_equal(one, again) and not np.array_equal(one, perturb(x, "image", "noise", 2, seed=2))
    assert one.dtype == x.dtype and one.min() >= 0 and one.max() <= 1
    blurred = perturb(x, "image", "blur", 3)
    assert blurred.std() < x.std()
    t = np.random.default_rng(0).normal(size=(200, 3)) * [1.0, 10.0, 100.0]
    noise = perturb(t, "tabular", "noise", 5, scale=t.std(axis=0)) - t  # sigma 0.5 column stds
    assert noise.std(axis=0) / t.std(axis=0) == pytest.approx([0.5] * 3, rel=0.15)


def test_brightness_shifts_and_clips_images_and_refuses_tables():
    x = np.linspace(0, 1, 2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    got = perturb(x, "image", "brightness", 2)
    assert got.dtype == x.dtype and np.allclose(got, np.clip(x + 0.2, 0, 1))
    with pytest.raises(Exception, match="brightness applies to images"):
        perturb(np.zeros((2, 3)), "tabular", "brightness", 1)


def test_peak_memory_sees_an_allocation_inside_the_block():
    from studio.quality.memory import active, measure

    with measure() as peaks:
        assert active()
        block = np.ones(2_000_000)  # 16 MB through numpy's traced allocator
        del block
    assert not active()
    assert peaks["python_peak_bytes"] >= 16_000_000 and peaks["rss_hwm_delta_bytes"] >= 0
    with measure() as small:
        sum(range(10))
    assert small["python_peak_bytes"] < 1_000_000
