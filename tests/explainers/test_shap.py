"""SHAP: additivity measured against model.output on every row, for every path."""

from __future__ import annotations

import numpy as np
import pytest
from tabular_models import categorical_table, dataset, diabetes_gbr, diabetes_torch, wine, wine_forest, one_torch_thread  # noqa: F401

import studio
from studio.errors import StudioError
from studio.explainers.shapley import shap_summary

ROWS = [0, 3, 7, 19, 40]


def _gap(model, data, exp):
    """Recompute base + sum(values) - f(x) per row from the model itself."""
    cols = exp.target if exp.target is not None else [0] * len(exp.rows)
    fx = model.output(data.x[exp.rows])[np.arange(len(exp.rows)), [c if c is not None else 0 for c in cols]]
    return np.abs(exp.base_values + exp.values.sum(axis=1) - fx)


def test_tree_path_is_exact_on_probability_for_any_target(gbt, table):
    exp = studio.explain(gbt, table, "shap", rows=ROWS, params={"background": 50}, cache=False)
    assert exp.checks["path_tree"] == 1.0 and exp.values.shape == (5, 30)
    assert np.all(_gap(gbt, table, exp) < 1e-6) and exp.checks["additivity_gap"] < 1e-6
    np.testing.assert_allclose(exp.checks["additivity_gap"], _gap(gbt, table, exp).max(), atol=1e-15)
    # the other class of a binary model: values negate, base is 1 - base
    e0 = studio.explain(gbt, table, "shap", rows=ROWS, target=0, params={"background": 50}, cache=False)
    e1 = studio.explain(gbt, table, "shap", rows=ROWS, target=1, params={"background": 50}, cache=False)
    np.testing.assert_allclose(e0.values, -e1.values, atol=1e-12)
    np.testing.assert_allclose(e0.base_values, 1 - e1.base_values, atol=1e-12)
    assert np.all(_gap(gbt, table, e0) < 1e-6)


def test_tree_path_equals_shap_directly(gbt, table):
    import shap

    exp = studio.explain(gbt, table, "shap", rows=ROWS, target=1, params={"background": 40, "seed": 2}, cache=False)
    bg = table.x[np.sort(np.random.default_rng(2).choice(len(table), 40, replace=False))]
    ref = shap.TreeExplainer(gbt.native, data=bg, feature_perturbation="interventional",
                             model_output="probability")(table.x[ROWS])
    np.testing.assert_allclose(exp.values, ref.values, atol=1e-12)


def test_multiclass_forest_any_target_is_additive():
    model, data = wine_forest()
    for target in (0, 2):
        exp = studio.explain(model, data, "shap", rows=list(range(0, 178, 15)), target=target,
                             params={"background": 60}, cache=False)
        # the tree path is kept only if it is exact; otherwise the permutation path replaced it
        assert exp.checks.get("path_tree", 0) + exp.checks.get("path_permutation", 0) == 1.0
        assert np.all(_gap(model, data, exp) < 1e-6)
        if "tree_interventional_additivity_gap" in exp.checks:
            assert exp.checks["tree_interventional_additivity_gap"] > 1e-3
            assert exp.provenance["algorithm"] in ("tree_path_dependent", "permutation")


def _exact_shapley(f, x, bg):
    """Interventional Shapley values of ``f`` at ``x`` (F,) against background ``bg`` (B, F), by enumerating all
    2^F coalitions with the textbook weights |S|! (F - |S| - 1)! / F! (Shapley 1953; Lundberg & Lee 2017, eq. 8)."""
    from math import factorial

    n_feat = len(x)
    masks = ((np.arange(2 ** n_feat)[:, None] >> np.arange(n_feat)) & 1).astype(bool)  # (2^F, F)
    z = np.where(masks[:, None, :], x[None, None, :], bg[None, :, :]).reshape(-1, n_feat)
    v = f(z).reshape(len(masks), len(bg)).mean(axis=1)  # (2^F,)
    size = masks.sum(axis=1)
    phi = np.zeros(n_feat)
    for i in range(n_feat):
        without = ~masks[:, i]
        s = size[without]
        weight = np.array([factorial(k) * factorial(n_feat - k - 1) for k in s]) / factorial(n_feat)
        phi[i] = np.sum(weight * (v[np.flatnonzero(without) | (1 << i)] - v[without]))
    return phi


@pytest.fixture(scope="module")
def wine_forest_60():
    """A 60-tree forest on the wine table (2 decimals): shap 0.51's own interventional TreeSHAP misses on it."""
    from sklearn.ensemble import RandomForestClassifier

    _, data = wine()
    est = RandomForestClassifier(n_estimators=60, random_state=0).fit(data.frame, data.y)
    return est, data


