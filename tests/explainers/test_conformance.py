"""One table of (method, model, data, params) for every tabular method of issue 3.

Generic tests run over every row: the result is an Explanation of the
declared kind with the right shapes and names; a second call is a cache hit
with equal values; a fresh run under the same seed is identical; invalid
params are refused with StudioError; cost estimates are positive.
Adding a method (or a model) adds a row.
"""

from __future__ import annotations

import numpy as np
import pytest
import tabular_models as tm
from tabular_models import one_torch_thread  # noqa: F401  (autouse fixture)

import studio
from studio.errors import StudioError
from studio.explainers import registry

SHAP = {"background": 10, "max_evals": 61, "nsamples": 20}
LIME = {"num_samples": 200}
ANCHORS = {"batch_size": 50, "beam_size": 2, "max_anchor_size": 3, "fresh_samples": 300}
CURVE = {"features": ["0", "1:2"], "grid_resolution": 5, "max_rows": 40}
ICE = {"features": ["1"], "grid_resolution": 5, "max_rows": 30}
EBM = {"interactions": 1, "max_rounds": 30, "outer_bags": 1, "max_bins": 16, "max_rows": 200}

# (method, model, data, params, rows, target); features given as column numbers are resolved per dataset
CASES = [
    ("shap", "gbt", "table", SHAP, [0, 1], None),
    ("shap", "mlp", "table", SHAP, [0], None),
    ("shap", "mlp_onnx", "table", SHAP, [0], 0),
    ("shap", "diabetes_gbr", "diabetes", SHAP | {"max_evals": 21}, [0, 1], None),
    ("shap", "diabetes_torch", "diabetes", SHAP | {"max_evals": 21}, [0], None),
    ("shap", "wine", "wine", SHAP | {"max_evals": 27}, [0, 100], 2),
    ("lime", "gbt", "table", LIME, [0, 1], None),
    ("lime", "mlp", "table", LIME, [0], None),
    ("lime", "mlp_onnx", "table", LIME, [0], 1),
    ("lime", "diabetes_torch", "diabetes", LIME, [0], None),
    ("lime", "wine", "wine", LIME, [0], 2),
    ("anchors", "gbt", "table", ANCHORS, [0], None),
    ("anchors", "mlp", "table", ANCHORS, [0], None),
    ("anchors", "mlp_onnx", "table", ANCHORS, [3], None),
    ("anchors", "wine", "wine", ANCHORS, [60], None),
    ("pdp", "gbt", "table", CURVE, [], None),
    ("pdp", "mlp", "table", CURVE, [], None),
    ("pdp", "mlp_onnx", "table", CURVE, [], 0),
    ("pdp", "diabetes_gbr", "diabetes", CURVE, [], None),
    ("pdp", "wine", "wine", CURVE, [], 2),
    ("ice", "gbt", "table", ICE, [], None),
    ("ice", "mlp", "table", ICE, [], None),
    ("ice", "mlp_onnx", "table", ICE, [], None),
    ("ice", "diabetes_torch", "diabetes", ICE, [], None),
    ("ice", "wine", "wine", ICE, [], 1),
    ("ale", "gbt", "table", CURVE, [], None),
    ("ale", "mlp", "table", CURVE, [], None),
    ("ale", "mlp_onnx", "table", CURVE, [], None),
    ("ale", "diabetes_torch", "diabetes", CURVE, [], None),
    ("ale", "wine", "wine", CURVE, [], 2),
    ("ebm", "gbt", "table", EBM, [], 0),
    ("ebm", "diabetes_gbr", "diabetes", EBM, [], None),
    ("ebm", "wine", "wine", EBM, [], 2),
    ("ebm_surrogate", "gbt", "table", EBM, [], None),
    ("ebm_surrogate", "mlp", "table", EBM, [], None),
    ("ebm_surrogate", "mlp_onnx", "table", EBM, [], None),
    ("ebm_surrogate", "diabetes_torch", "diabetes", EBM, [], None),
    ("ebm_surrogate", "wine", "wine", EBM, [], 1),
    # a table with a categorical column (one-hot scikit-learn pipeline): every method
    ("shap", "categorical", "categorical", SHAP | {"max_evals": 7}, [0, 2], None),
    ("lime", "categorical", "categorical", LIME, [0], None),
    ("anchors", "categorical", "categorical", ANCHORS, [2], None),
    ("pdp", "categorical", "categorical", CURVE, [], None),
    ("ice", "categorical", "categorical", ICE, [], None),
    ("ale", "categorical", "categorical", {"features": ["1", "0:2"], "max_rows": 60}, [], None),
    ("ebm", "categorical", "categorical", EBM, [], None),
    ("ebm_surrogate", "categorical", "categorical", EBM, [], None),
    # issue 13: NaN in a numeric column (a HistGradientBoosting model that accepts it): every method
    ("shap", "nan_hgb", "nan", SHAP, [0, 2], None),
    ("lime", "nan_hgb", "nan", LIME, [0, 2], None),
    ("anchors", "nan_hgb", "nan", ANCHORS, [2], None),
    ("pdp", "nan_hgb", "nan", CURVE, [], None),
    ("ice", "nan_hgb", "nan", {"features": ["0"], "grid_resolution": 5, "max_rows": 30}, [], None),
    ("ale", "nan_hgb", "nan", CURVE, [], None),
    ("ebm", "nan_hgb", "nan", EBM, [], None),
    ("ebm_surrogate", "nan_hgb", "nan", EBM, [], None),
    # outputs that already are probabilities, a float64 network, a network that runs one row per call
    ("shap", "softmax_torch", "small", SHAP, [0], None),
    ("lime", "softmax_torch", "small", LIME, [0], 2),
    ("pdp", "softmax_torch", "small", CURVE, [], None),
    ("shap", "float64_torch", "small", SHAP, [0], None),
    ("ice", "float64_torch", "small", ICE, [], 1),
    ("lime", "one_row_torch", "small", LIME, [1], None),
    ("ale", "one_row_torch", "small", CURVE, [], 0),
    # multi-output regressors: the target picks the output
    ("shap", "two_output_forest", "small", SHAP, [0, 1], 1),
    ("lime", "two_output_forest", "small", LIME, [0], 1),
    ("pdp", "two_output_forest", "small", CURVE, [], 1),
    ("ebm_surrogate", "two_output_forest", "small", EBM, [], 1),
    ("integrated_gradients", "regression_torch", "small", {"n_steps": 16}, [0], 1),
]

