"""Agreement between two attributions of one input: rank correlation and top-k overlap.

Both compare the magnitudes ``|attribution|`` (which features matter, not
in which direction); image attributions are first summed over channels to one
value per pixel, so maps with one channel (Grad-CAM) and three compare alike.
"""

from __future__ import annotations

import numpy as np


def magnitudes(values: np.ndarray, kind: str) -> np.ndarray:
    """Per-row ``|attribution|`` flattened to one vector per row.

    Parameters
    ----------
    values : ndarray of shape (n, n_features) or (n, C, H, W)
    kind : {"tabular", "image"}

    Returns
    -------
    ndarray of shape (n, n_features) or (n, H * W)
    """
    a = np.abs(np.asarray(values, dtype=float))
    if kind == "image":
        a = a.reshape(a.shape[0], -1, a.shape[-2], a.shape[-1]).sum(axis=1)
    return a.reshape(a.shape[0], -1)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two vectors (``scipy.stats.spearmanr``; ties get average ranks).

    Returns NaN when either vector is constant (no ranking to compare).
    """
    from scipy.stats import spearmanr

    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Share of the ``k`` largest entries of ``a`` that are also among the ``k`` largest of ``b``.

    ``|top_k(a) & top_k(b)| / k`` in [0, 1]. Ties at the k-th place are broken
    by position (``numpy.argsort``, stable), the same way for both vectors.
    """
    a, b = np.ravel(a), np.ravel(b)
    k = int(min(max(k, 1), a.size))
    top_a = set(np.argsort(-a, kind="stable")[:k].tolist())
    top_b = set(np.argsort(-b, kind="stable")[:k].tolist())
    return len(top_a & top_b) / k