def test_forest_on_rounded_data_is_exact_interventional(wine_forest_60):
    """shap's float32 rounding of thresholds is undone: interventional TreeSHAP is kept, additive, and equal to
    exact Shapley values computed by enumerating every coalition (shap's ExactExplainer, the same background)."""
    import shap

    est, data = wine_forest_60
    model = studio.wrap_model(est)
    rows, n_bg, seed = [0, 90], 16, 1
    exp = studio.explain(model, data, "shap", rows=rows, target=1, params={"background": n_bg, "seed": seed},
                         cache=False)
    assert exp.provenance["algorithm"] == "tree_interventional", exp.provenance["algorithm_reason"]
    assert "tree_interventional_additivity_gap" not in exp.checks
    assert np.all(_gap(model, data, exp) < 1e-6)
    bg = data.x[np.sort(np.random.default_rng(seed).choice(len(data), n_bg, replace=False))]
    plain = shap.TreeExplainer(est, data=bg, feature_perturbation="interventional", model_output="probability")
    sv = plain(data.x[rows], check_additivity=False)
    plain_gap = np.abs(sv.values.sum(axis=1) + sv.base_values - est.predict_proba(data.x[rows]))
    assert plain_gap.max() > 1e-4  # the fault is really present on this forest when shap is called directly
    np.testing.assert_allclose(exp.values[0], _exact_shapley(lambda z: est.predict_proba(z)[:, 1], data.x[rows[0]], bg),
                               atol=1e-6)


def test_forest_missing_interventional_additivity_takes_path_dependent(wine_forest_60, monkeypatch):
    """When interventional TreeSHAP misses (here: shap's threshold rounding left in place), path-dependent TreeSHAP,
    exact and additive, is used instead and the reason is recorded."""
    import shap

    from studio.explainers import forest_xgboost, shapley

    monkeypatch.setattr(shapley, "_exact_routing",  # shap's own float32 threshold copies: the fault comes back
                        lambda ens, *arrays: (np.asarray(ens.thresholds), [np.asarray(a, float) for a in arrays]))
    monkeypatch.setattr(shapley, "EXACT_TOLERANCE", 1e-6)  # its gaps here (3e-4 on the first row) are under 1e-3
    monkeypatch.setattr(forest_xgboost, "THREADS_PER_GROUP", 10**6)  # shap's own path (XGBoost's: float32)
    est, data = wine_forest_60
    model = studio.wrap_model(est)
    rows = list(range(0, 178, 10))
    exp = studio.explain(model, data, "shap", rows=rows, cache=False)
    assert exp.checks["tree_interventional_additivity_gap"] > shapley.EXACT_TOLERANCE  # the reason, as a number
    assert exp.checks["tree_path_dependent"] == 1.0 and exp.checks["path_tree"] == 1.0
    assert exp.provenance["algorithm"] == "tree_path_dependent"
    assert "interventional TreeSHAP missed additivity" in exp.provenance["algorithm_reason"]
    assert np.all(_gap(model, data, exp) < 1e-9) and exp.checks["additivity_gap"] < 1e-9
    ref = shap.TreeExplainer(est, feature_perturbation="tree_path_dependent")(data.x[rows])
    cols = np.asarray(exp.target)
    np.testing.assert_allclose(exp.values, ref.values[np.arange(len(rows)), :, cols], atol=1e-12)


def test_gradient_boosting_classifier_does_not_take_path_dependent_log_odds():
    """Path-dependent TreeSHAP explains a boosted classifier's log-odds: never kept for the probability."""
    from sklearn.ensemble import GradientBoostingClassifier

    _, data = wine()
    model = studio.wrap_model(GradientBoostingClassifier(n_estimators=10, random_state=0).fit(data.frame, data.y))
    exp = studio.explain(model, data, "shap", rows=[0, 60, 120], params={"background": 30}, cache=False)
    assert exp.provenance["algorithm"] in ("tree_interventional", "permutation")
    assert np.all(_gap(model, data, exp) < 1e-6)


def test_linear_path_equals_the_closed_form():
    from sklearn.linear_model import Ridge

    _, data = diabetes_gbr()
    est = Ridge(alpha=0.1).fit(data.frame, data.y)
    model = studio.wrap_model(est)
    exp = studio.explain(model, data, "shap", rows=ROWS, params={"background": 80, "seed": 1}, cache=False)
    assert exp.checks["path_linear"] == 1.0
    bg = data.x[np.sort(np.random.default_rng(1).choice(len(data), 80, replace=False))]
    want = est.coef_ * (data.x[ROWS] - bg.mean(axis=0))  # interventional linear SHAP
    np.testing.assert_allclose(exp.values, want, rtol=1e-9, atol=1e-9)
    assert exp.checks["additivity_gap_relative"] < 1e-9 and exp.target is None


def test_tree_regression_is_exact_relative_to_scale():
    model, data = diabetes_gbr()
    exp = studio.explain(model, data, "shap", rows=ROWS, params={"background": 50}, cache=False)
    assert exp.checks["path_tree"] == 1.0
    assert np.all(_gap(model, data, exp) < 1e-6 * np.abs(model.output(data.x[ROWS])).max())