KINDS = {"shap": "attribution", "lime": "attribution", "anchors": "rule", "pdp": "curve", "ice": "curve",
         "ale": "curve", "ebm": "curve", "ebm_surrogate": "curve"}
EXTRA_KINDS = {"integrated_gradients": "attribution"}  # rows for methods outside issue 3's table
MODELS = {"diabetes_gbr": lambda: tm.diabetes_gbr()[0], "diabetes_torch": lambda: tm.diabetes_torch()[0],
          "wine": lambda: tm.wine()[0], "categorical": lambda: tm.categorical_table()[0],
          "nan_hgb": lambda: tm.nan_table()[0], "softmax_torch": lambda: tm.small_torch("softmax")[0],
          "float64_torch": lambda: tm.small_torch("float64")[0], "one_row_torch": lambda: tm.small_torch("one_row")[0],
          "regression_torch": lambda: tm.small_torch("regression")[0],
          "two_output_forest": lambda: tm.two_output_forest()[0]}
DATA = {"diabetes": lambda: tm.diabetes_gbr()[1], "wine": lambda: tm.wine()[1],
        "categorical": lambda: tm.categorical_table()[1], "nan": lambda: tm.nan_table()[1],
        "small": tm.small_table}


def _resolve(request, name, table):
    getter = table.get(name)
    return getter() if getter else request.getfixturevalue(name)


def _params(params, data):
    """Column numbers in 'features' become that dataset's feature names."""
    out = dict(params)
    if "features" in out:
        out["features"] = [":".join(data.feature_names[int(c)] for c in f.split(":")) for f in out["features"]]
    return out


