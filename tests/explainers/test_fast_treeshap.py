"""Path-dependent TreeSHAP by per-leaf look-up tables (studio/explainers/fast_treeshap.py) against shap's C path.

Both work in float64 on the same parsed model (``shap.TreeExplainer(m).model``) and every term of the tables is
positive, so the values agree to about 1e-15; ``TOL = 1e-9`` leaves room for rounding only. A wrong weight, a
swapped branch or a mis-read threshold moves a value by a share of a leaf value (>= 1e-4 on these forests).
"""

from __future__ import annotations

import numpy as np
import pytest
from tabular_models import dataset

import studio
from studio.explainers import fast_treeshap

TOL = 1e-9


def _table(seed=0, n=500, f=6, decimals=1):
    """Rounded features (many rows tie with thresholds) and a 3-class label and a target with interactions."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(n, f)), decimals)
    score = x[:, 0] + x[:, 1] * x[:, 2] + 0.5 * (x[:, 3] > 0.4)
    return x, (score > 0).astype(int) + (x[:, 3] > 0.4), score + 0.1 * rng.normal(size=n)


def _edge_rows(est, x):
    """Held-out rows plus rows sitting exactly on a split threshold (as float32) and one float32 step either side."""
    trees = [e.tree_ for e in np.ravel(getattr(est, "estimators_", [est]))]
    rows = [x]
    for tree in trees[:3]:
        for node in np.flatnonzero(tree.children_left >= 0)[:15]:
            t32 = np.float32(tree.threshold[node])
            for v in (t32, np.nextafter(t32, np.float32(-np.inf)), np.nextafter(t32, np.float32(np.inf))):
                r = x[len(rows) % len(x)].copy()
                r[tree.feature[node]] = v
                rows.append(r[None])
    return np.concatenate(rows)


def _max_path_repeats(est) -> int:
    """Most splits on one feature along any root-to-leaf path of the ensemble (>1: repeated features)."""
    best = 0
    for tree in (e.tree_ for e in np.ravel(getattr(est, "estimators_", [est]))):
        stack = [(0, ())]
        while stack:
            node, path = stack.pop()
            if tree.children_left[node] < 0:
                best = max([best] + [path.count(f) for f in set(path)])
                continue
            path = path + (tree.feature[node],)
            stack += [(tree.children_left[node], path), (tree.children_right[node], path)]
    return best


@pytest.fixture(scope="module")
def forests():
    """Held-out ensembles trained here: forests of depths 3 to 10, classifiers and regressors, sample weights."""
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.tree import DecisionTreeRegressor

    x, y3, r = _table()
    fit, held = slice(0, 400), slice(400, None)
    weights = np.random.default_rng(1).uniform(0.2, 3.0, 400)
    models = {
        "rf 3-class depth 3": RandomForestClassifier(8, max_depth=3, random_state=0).fit(x[fit], y3[fit]),
        "rf 3-class depth 10": RandomForestClassifier(8, max_depth=10, random_state=0).fit(x[fit], y3[fit]),
        "rf binary weighted": RandomForestClassifier(8, max_depth=6, random_state=1).fit(
            x[fit], y3[fit] > 0, sample_weight=weights),
        "et 3-class depth 7": ExtraTreesClassifier(8, max_depth=7, random_state=0).fit(x[fit], y3[fit]),
        "rf regressor depth 8": RandomForestRegressor(8, max_depth=8, random_state=0).fit(x[fit], r[fit]),
        "et regressor weighted": ExtraTreesRegressor(8, max_depth=5, random_state=0).fit(x[fit], r[fit],
                                                                                          sample_weight=weights),
        "tree regressor depth 9, 2 features": DecisionTreeRegressor(max_depth=9, random_state=0).fit(x[fit, :2],
                                                                                                      r[fit]),
        "gb regressor": GradientBoostingRegressor(n_estimators=10, max_depth=3, random_state=0).fit(x[fit], r[fit]),
        "gb binary": GradientBoostingClassifier(n_estimators=5, max_depth=3, random_state=0).fit(x[fit], y3[fit] > 0),
    }
    return models, x[held]


def _rows(est, held):
    return _edge_rows(est, held[:, :est.n_features_in_])


@pytest.mark.parametrize("name", ["rf 3-class depth 3", "rf 3-class depth 10", "rf binary weighted",
                                  "et 3-class depth 7", "rf regressor depth 8", "et regressor weighted",
                                  "tree regressor depth 9, 2 features", "gb regressor", "gb binary"])
def test_tables_equal_shaps_path_dependent_values_and_are_additive(forests, name):
    import shap

    models, held = forests
    est = models[name]
    x = _rows(est, held)
    explainer = shap.TreeExplainer(est)
    ref = np.asarray(explainer.shap_values(x, check_additivity=False))
    values, base = fast_treeshap.PathTables(explainer.model, x.shape[1]).shap_values(x)
    if ref.ndim == 2:
        ref = ref[:, :, None]
    assert values.shape == ref.shape
    np.testing.assert_allclose(values, ref, rtol=0, atol=TOL)
    np.testing.assert_allclose(base, np.reshape(explainer.expected_value, -1), rtol=0, atol=TOL)
    if name.startswith("gb"):  # trees of the raw score (log-odds for the classifier)
        out = est.decision_function(x) if hasattr(est, "decision_function") else est.predict(x)
    else:
        out = est.predict_proba(x) if hasattr(est, "predict_proba") else est.predict(x)
    out = np.reshape(out, (len(x), -1))
    np.testing.assert_allclose(values.sum(axis=1) + base, out, rtol=0, atol=TOL)


def test_the_test_forests_repeat_features_on_a_path_and_tie_thresholds(forests):
    models, held = forests
    assert _max_path_repeats(models["tree regressor depth 9, 2 features"]) >= 4
    assert _max_path_repeats(models["rf 3-class depth 10"]) >= 2
    est = models["rf 3-class depth 3"]
    x = _rows(est, held).astype(np.float32)
    tree = est.estimators_[0].tree_
    assert np.any(x[:, tree.feature[0]] == np.float32(tree.threshold[0]))  # a row exactly on a split


def test_missing_values_follow_the_default_branch_as_in_shap():
    """scikit-learn forests trained on NaN send a missing value where ``missing_go_to_left`` says; so does shap."""
    import shap
    from sklearn.ensemble import RandomForestClassifier

    x, y, _ = _table(seed=2, n=300, f=5)
    x[np.random.default_rng(0).random(x.shape) < 0.15] = np.nan
    est = RandomForestClassifier(6, max_depth=6, random_state=0).fit(x[:200], y[:200])
    explainer = shap.TreeExplainer(est)
    held = x[200:]
    assert np.isnan(held).any()
    values, base = fast_treeshap.PathTables(explainer.model, 5).shap_values(held)
    np.testing.assert_allclose(values, explainer.shap_values(held, check_additivity=False), rtol=0, atol=TOL)
    np.testing.assert_allclose(values.sum(axis=1) + base, est.predict_proba(held), rtol=0, atol=TOL)


def _swap_first_split(ensemble):
    ensemble.children_left[0, 0], ensemble.children_right[0, 0] = (ensemble.children_right[0, 0],
                                                                   ensemble.children_left[0, 0])


@pytest.mark.parametrize("broken", ["too few quadrature nodes", "swapped branch", "cover of the wrong child"])
def test_a_broken_variant_fails_the_comparison(forests, broken, monkeypatch):
    """The comparison above can fail: each of these mistakes moves some value by far more than TOL."""
    import copy

    import shap

    est = forests[0]["rf 3-class depth 10"]
    x = _rows(est, forests[1])
    explainer = shap.TreeExplainer(est)
    ref = explainer.shap_values(x, check_additivity=False)
    ensemble = copy.deepcopy(explainer.model)
    if broken == "too few quadrature nodes":  # exact only with ceil(d / 2) nodes
        monkeypatch.setattr(fast_treeshap, "_quadrature", lambda d: np.polynomial.legendre.leggauss(max(1, d // 2 - 1)))
    elif broken == "swapped branch":
        _swap_first_split(ensemble)
    else:
        node = int(np.flatnonzero(ensemble.children_left[0] >= 0)[1])
        left, right = ensemble.children_left[0, node], ensemble.children_right[0, node]
        w = ensemble.node_sample_weight[0]
        w[left], w[right] = w[right], w[left]
    values, _ = fast_treeshap.PathTables(ensemble, x.shape[1]).shap_values(x)
    assert np.max(np.abs(values - ref)) > 1e-4


def test_guards_refuse_deep_paths_and_tables_over_budget(forests):
    import shap
    from sklearn.ensemble import RandomForestRegressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 40))
    deep = RandomForestRegressor(2, random_state=0).fit(x, x @ rng.normal(size=40))  # unlimited depth, 40 features
    with pytest.raises(fast_treeshap.Unsupported, match="more than 14 distinct features"):
        fast_treeshap.PathTables(shap.TreeExplainer(deep).model, 40, budget_bytes=1 << 60)
    est = forests[0]["rf 3-class depth 10"]
    with pytest.raises(fast_treeshap.Unsupported, match="budget"):
        fast_treeshap.PathTables(shap.TreeExplainer(est).model, 6, budget_bytes=1 << 16)
    tables = fast_treeshap.PathTables(shap.TreeExplainer(est).model, 6)
    assert tables.worthwhile(2000) and not tables.worthwhile(1)  # one row: shap's own path is quicker


def _frame(est, x):
    import pandas as pd

    return pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])]).assign(target=est.predict(x))


def test_studio_takes_the_tables_route_for_many_rows_and_shaps_for_few(forests, monkeypatch):
    """``algorithm="tree_path_dependent"``: the route is flagged in checks, the values equal shap's on either
    route."""
    import copy

    import shap

    from studio.explainers import forest_xgboost

    monkeypatch.setattr(forest_xgboost, "THREADS_PER_GROUP", 10**6)  # the XGBoost route off, as on a small machine
    est = forests[0]["et 3-class depth 7"]
    held = forests[1]
    data = dataset(_frame(est, held))
    model = studio.wrap_model(est)
    params = {"algorithm": "tree_path_dependent"}
    ref = shap.TreeExplainer(est).shap_values(held.astype(np.float32).astype(np.float64), check_additivity=False)
    many = studio.explain(model, data, "shap", rows=range(len(held)), params=params, cache=False)
    assert many.checks["tree_path_dependent_tables"] == 1.0 and many.checks["additivity_gap"] < TOL
    assert "background_rows" not in many.checks  # path-dependent TreeSHAP reads no background rows
    assert "look-up tables" in many.provenance["algorithm_reason"]
    cols = np.asarray(many.target)
    np.testing.assert_allclose(many.values, ref[np.arange(len(held)), :, cols], rtol=0, atol=TOL)
    few = studio.explain(studio.wrap_model(copy.deepcopy(est)), data, "shap", rows=[3], params=params, cache=False)
    assert "tree_path_dependent_tables" not in few.checks  # building tables for one row costs more than shap's path
    np.testing.assert_allclose(few.values, ref[[3], :, few.target], rtol=0, atol=TOL)
    again = studio.explain(model, data, "shap", rows=[3], params=params, cache=False)
    assert again.checks["tree_path_dependent_tables"] == 1.0  # once built, the model's tables are kept
    np.testing.assert_allclose(again.values, few.values, rtol=0, atol=TOL)


def test_tables_route_through_the_sandbox_equals_in_process(forests, tmp_path):
    """The default load runs the explainer in the worker: the same values and route flag come back."""
    import skops.io as sio

    est = forests[0]["rf binary weighted"]
    held = forests[1]
    path = tmp_path / "forest.skops"
    sio.dump(est, path)
    data = dataset(_frame(est, held))
    params = {"algorithm": "tree_path_dependent"}
    rows = range(len(held))
    remote = studio.explain(studio.load_model(path), data, "shap", rows=rows, params=params, cache=False)
    local = studio.explain(studio.load_model(path, sandbox="off"), data, "shap", rows=rows, params=params,
                           cache=False)
    route = ("tree_path_dependent_tables", "tree_path_dependent_xgboost")  # XGBoost's on a machine with many cores
    assert any(local.checks.get(key) == 1.0 for key in route)
    assert all(remote.checks.get(key) == local.checks.get(key) for key in route)
    np.testing.assert_array_equal(remote.values, local.values)
    np.testing.assert_array_equal(remote.base_values, local.base_values)
