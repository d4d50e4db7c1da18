"""How far explainers agree on one instance: rank correlation and top-k overlap.

Pure functions of :class:`~studio.explanation.Explanation` objects, so the
app, the report and scripts give the same numbers.
"""

from __future__ import annotations

import itertools

import numpy as np

from studio.explanation import Explanation


def scores(exp: Explanation, row: int | None = None, segments: np.ndarray | None = None) -> np.ndarray:
    """One importance score per feature (tables) or per region (images).

    Scores are |attribution|: agreement is about which inputs matter.

    Parameters
    ----------
    exp : Explanation
        An attribution explanation.
    row : int, optional
        Dataset row (default the first explained row).
    segments : ndarray of int, shape (H, W), optional
        For images, a superpixel label map: scores are summed |attribution|
        per segment. Without it, images are scored on a 4x4-pixel grid of
        blocks (sum of |attribution| per block).

    Returns
    -------
    ndarray of shape (n_features,) or (n_regions,)
    """
    if exp.kind != "attribution" or exp.values is None:
        raise ValueError(f"{exp.method} ({exp.kind}) has no attributions to rank")
    pos = 0 if row is None or not exp.rows else exp.rows.index(row)
    v = np.abs(np.asarray(exp.values, dtype=float)[pos])
    if v.ndim == 1:
        return v  # (n_features,)
    m = v.sum(axis=0)  # (H, W)
    if segments is not None:
        seg = np.asarray(segments).ravel()
        return np.bincount(seg, weights=m.ravel())  # (n_segments,)
    h, w = m.shape
    b = 4
    hh, ww = -(-h // b), -(-w // b)
    padded = np.zeros((hh * b, ww * b))
    padded[:h, :w] = m
    return padded.reshape(hh, b, ww, b).sum(axis=(1, 3)).ravel()  # (hh * ww,)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two score vectors (average ranks for ties).

    NaN when either vector is constant.
    """
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """|top-k(a) intersect top-k(b)| / k, ties broken by index."""
    k = int(min(k, len(a)))
    if k <= 0:
        return float("nan")
    ta = set(np.argsort(-a, kind="stable")[:k].tolist())
    tb = set(np.argsort(-b, kind="stable")[:k].tolist())
    return len(ta & tb) / k


def agreement_table(explanations, row: int | None = None, k: int = 5, segments=None):
    """Pairwise agreement of attribution explanations on one row.

    Returns
    -------
    pandas.DataFrame
        Columns method_a, method_b, spearman, top_k_overlap, k; one row per
        pair of methods (empty with fewer than two attributions).
    """
    import pandas as pd

    usable = [e for e in explanations if e.kind == "attribution" and e.values is not None]
    sc = {e.method: scores(e, row, segments) for e in usable}
    records = []
    for a, b in itertools.combinations(sc, 2):
        if sc[a].shape != sc[b].shape:
            continue
        records.append({"method_a": a, "method_b": b, "spearman": spearman(sc[a], sc[b]),
                        "top_k_overlap": top_k_overlap(sc[a], sc[b], k), "k": int(min(k, len(sc[a])))})
    return pd.DataFrame.from_records(records, columns=["method_a", "method_b", "spearman", "top_k_overlap", "k"])


def subset_mean(exp: Explanation) -> np.ndarray:
    """Mean attribution over every explained row, shape (n_features,) or (C, H, W)."""
    return np.asarray(exp.values, dtype=float).mean(axis=0)
