"""PDP/ICE equal scikit-learn; ALE recovers known answers and matches a direct loop."""

from __future__ import annotations

import numpy as np
import pytest
from tabular_models import categorical_table, correlated_table, diabetes_gbr, function_model, one_torch_thread  # noqa: F401

import studio
from studio.errors import StudioError
from studio.explainers.curves import ale_1d, ale_2d, ale_categorical, category_order
from studio.explainers.tabular_utils import feature_grid


def _pdp(model, data, **params):
    return studio.explain(model, data, "pdp", params=params, cache=False)


# ---- PDP / ICE against scikit-learn -----------------------------------------------------------------
def test_pdp_equals_sklearn_on_gbt(gbt, table):
    from sklearn.inspection import partial_dependence

    exp = _pdp(gbt, table, features=["mean radius", "worst area:mean texture"], grid="uniform", grid_resolution=15,
               max_rows=0)
    ref = partial_dependence(gbt.native, table.frame, ["mean radius"], method="brute", grid_resolution=15)
    np.testing.assert_allclose(exp.curves[0].grid[0], ref["grid_values"][0], rtol=0, atol=0)
    np.testing.assert_allclose(exp.curves[0].average, ref["average"][0], rtol=0, atol=1e-12)
    ref2 = partial_dependence(gbt.native, table.frame, ["worst area", "mean texture"], method="brute",
                              grid_resolution=15)
    assert exp.curves[1].average.shape == (15, 15)
    np.testing.assert_allclose(exp.curves[1].average, ref2["average"][0], rtol=0, atol=1e-12)


def test_pdp_quantile_grid_equals_sklearn_custom_values_and_ale_edges(gbt, table):
    from sklearn.inspection import partial_dependence

    pdp = _pdp(gbt, table, features=["worst concave points"], grid_resolution=12, max_rows=0)
    ale = studio.explain(gbt, table, "ale", params={"features": ["worst concave points"], "grid_resolution": 12,
                                                     "max_rows": 0}, cache=False)
    grid = pdp.curves[0].grid[0]
    np.testing.assert_array_equal(grid, ale.curves[0].grid[0])  # one grid for both curves
    ref = partial_dependence(gbt.native, table.frame, ["worst concave points"], method="brute",
                             custom_values={"worst concave points": grid})
    np.testing.assert_allclose(pdp.curves[0].average, ref["average"][0], rtol=0, atol=1e-12)


