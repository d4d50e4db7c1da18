"""Exact path-dependent TreeSHAP of scikit-learn tree ensembles through XGBoost's multithreaded TreeSHAP.

shap's path-dependent TreeSHAP (Lundberg et al. 2018, "Consistent
individualized feature attribution for tree ensembles", Algorithm 2) runs in
one thread. XGBoost implements the same algorithm (``Booster.predict(...,
pred_contribs=True)``) over all cores, so a scikit-learn forest rewritten as
an XGBoost model gets the same values several times faster on a multi-core
machine. The rewrite is exact for float32 inputs (what both libraries
compare):

- split feature as is; threshold: scikit-learn sends ``x`` (float32) left
  when ``x <= t`` (``t`` float64), XGBoost when ``x < s`` (``s`` float32).
  With ``s`` the next float32 above ``floor32(t)`` (the largest float32 at
  or below ``t``), ``x < s`` exactly when ``x <= floor32(t)``, exactly when
  ``x <= t``;
- a missing value (NaN, scikit-learn >= 1.3) goes where
  ``tree_.missing_go_to_left`` says (XGBoost's ``default_left``);
- leaf values: the leaf's class fractions (classifiers) or value
  (regressors) divided by the number of trees, so the sum over trees is the
  forest's ``predict_proba`` / ``predict``; base score 0;
- cover (``sum_hessian``): ``tree_.weighted_n_node_samples``, which is what
  shap uses for scikit-learn trees (bootstrap counts and sample weights
  included), and what the path-dependent algorithm weighs unseen branches by.

Classifiers with more than two classes get one XGBoost output group per
class; binary classifiers one group (class 1; class 0 is its complement).
XGBoost accumulates in float32, so values agree with shap's float64 ones to
about ``n_trees * depth`` float32 roundings of numbers below 1 (see the
tests), not bit for bit.
"""

from __future__ import annotations

import json
import os

import numpy as np

# The estimators whose ``estimators_`` / ``tree_`` this converts (module, class name).
_FOREST = {"RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor"}
_SINGLE = {"DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier", "ExtraTreeRegressor"}


class Unsupported(Exception):
    """The model is not a tree ensemble this rewrite covers exactly."""


def supported(est) -> bool:
    """Whether :func:`to_booster` can rewrite ``est`` exactly (single-output scikit-learn forests and trees)."""
    name = type(est).__name__
    if not type(est).__module__.startswith("sklearn.") or name not in _FOREST | _SINGLE:
        return False
    if getattr(est, "n_outputs_", 1) != 1:
        return False
    return hasattr(est, "tree_") or hasattr(est, "estimators_")


# XGBoost's TreeSHAP computes one output group per pass, at about 0.7x the speed per thread of shap's one-threaded
# pass, which computes every output at once (50 trees of depth 8, 3,000 rows, 20 features, binary: 6.9-7.2 s for one
# group on one XGBoost thread against 4.9-5.3 s for shap; with 2 threads on the project's 2 shared cores at load 5-7,
# 7.4-8.8 s: no gain; section 15 of benchmarks/RESULTS.md). So it pays only from about 2 threads per group on an idle
# machine. The studio's look-up tables (studio/explainers/fast_treeshap.py) compute the same values exactly on one
# thread at 3.4-6x shap's speed (0.29x its time at 1,000 rows, 0.16x at 10,000; section 15), so XGBoost, whose
# threads do not scale perfectly, needs about 5 threads per group to match them and 8 to win clearly. Not measured
# on a machine with that many cores (none was lent).
THREADS_PER_GROUP = 8


