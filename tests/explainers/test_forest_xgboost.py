"""scikit-learn forests rewritten as XGBoost models: the same predictions and the same path-dependent TreeSHAP.

Tolerances: XGBoost stores split values and leaf values in float32 and sums
the trees' outputs and the TreeSHAP path weights in float32 (machine epsilon
1.2e-7), while scikit-learn and shap work in float64. A probability is a sum
of T leaf values below 1/T, so its float32 sum is off by at most about
T * 2^-24 ~ 1e-6 for T = 20 trees (measured: 4e-7); SHAP values carry the
same order of error (measured: 1.3e-7). ``TOL = 2e-6`` on probabilities,
times the output's magnitude for regressors. A wrong threshold or branch
moves a value by a whole leaf's share (>= 1e-3 here), far above it.
"""

from __future__ import annotations

import numpy as np
import pytest
from tabular_models import dataset

import studio
from studio.explainers import forest_xgboost

TOL = 2e-6


def _table(seed=0, n=700, f=6):
    """Rounded features (many rows tie with the midpoint thresholds) and a 3-class label with interactions."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(n, f)), 1)
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int) + (x[:, 3] > 0.4)
    return x, y


def _edge_rows(est, x):
    """Held-out rows plus rows whose features sit exactly on a split threshold (as float32) and one float32 step
    either side of it."""
    trees = [e.tree_ for e in getattr(est, "estimators_", [est])]
    rows = [x]
    for tree in trees[:3]:
        inner = np.flatnonzero(tree.children_left >= 0)[:20]
        for node in inner:
            t32 = np.float32(tree.threshold[node])
            for v in (t32, np.nextafter(t32, np.float32(-np.inf)), np.nextafter(t32, np.float32(np.inf))):
                r = x[len(rows) % len(x)].copy()
                r[tree.feature[node]] = v
                rows.append(r[None])
    return np.concatenate(rows).astype(np.float32).astype(np.float64)


@pytest.fixture(scope="module")
def forests():
    from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
    from sklearn.tree import DecisionTreeClassifier

    x, y = _table()
    fit, held = x[:500], x[500:]
    weights = np.random.default_rng(1).uniform(0.2, 3.0, len(fit))
    models = {
        "binary": RandomForestClassifier(20, max_depth=7, random_state=0).fit(fit, y[:500] > 0),
        "3-class": RandomForestClassifier(20, max_depth=7, random_state=0).fit(fit, y[:500]),
        "3-class weighted": RandomForestClassifier(15, max_depth=6, random_state=1).fit(fit, y[:500],
                                                                                        sample_weight=weights),
        "regressor": RandomForestRegressor(20, max_depth=8, random_state=0).fit(fit, 10 * fit[:, 0] + y[:500]),
        "extra trees": ExtraTreesClassifier(20, max_depth=9, random_state=0).fit(fit, y[:500]),
        "extra trees regressor": ExtraTreesRegressor(15, random_state=0).fit(fit, fit[:, 1] * fit[:, 2]),
        "decision tree": DecisionTreeClassifier(max_depth=10, random_state=0).fit(fit, y[:500] > 0),
    }
    nan_fit = fit.copy()
    nan_fit[np.random.default_rng(2).random(nan_fit.shape) < 0.15] = np.nan
    models["missing values"] = RandomForestClassifier(20, max_depth=7, random_state=0).fit(nan_fit, y[:500] > 0)
    nan_held = held.copy()
    nan_held[np.random.default_rng(3).random(nan_held.shape) < 0.2] = np.nan
    return models, held, nan_held


def _output(est, x):
    if not hasattr(est, "classes_"):
        return est.predict(x)
    p = est.predict_proba(x)
    return p[:, 1] if p.shape[1] == 2 else p


def _rows(name, est, held, nan_held):
    return nan_held if name == "missing values" else _edge_rows(est, held)


def test_rewritten_forest_predicts_the_forest_output(forests):
    """The XGBoost model's margin equals predict_proba / predict on held-out rows and on thresholds exactly."""
    models, held, nan_held = forests
    for name, est in models.items():
        x = _rows(name, est, held, nan_held)
        out = _output(est, x)
        got = forest_xgboost.margin(est, x)
        scale = max(1.0, float(np.max(np.abs(out))))
        np.testing.assert_allclose(got, out, rtol=0, atol=TOL * scale, err_msg=name)