def _payload(exp):
    if exp.kind == "attribution":
        return [exp.values, exp.base_values]
    if exp.kind == "curve":
        return [a for c in exp.curves for a in [c.average, c.individual, *c.grid] if a is not None]
    return [(r.predicates, r.precision, r.coverage) for r in exp.rules]


def _assert_equal(a, b):
    for x, y in zip(_payload(a), _payload(b), strict=True):
        if isinstance(x, tuple):
            assert x == y
        else:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert a.checks == b.checks


def test_every_tabular_method_has_rows():
    assert {c[0] for c in CASES} == set(KINDS) | set(EXTRA_KINDS)
    for name, kind in KINDS.items():
        assert registry.get(name, "tabular").kind == kind


@pytest.mark.parametrize("method,model_name,data_name,params,rows,target", CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_conformance(request, method, model_name, data_name, params, rows, target):
    model = _resolve(request, model_name, MODELS)
    data = _resolve(request, data_name, DATA)
    params = _params(params, data)
    kw = dict(rows=rows or None, target=target, params=params)
    first = studio.explain(model, data, method, **kw)
    assert isinstance(first, studio.Explanation) and first.kind == (KINDS | EXTRA_KINDS)[method]
    assert first.cache == "miss"
    assert first.feature_names == list(data.feature_names) and first.output_names == model.output_names
    _check_shapes(first, model, data, rows, target)
    assert all(isinstance(v, float) for v in first.checks.values())
    # second call: a cache hit, equal values
    second = studio.explain(model, data, method, **kw)
    assert second.cache == "hit"
    _assert_equal(first, second)
    # a fresh computation under the same seed is identical
    _assert_equal(first, studio.explain(model, data, method, cache=False, **kw))
    # the cost model counts some work: rows through the model, or the method's own (an EBM fit calls no model)
    explainer = registry.get(method, "tabular")
    valid = explainer.params.validate(params, method)
    cost = explainer.cost(model, data, valid, max(len(rows), 1))
    assert cost.evaluations > 0 or cost.own > 0


def _check_shapes(exp, model, data, rows, target):
    n_feat = len(data.feature_names)
    if exp.kind == "attribution":
        assert exp.values.shape == (len(rows), n_feat) and exp.base_values.shape == (len(rows),)
        assert np.all(np.isfinite(exp.values))
        if model.is_classifier:
            want = [target] * len(rows) if target is not None else list(model.predict(data.x[rows]))
            assert exp.target == want
        elif len(model.output_names) > 1:  # a multi-output regressor: the output explained
            assert exp.target == [target or 0] * len(rows)
        else:
            assert exp.target is None
    elif exp.kind == "rule":
        assert [r.row for r in exp.rules] == rows
        for r in exp.rules:
            assert 0 <= r.precision <= 1 and 0 < r.coverage <= 1 and r.predicates
            assert all(any(f" {op} " in p for op in ("<", "<=", ">", ">=", "==")) for p in r.predicates)
    else:
        assert exp.curves and exp.rows == []
        if model.is_classifier:
            assert exp.target == [target if target is not None else (1 if len(model.output_names) == 2 else 0)]
        elif len(model.output_names) > 1:
            assert exp.target == [target or 0]
        for c in exp.curves:
            assert c.average.shape == tuple(len(g) for g in c.grid)
            assert np.all(np.isfinite(c.average.astype(float)))
            if not c.categorical:
                assert all(np.all(np.isfinite(np.asarray(g, dtype=float))) for g in c.grid)
            if c.kind == "ice":
                assert c.individual.shape == (min(30, len(data)),) + c.average.shape
                np.testing.assert_allclose(c.individual.mean(axis=0), c.average, atol=1e-12)


@pytest.mark.parametrize("method", sorted(KINDS))
def test_invalid_params_rejected(method, gbt, table):
    with pytest.raises(StudioError, match="unknown parameter"):
        studio.explain(gbt, table, method, params={"no_such_param": 1}, cache=False)
    with pytest.raises(StudioError, match="seed"):
        studio.explain(gbt, table, method, params={"seed": -1}, cache=False)
    with pytest.raises(StudioError, match="seed"):
        studio.explain(gbt, table, method, params={"seed": "abc"}, cache=False)