def test_permutation_is_exact_on_onnx_and_categorical(mlp_onnx, table):
    exp = studio.explain(mlp_onnx, table, "shap", rows=ROWS[:3], params={"background": 10, "max_evals": 61}, cache=False)
    assert exp.checks["path_permutation"] == 1.0 and np.all(_gap(mlp_onnx, table, exp) < 1e-12)
    model, data = categorical_table()
    exp = studio.explain(model, data, "shap", rows=ROWS, params={"background": 40, "max_evals": 50}, cache=False)
    assert exp.checks["path_permutation"] == 1.0 and np.all(_gap(model, data, exp) < 1e-12)
    assert exp.data is None and exp.values.shape == (5, 3)


def test_kernel_path_is_efficient():
    model, data = wine()
    exp = studio.explain(model, data, "shap", rows=[0, 100], target=1,
                         params={"algorithm": "kernel", "background": 20, "max_evals": 300}, cache=False)
    assert exp.checks["path_kernel"] == 1.0 and np.all(_gap(model, data, exp) < 1e-9)


def test_torch_gradient_path_reports_its_gap_honestly(mlp, table):
    exp = studio.explain(mlp, table, "shap", rows=ROWS[:3], params={"algorithm": "gradient", "background": 20,
                                                                    "nsamples": 50}, cache=False)
    assert exp.checks["path_gradient"] == 1.0
    np.testing.assert_allclose(exp.checks["additivity_gap"], _gap(mlp, table, exp).max(), rtol=1e-9, atol=1e-12)
    # auto keeps expected gradients only when they are additive to 1%; else exact permutation
    auto = studio.explain(mlp, table, "shap", rows=ROWS[:3], params={"background": 10, "max_evals": 61,
                                                                     "nsamples": 50}, cache=False)
    if "path_gradient" in auto.checks:
        assert auto.checks["additivity_gap"] < 1e-2
    else:
        assert auto.checks["gradient_additivity_gap"] >= 1e-2 and np.all(_gap(mlp, table, auto) < 1e-12)


def test_torch_regression():
    model, data = diabetes_torch()
    exp = studio.explain(model, data, "shap", rows=ROWS, params={"algorithm": "permutation", "background": 20,
                                                                 "max_evals": 42}, cache=False)
    scale = np.abs(model.output(data.x[ROWS])).max()  # ~150: float32 batches differ by ~1 ulp
    assert np.all(_gap(model, data, exp) < 1e-8 * scale) and exp.target is None


def test_summary_is_mean_abs_and_beeswarm(gbt, table):
    exp = studio.explain(gbt, table, "shap", rows=list(range(30)), params={"background": 20}, cache=False)
    s = shap_summary(exp)
    np.testing.assert_allclose(s["mean_abs"], np.abs(exp.values).mean(axis=0), atol=0)
    assert np.all(np.diff(s["mean_abs"][s["order"]]) <= 0)
    assert s["values"].shape == s["data"].shape == (30, 30)


def test_bad_params(gbt, mlp, table):
    with pytest.raises(StudioError, match="at least 2 x features"):
        studio.explain(gbt, table, "shap", params={"algorithm": "permutation", "max_evals": 10}, cache=False)
    with pytest.raises(StudioError, match="tree ensembles"):
        studio.explain(mlp, table, "shap", params={"algorithm": "tree"}, cache=False)
    with pytest.raises(StudioError, match="torch model"):
        studio.explain(gbt, table, "shap", params={"algorithm": "gradient"}, cache=False)
    _, data = categorical_table()
    with pytest.raises(StudioError, match="numeric features"):
        model, data = categorical_table()
        studio.explain(model, data, "shap", params={"algorithm": "linear"}, cache=False)
    assert dataset  # shared helper import used by other tests


def test_path_dependent_on_request_equals_shap_and_refuses_log_odds_trees(wine_forest_60, monkeypatch):
    """algorithm='tree_path_dependent' (explainerdashboard's estimand for forests) is shap's own path-dependent
    TreeSHAP, additive on the probability; a boosted classifier (trees of log-odds) is refused in one sentence."""
    import shap
    from sklearn.ensemble import GradientBoostingClassifier

    from studio.explainers import forest_xgboost

    monkeypatch.setattr(forest_xgboost, "THREADS_PER_GROUP", 10**6)  # shap's own path (XGBoost's: float32)

    est, data = wine_forest_60
    rows = [0, 70, 150]
    exp = studio.explain(studio.wrap_model(est), data, "shap", rows=rows, target=2,
                         params={"algorithm": "tree_path_dependent"}, cache=False)
    assert exp.provenance["algorithm"] == "tree_path_dependent" and exp.checks["additivity_gap"] < 1e-9
    ref = shap.TreeExplainer(est)(data.x[rows])
    np.testing.assert_allclose(exp.values, ref.values[:, :, 2], atol=1e-12)
    binary = data.frame.assign(target=(np.asarray(data.y) == 0).astype(int))
    gbc = studio.wrap_model(GradientBoostingClassifier(n_estimators=5, random_state=0).fit(data.frame, binary.target))
    with pytest.raises(StudioError, match="path-dependent TreeSHAP misses additivity"):
        studio.explain(gbc, dataset(binary), "shap", rows=[0], params={"algorithm": "tree_path_dependent"},
                       cache=False)