def test_xgboost_tree_shap_equals_shap_path_dependent(forests):
    """Values and base values equal shap.TreeExplainer(est).shap_values (path-dependent), and add up to the
    model's own output."""
    import shap

    models, held, nan_held = forests
    for name, est in models.items():
        x = _rows(name, est, held, nan_held)[:150]
        values, base = forest_xgboost.tree_shap(est, x)
        explainer = shap.TreeExplainer(est)
        ref = np.asarray(explainer.shap_values(x, check_additivity=False))
        ref_base = np.asarray(explainer.expected_value, dtype=np.float64)
        if hasattr(est, "classes_") and len(est.classes_) == 2:
            ref, ref_base = ref[..., 1], ref_base[1]
        out = _output(est, x)
        scale = max(1.0, float(np.max(np.abs(out))))
        assert values.shape == ref.shape, name
        np.testing.assert_allclose(values, ref, rtol=0, atol=TOL * scale, err_msg=name)
        np.testing.assert_allclose(base, np.broadcast_to(ref_base, base.shape), rtol=0, atol=TOL * scale,
                                   err_msg=name)
        np.testing.assert_allclose(base + values.sum(axis=1), out, rtol=0, atol=TOL * scale, err_msg=name)


def test_thresholds_route_float32_inputs_like_scikit_learn():
    """x < s exactly when x <= t, for float32 x at, below and above t (float64, often not a float32)."""
    t = np.array([0.15, 0.25, 1 / 3, -2.05, 5.0, 1e-30])
    s = forest_xgboost.xgboost_thresholds(t)
    assert s.dtype == np.float32
    for v in np.concatenate([t.astype(np.float32), np.nextafter(t.astype(np.float32), np.float32(np.inf)),
                             np.nextafter(t.astype(np.float32), np.float32(-np.inf))]):
        np.testing.assert_array_equal(v < s, np.float64(v) <= t)


def test_studio_tree_path_uses_xgboost_and_falls_back_to_shap(forests, monkeypatch):
    """The studio's path-dependent TreeSHAP goes through XGBoost (flagged in checks) and keeps its additivity check;
    where XGBoost is not worthwhile or fails, shap's own path gives the same values."""
    import pandas as pd

    models, held, _ = forests
    est = models["3-class"]
    frame = pd.DataFrame(held, columns=[f"x{i}" for i in range(held.shape[1])]).assign(target=est.predict(held))
    data = dataset(frame)
    model = studio.wrap_model(est)
    rows = list(range(0, 200, 9))
    params = {"algorithm": "tree_path_dependent"}
    monkeypatch.setattr(forest_xgboost, "THREADS_PER_GROUP", 0)
    fast = studio.explain(model, data, "shap", rows=rows, params=params, cache=False)
    assert fast.checks["tree_path_dependent_xgboost"] == 1.0 and fast.checks["additivity_gap"] < 1e-6
    assert "XGBoost" in fast.provenance["algorithm_reason"]
    monkeypatch.setattr(forest_xgboost, "THREADS_PER_GROUP", 10**6)
    slow = studio.explain(model, data, "shap", rows=rows, params=params, cache=False)
    assert "tree_path_dependent_xgboost" not in slow.checks and slow.checks["additivity_gap"] < 1e-9
    np.testing.assert_allclose(fast.values, slow.values, rtol=0, atol=TOL)

    def broken(*args, **kwargs):
        raise ValueError("unforeseen layout")

    monkeypatch.setattr(forest_xgboost, "THREADS_PER_GROUP", 0)
    monkeypatch.setattr(forest_xgboost, "tree_shap", broken)
    fallback = studio.explain(model, data, "shap", rows=rows, params=params, cache=False)
    assert "tree_path_dependent_xgboost" not in fallback.checks
    np.testing.assert_allclose(fallback.values, slow.values, rtol=0, atol=1e-12)


def test_unsupported_estimators_are_refused():
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestRegressor

    x, y = _table(n=80)
    assert not forest_xgboost.supported(GradientBoostingClassifier(n_estimators=2).fit(x, y))
    two_outputs = RandomForestRegressor(3, random_state=0).fit(x, np.stack([x[:, 0], x[:, 1]], axis=1))
    assert not forest_xgboost.supported(two_outputs)
    with pytest.raises(forest_xgboost.Unsupported):
        forest_xgboost.to_booster(two_outputs)