def test_pdp_and_ice_equal_sklearn_on_regression_and_target_class():
    from sklearn.inspection import partial_dependence

    model, data = diabetes_gbr()
    exp = studio.explain(model, data, "ice", params={"features": ["bmi"], "grid": "uniform", "grid_resolution": 10,
                                                      "max_rows": 0}, cache=False)
    ref = partial_dependence(model.native, data.frame, ["bmi"], method="brute", grid_resolution=10, kind="both")
    curve = exp.curves[0]
    np.testing.assert_allclose(curve.average, ref["average"][0], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(curve.individual, ref["individual"][0], rtol=1e-12, atol=1e-9)
    assert curve.individual.shape == (len(data), 10) and curve.extra["scale"] == "prediction"


def test_pdp_multiclass_any_target():
    from sklearn.inspection import partial_dependence
    from tabular_models import wine

    model, data = wine()
    ref = partial_dependence(model.native, data.frame, ["proline"], method="brute", grid_resolution=8)
    for target in (0, 2):
        exp = studio.explain(model, data, "pdp", target=target, cache=False,
                             params={"features": ["proline"], "grid": "uniform", "grid_resolution": 8, "max_rows": 0})
        np.testing.assert_allclose(exp.curves[0].average, ref["average"][target], atol=1e-12)
        assert exp.target == [target]


def test_pdp_categorical_equals_sklearn():
    from sklearn.inspection import partial_dependence

    model, data = categorical_table()
    exp = _pdp(model, data, features=["colour", "colour:size"], grid="uniform", grid_resolution=6, max_rows=0)
    ref = partial_dependence(model.native, data.frame, ["colour"], categorical_features=["colour"],
                             method="brute", grid_resolution=6)
    assert exp.curves[0].categorical and list(exp.curves[0].grid[0]) == list(ref["grid_values"][0])
    np.testing.assert_allclose(exp.curves[0].average, ref["average"][0], atol=1e-12)
    ref2 = partial_dependence(model.native, data.frame, ["colour", "size"], categorical_features=["colour"],
                              method="brute", grid_resolution=6)
    np.testing.assert_allclose(exp.curves[1].average, ref2["average"][0], atol=1e-12)


def test_torch_and_onnx_pdp_equal_a_direct_loop(mlp, mlp_onnx, table):
    params = {"features": ["mean texture"], "grid_resolution": 5, "max_rows": 40, "seed": 1}
    got_t = studio.explain(mlp, table, "ice", params=params, cache=False).curves[0]
    got_o = studio.explain(mlp_onnx, table, "ice", params=params, cache=False).curves[0]
    rows = np.sort(np.random.default_rng(1).choice(len(table), 40, replace=False))
    j = table.feature_names.index("mean texture")
    want = np.empty((40, len(got_t.grid[0])))
    for i, r in enumerate(rows):  # one model call per row per grid point: the slow obvious way
        for k, v in enumerate(got_t.grid[0]):
            x = table.x[r].copy()
            x[j] = v
            want[i, k] = mlp.output(x[None])[0, 1]
    # float32 networks: a batch of 200 and a batch of 1 take different kernels (~1e-7 apart)
    np.testing.assert_allclose(got_t.individual, want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got_t.average, want.mean(axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got_o.individual, want, rtol=1e-5, atol=1e-6)


# ---- ALE: known answers ------------------------------------------------------------------------------
def test_ale_of_linear_term_is_a_times_x_centred():
    data = correlated_table(n=500, seed=2, n_features=2)
    model = function_model("linear_plus_sin", 2)
    exp = studio.explain(model, data, "ale", params={"features": ["x1", "x2"], "grid_resolution": 25, "max_rows": 0},
                         cache=False)
    c = exp.curves[0]
    z = c.grid[0]
    np.testing.assert_allclose(np.diff(c.average), 2.5 * np.diff(z), rtol=1e-12, atol=1e-12)
    counts = np.asarray(c.extra["counts"])
    centre = np.sum((c.average[:-1] + c.average[1:]) / 2 * counts) / counts.sum()
    assert abs(centre) < 1e-12
    # the x2 term is recovered up to a constant at every bin edge
    z2 = exp.curves[1].grid[0]
    gap = exp.curves[1].average - np.sin(3 * z2)
    np.testing.assert_allclose(gap, gap[0], atol=1e-12)


def test_ale_recovers_additive_terms_with_correlated_features_where_pdp_is_biased():
    data = correlated_table(n=600, seed=3)
    exact = {"x1": lambda z: z ** 2, "x2": lambda z: np.exp(z / 2), "x3": lambda z: -3 * z}
    additive = function_model("additive", 3)
    params = {"features": ["x1", "x2", "x3"], "grid_resolution": 20, "max_rows": 0}
    ale = studio.explain(additive, data, "ale", params=params, cache=False)
    pdp = studio.explain(additive, data, "pdp", params=params, cache=False)
    for a, p in zip(ale.curves, pdp.curves):
        np.testing.assert_array_equal(a.grid[0], p.grid[0])
        for curve in (a, p):  # for an exactly additive model both recover the term
            gap = curve.average - exact[curve.feature](curve.grid[0])
            np.testing.assert_allclose(gap, gap[0], atol=1e-12)
    # additive ON the data only (x1 ~ x2): f = x1 + x2^2 + 4 (x1 - x2)^2. ALE uses the data's
    # neighbourhood and sees x1 + x2^2; PDP averages over x2 far from x1 and picks up 4 E[(z - x2)^2].
    manifold = function_model("manifold", 3)
    ale = studio.explain(manifold, data, "ale", params={**params, "features": ["x1"]}, cache=False).curves[0]
    pdp = studio.explain(manifold, data, "pdp", params={**params, "features": ["x1"]}, cache=False).curves[0]
    z = ale.grid[0]

    def err(curve):
        gap = curve.average - z
        return np.abs(gap - gap.mean()).max()

    assert err(ale) < 0.05  # small: local (x1 - x2) differences are noise-sized (sd 0.05)
    assert err(pdp) > 1.0  # biased: 4 (z - x2)^2 averaged over all x2 is a parabola in z
    assert err(pdp) > 30 * err(ale)


def test_second_order_ale_known_answers():
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (400, 2))
    x[:, 1] = 0.6 * x[:, 0] + 0.4 * x[:, 1]  # correlated, some empty cells
    e1, e2 = feature_grid(x[:, 0], 8), feature_grid(x[:, 1], 8)
    inter = function_model("interaction", 2)
    f = lambda z: inter.output(z)[:, 0]  # noqa: E731
    ale, counts = ale_2d(f, x, 0, 1, e1, e2)
    assert ale.shape == (8, 8) and counts.sum() == 400 and (counts == 0).any()
    # the mixed second difference of 1.7 x1 x2 is 1.7 dz1 dz2 in every non-empty cell (main effects drop out)
    mixed = ale[1:, 1:] - ale[1:, :-1] - ale[:-1, 1:] + ale[:-1, :-1]
    full = counts > 0
    np.testing.assert_allclose(mixed[full], (1.7 * np.outer(np.diff(e1), np.diff(e2)))[full], atol=1e-12)
    centre = np.sum(counts * (ale[:-1, :-1] + ale[:-1, 1:] + ale[1:, :-1] + ale[1:, 1:]) / 4)
    assert abs(centre) < 1e-12
    # an additive function has no interaction
    additive = function_model("additive", 3)
    x3 = np.c_[x, rng.uniform(-1, 1, 400)]
    zero, _ = ale_2d(lambda z: additive.output(z)[:, 0], x3, 0, 1, e1, e2)
    np.testing.assert_allclose(zero, 0.0, atol=1e-12)


def test_categorical_ale_recovers_category_effect():
    rng = np.random.default_rng(5)
    n = 400
    cats = np.array(["a", "b", "c", "d"], dtype=object)
    c = cats[rng.integers(0, 4, n)]
    level = {"a": 0.0, "b": 1.0, "c": 2.0, "d": 3.0}
    num = np.array([level[v] for v in c]) + rng.normal(0, 0.3, n)  # correlated with the category
    x = np.empty((n, 2), dtype=object)
    x[:, 0], x[:, 1] = c, num
    effect = {"a": 0.5, "b": -1.0, "c": 2.0, "d": 0.0}

    def f(z):
        return np.array([effect[v] for v in z[:, 0]]) + 2 * z[:, 1].astype(float)

    order = category_order(x, 0, cats, [True, False])
    assert list(cats[order]) in (["a", "b", "c", "d"], ["d", "c", "b", "a"])  # follows the numeric feature
    ale, counts = ale_categorical(f, x, 0, cats, order)
    want = np.array([effect[v] for v in cats[order]])
    np.testing.assert_allclose(ale - ale[0], want - want[0], atol=1e-12)
    assert abs(np.sum(ale * counts)) < 1e-9 and counts.sum() == n


def test_categorical_ale_through_the_api():
    model, data = categorical_table()
    exp = studio.explain(model, data, "ale", params={"features": ["colour", "size"], "max_rows": 0}, cache=False)
    c = exp.curves[0]
    assert c.categorical and sorted(map(str, c.grid[0])) == ["black", "blue", "green", "red"]
    with pytest.raises(StudioError, match="two numeric"):
        studio.explain(model, data, "ale", params={"features": ["colour:size"]}, cache=False)


def _ale_loop(model, x, j, edges, target):
    """Independent reference: ALEPlot's first-order ALE written as plain loops over rows."""
    k = len(edges) - 1
    sums, counts = np.zeros(k), np.zeros(k)
    for row in x:
        b = 0
        while b < k - 1 and row[j] > edges[b + 1]:
            b += 1
        lo, hi = row.copy(), row.copy()
        lo[j], hi[j] = edges[b], edges[b + 1]
        sums[b] += model.output(hi[None])[0, target] - model.output(lo[None])[0, target]
        counts[b] += 1
    acc = [0.0]
    for b in range(k):
        acc.append(acc[-1] + (sums[b] / counts[b] if counts[b] else 0.0))
    acc = np.array(acc)
    return acc - sum((acc[b] + acc[b + 1]) / 2 * counts[b] for b in range(k)) / counts.sum()


def test_ale_equals_direct_loop_on_real_model(gbt, table):
    exp = studio.explain(gbt, table, "ale", params={"features": ["mean texture"], "grid_resolution": 10,
                                                     "max_rows": 120, "seed": 7}, cache=False)
    rows = np.sort(np.random.default_rng(7).choice(len(table), 120, replace=False))
    j = table.feature_names.index("mean texture")
    want = _ale_loop(gbt, table.x[rows], j, exp.curves[0].grid[0], target=1)
    np.testing.assert_allclose(exp.curves[0].average, want, atol=1e-12)


def test_curve_params_rejected(gbt, table):
    with pytest.raises(StudioError, match="not in the data"):
        _pdp(gbt, table, features=["no such feature"])
    with pytest.raises(StudioError, match="one feature name"):
        studio.explain(gbt, table, "ice", params={"features": ["mean radius:mean texture"]}, cache=False)
    with pytest.raises(StudioError, match="grid_resolution"):
        _pdp(gbt, table, grid_resolution=1)


# ---- one grid rule; ICE draws the rows asked (trial defect, issue 14) -------------------------------------
def test_ice_draws_the_rows_asked_and_pdp_ice_ale_share_one_grid():
    from sklearn.tree import DecisionTreeRegressor

    from studio.data import Dataset

    rng = np.random.default_rng(3)
    x = rng.normal(size=(700, 3)) * [1.0, 2.0, 0.5]  # more rows than any default sample (ICE 100, PDP 500)
    y = np.where(x[:, 0] > 0, 2.0, -1.0) + x[:, 1]
    est = DecisionTreeRegressor(max_depth=4, random_state=0).fit(x, y)
    model = studio.wrap_model(est)
    data = Dataset(kind="tabular", x=x, y=y, feature_names=["f0", "f1", "f2"], name="grid")
    rows = [0, 3, 5, 650]
    ice = studio.explain(model, data, "ice", rows=rows, params={"features": ["f0"]}, cache=False)
    sampled = studio.explain(model, data, "ice", params={"features": ["f0"]}, cache=False)
    pdp = _pdp(model, data, features=["f0"])
    ale = studio.explain(model, data, "ale", params={"features": ["f0"]}, cache=False)
    grid = feature_grid(x[:, 0], 20)  # every row of the data, whatever the rows sampled or drawn
    for exp in (ice, sampled, pdp, ale):
        np.testing.assert_array_equal(exp.curves[0].grid[0], grid)
    assert ice.rows == rows and sampled.rows == []
    curves = ice.curves[0].individual
    assert curves.shape == (len(rows), len(grid)) and sampled.curves[0].individual.shape == (100, len(grid))
    for i, r in enumerate(rows):  # each drawn curve is that row's own output along the grid
        swept = np.repeat(x[[r]], len(grid), axis=0)
        swept[:, 0] = grid
        np.testing.assert_allclose(curves[i], est.predict(swept), rtol=0, atol=1e-12)
    with pytest.raises(StudioError, match="out of range"):
        studio.explain(model, data, "ice", rows=[700], params={"features": ["f0"]}, cache=False)