def worthwhile(est) -> bool:
    """Whether :func:`tree_shap` is expected to beat the one-threaded routes (the studio's tables, shap's path) here.

    True when ``est`` is :func:`supported` and the process may use at least
    :data:`THREADS_PER_GROUP` threads per output group (1 for regressors and
    binary classifiers, K for K > 2 classes).
    """
    if not supported(est):
        return False
    k = len(getattr(est, "classes_", ()))
    return _threads() >= THREADS_PER_GROUP * (k if k > 2 else 1)


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def xgboost_thresholds(thresholds: np.ndarray) -> np.ndarray:
    """float32 split values (same shape) for XGBoost's ``x < s`` that route float32 ``x`` as scikit-learn's ``x <= t``.

    ``s = nextafter32(floor32(t), +inf)`` with ``floor32(t)`` the largest
    float32 at or below ``t``.
    """
    from studio.explainers.shapley import _float32_thresholds

    return np.nextafter(_float32_thresholds(thresholds).astype(np.float32), np.float32(np.inf))


def _breadth_first(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """scikit-learn node ids in XGBoost's order: breadth first, each right child right after its left sibling.

    XGBoost's predictor finds the right child as ``left + 1``
    (``RegTree::GetNext``), which scikit-learn's depth-first numbering does
    not keep. Returns ``order`` (n_nodes,): ``order[new_id] = old_id``.
    """
    order, level = [np.zeros(1, np.int64)], np.zeros(1, np.int64)
    while level.size:
        inner = level[left[level] >= 0]
        level = np.stack([left[inner], right[inner]], axis=1).ravel()
        order.append(level)
    return np.concatenate(order)


def _tree_json(tree, values: np.ndarray, tid: int, n_features: int) -> dict:
    """One scikit-learn ``Tree`` as an XGBoost JSON tree with leaf values ``values`` (n_nodes,)."""
    old_left = tree.children_left.astype(np.int64)
    order = _breadth_first(old_left, tree.children_right.astype(np.int64))
    new_id = np.empty_like(order)
    new_id[order] = np.arange(len(order))
    leaf = old_left[order] < 0
    left = np.where(leaf, -1, new_id[np.maximum(old_left[order], 0)])
    right = np.where(leaf, -1, left + 1)
    values = np.asarray(values, dtype=np.float64)[order]
    n = len(order)
    split = np.where(leaf, values, xgboost_thresholds(np.where(leaf, 0.0, tree.threshold[order])).astype(np.float64))
    feature = np.where(leaf, 0, tree.feature[order]).astype(np.int64)
    missing_left = getattr(tree, "missing_go_to_left", None)
    default_left = (np.zeros(n, np.int64) if missing_left is None
                    else np.where(leaf, 0, np.asarray(missing_left)[order].astype(np.int64)))
    parents = np.full(n, 2147483647, dtype=np.int64)
    parents[left[~leaf]] = np.flatnonzero(~leaf)
    parents[right[~leaf]] = np.flatnonzero(~leaf)
    cover = tree.weighted_n_node_samples.astype(np.float64)[order]
    return {
        "base_weights": values.astype(np.float32).tolist(), "categories": [], "categories_nodes": [],
        "categories_segments": [], "categories_sizes": [], "default_left": default_left.tolist(), "id": tid,
        "left_children": left.tolist(), "loss_changes": [0.0] * n,
        "parents": parents.tolist(), "right_children": right.tolist(),
        "split_conditions": split.astype(np.float32).tolist(), "split_indices": feature.tolist(),
        "split_type": [0] * n, "sum_hessian": cover.tolist(),
        "tree_param": {"num_deleted": "0", "num_feature": str(n_features), "num_nodes": str(n),
                       "size_leaf_vector": "1"},
    }


def to_booster(est):
    """The fitted scikit-learn tree ensemble ``est`` as an ``xgboost.Booster`` computing the same output.

    Parameters
    ----------
    est : RandomForest/ExtraTrees classifier or regressor, DecisionTree/ExtraTree classifier or regressor
        Fitted, one output.

    Returns
    -------
    booster : xgboost.Booster
        Its margin (``output_margin=True``) is ``predict_proba[:, 1]`` (binary), ``predict_proba`` (K > 2
        classes, shape (n, K)) or ``predict`` (regressors), to float32 precision.
    n_groups : int
        1, or K for multi-class classifiers.

    Raises
    ------
    Unsupported
        ``est`` is not a single-output scikit-learn forest or tree (see :func:`supported`).
    """
    import xgboost

    if not supported(est):
        raise Unsupported(f"{type(est).__name__} is not a single-output scikit-learn forest or tree")
    trees = [e.tree_ for e in est.estimators_] if hasattr(est, "estimators_") else [est.tree_]
    n_features = int(est.n_features_in_)
    classifier = hasattr(est, "classes_")
    k = len(est.classes_) if classifier else 1
    groups = k if k > 2 else 1
    out, info = [], []
    for tree in trees:
        v = tree.value[:, 0, :].astype(np.float64)  # (n_nodes, K) or (n_nodes, 1)
        if classifier:
            v = v / v.sum(axis=1, keepdims=True)
        v = v / len(trees)
        cols = range(k) if groups > 1 else ([1] if classifier else [0])
        for g, c in enumerate(cols):
            out.append(_tree_json(tree, v[:, c], len(out), n_features))
            info.append(g)
    objective = ({"name": "multi:softprob", "softmax_multiclass_param": {"num_class": str(groups)}} if groups > 1
                 else {"name": "reg:squarederror", "reg_loss_param": {"scale_pos_weight": "1"}})
    base = "[" + ",".join(["0E0"] * groups) + "]"
    model = {"learner": {
        "attributes": {}, "feature_names": [], "feature_types": [],
        "gradient_booster": {"model": {
            "gbtree_model_param": {"num_parallel_tree": "1", "num_trees": str(len(out))},
            "iteration_indptr": list(range(0, len(out) + 1, groups)), "tree_info": info, "trees": out},
            "name": "gbtree"},
        "learner_model_param": {"base_score": base, "boost_from_average": "0", "num_class": str(groups if groups > 1
                                                                                               else 0),
                                "num_feature": str(n_features), "num_target": "1"},
        "objective": objective}, "version": [3, 0, 0]}
    booster = xgboost.Booster(params={"nthread": _threads()})
    booster.load_model(bytearray(json.dumps(model).encode()))
    booster.set_param({"nthread": _threads()})
    return booster, groups


def tree_shap(est, x, booster=None):
    """Path-dependent TreeSHAP of ``est``'s output on rows ``x`` through XGBoost (all cores).

    Parameters
    ----------
    est : scikit-learn forest or tree (see :func:`supported`)
    x : array_like of shape (n, F)
        Rows; NaN is a missing value. Cast to float32, as both libraries do.
    booster : optional ``(booster, n_groups)`` from :func:`to_booster` (rebuilt when None)

    Returns
    -------
    values : ndarray of shape (n, F) or (n, F, K)
        float64 copies of XGBoost's float32 contributions: (n, F) for regressors and binary classifiers
        (class 1), (n, F, K) for K > 2 classes -- shap's ``TreeExplainer.shap_values`` layout.
    base : ndarray of shape (n,) or (n, K)
        The expected value (cover-weighted mean output of the trees) for each row.
    """
    import xgboost

    booster, groups = booster or to_booster(est)
    x = np.asarray(x, dtype=np.float32)
    contribs = booster.predict(xgboost.DMatrix(x, missing=np.nan, nthread=_threads()), pred_contribs=True)
    contribs = np.asarray(contribs, dtype=np.float64)
    if groups > 1:  # (n, K, F + 1)
        return np.transpose(contribs[:, :, :-1], (0, 2, 1)), contribs[:, :, -1]
    return contribs[:, :-1], contribs[:, -1]


def margin(est, x, booster=None) -> np.ndarray:
    """The rewritten model's output on ``x``: (n,) or (n, K), float64 of XGBoost's float32 sum."""
    import xgboost

    booster, _ = booster or to_booster(est)
    dm = xgboost.DMatrix(np.asarray(x, dtype=np.float32), missing=np.nan, nthread=_threads())
    return np.asarray(booster.predict(dm, output_margin=True), dtype=np.float64)
