"""Method agreement: Spearman rank correlation and top-k overlap."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from studio import Explanation
from studio.agreement import agreement_table, scores, spearman, top_k_overlap


def _exp(method, values, rows=(0,)):
    values = np.asarray(values, dtype=float)
    return Explanation(method, "attribution", rows=list(rows), feature_names=[f"f{i}" for i in range(values.shape[1])]
                       if values.ndim == 2 else None, values=values, base_values=np.zeros(len(values)))


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.integers(0, 5, 12).astype(float), rng.normal(size=12)
        np.testing.assert_allclose(spearman(a, b), spearmanr(a, b).statistic, atol=1e-12)
    assert np.isnan(spearman(np.ones(4), np.arange(4.0)))


def test_top_k_overlap():
    a = np.array([5.0, 4, 3, 2, 1])
    assert top_k_overlap(a, a, 3) == 1.0
    assert top_k_overlap(a, a[::-1], 2) == 0.0
    assert top_k_overlap(a, np.array([5.0, 0, 3, 2, 1]), 2) == 0.5


def test_agreement_uses_absolute_values_on_the_chosen_row():
    x = _exp("shap", [[0.0, 0, 0, 0], [3.0, -2, 1, 0]], rows=(4, 9))
    y = _exp("lime", [[-30.0, 20, 10, 0]], rows=(9,))
    table = agreement_table([x, y], row=9, k=2)
    assert len(table) == 1
    assert table.loc[0, "spearman"] == 1.0 and table.loc[0, "top_k_overlap"] == 1.0
    z = _exp("occ", [[0.0, 1, 2, 3]], rows=(9,))
    t2 = agreement_table([x, z], row=9, k=2)
    assert t2.loc[0, "spearman"] == -1.0 and t2.loc[0, "top_k_overlap"] == 0.0


def test_image_scores_by_blocks_and_segments():
    v = np.zeros((1, 2, 8, 8))
    v[0, 0, :4, :4] = 1.0
    v[0, 1, 4:, 4:] = -2.0
    exp = _exp("saliency", v)
    s = scores(exp)
    np.testing.assert_array_equal(s, [16.0, 0, 0, 32.0])
    seg = np.zeros((8, 8), dtype=int)
    seg[:, 4:] = 1
    np.testing.assert_array_equal(scores(exp, segments=seg), [16.0, 32.0])
