"""LIME: equals lime called directly, recovers a linear model, handles categories."""

from __future__ import annotations

import numpy as np
import pytest
from tabular_models import categorical_table, diabetes_gbr, wine, one_torch_thread  # noqa: F401

import studio
from studio.errors import StudioError
from studio.explainers.lime_tabular import TabularLime
from studio.explainers.tabular_utils import Codec


def _direct(model, data, rows, label, params):
    """lime's own explainer configured here (not by the studio) from lime's documented defaults: the data as
    training set, quartile discretiser, kernel width 0.75 * sqrt(features); called row by row."""
    from lime.lime_tabular import LimeTabularExplainer

    valid = TabularLime().params.validate(params)
    assert len(data) <= valid["max_rows"]  # the studio then hands lime every row too
    codec = Codec(data)
    lime_exp = LimeTabularExplainer(
        codec.encode(data.x), mode="classification" if model.is_classifier else "regression",
        feature_names=list(data.feature_names), categorical_features=codec.categorical_idx,
        categorical_names=codec.categorical_names(), discretize_continuous=True,
        kernel_width=0.75 * np.sqrt(data.n_features), random_state=valid["seed"],
    )

    def predict(z):
        out = model.output(codec.decode(z))
        return out if model.is_classifier else out[:, 0]

    out = []
    for r in rows:
        e = lime_exp.explain_instance(codec.encode(data.x[[r]])[0], predict, labels=(label,),
                                      num_features=data.n_features, num_samples=valid["num_samples"])
        w = np.zeros(data.n_features)
        for j, v in e.local_exp[label]:
            w[j] = v
        out.append((w, e.intercept[label], e.score, float(np.ravel(e.local_pred)[0])))
    return out


def test_equals_lime_directly_with_the_same_seed(gbt, table):
    params = {"num_samples": 300, "seed": 4}
    exp = studio.explain(gbt, table, "lime", rows=[1, 30], target=1, params=params, cache=False)
    ref = _direct(gbt, table, [1, 30], 1, params)
    for i, (w, b, score, local) in enumerate(ref):
        np.testing.assert_array_equal(exp.values[i], w)
        assert exp.base_values[i] == b
    assert exp.checks["score"] == min(r[2] for r in ref)
    fx = gbt.output(table.x[[1, 30]])[:, 1]
    assert exp.checks["local_gap"] == pytest.approx(max(abs(r[3] - f) for r, f in zip(ref, fx)), abs=1e-12)


def test_recovers_a_linear_regressor():
    from sklearn.linear_model import LinearRegression

    _, data = diabetes_gbr()
    est = LinearRegression().fit(data.frame, data.y)
    model = studio.wrap_model(est)
    exp = studio.explain(model, data, "lime", rows=[0, 10], params={"discretize": False, "num_samples": 3000,
                                                                    "max_rows": 0}, cache=False)
    # lime fits on standardised features: the weight of feature j is coef_j * std_j, with R^2 = 1,
    # shrunk by lime's Ridge(alpha=1) on kernel-weighted samples (measured: about 0.5%)
    want = est.coef_ * data.x.std(axis=0)
    np.testing.assert_allclose(exp.values, np.tile(want, (2, 1)), rtol=2e-2, atol=1e-6 * np.abs(want).max())
    assert exp.checks["score"] > 0.9999 and exp.target is None
    assert exp.checks["local_gap"] < 1e-3 * np.abs(model.output(data.x[[0, 10]])).max()


def test_multiclass_target_and_sign_follows_shap():
    model, data = wine()
    exp = studio.explain(model, data, "lime", rows=[70], target=2, params={"num_samples": 1500}, cache=False)
    other = studio.explain(model, data, "lime", rows=[70], target=0, params={"num_samples": 1500}, cache=False)
    assert exp.target == [2] and not np.allclose(exp.values, other.values)
    shap = studio.explain(model, data, "shap", rows=[70], target=2, params={"background": 60, "max_evals": 300},
                          cache=False)
    big = np.abs(shap.values[0]) > 0.2 * np.abs(shap.values[0]).max()  # the features that matter agree in sign
    assert big.sum() >= 2 and np.all(np.sign(exp.values[0][big]) == np.sign(shap.values[0][big]))


def test_categorical_features_are_sampled_as_categories():
    model, data = categorical_table()
    seen = []

    class Spy:
        """Records what the model is asked about, delegating to the real one."""

        def __getattr__(self, name):
            return getattr(model, name)

        def output(self, x):
            seen.append(np.asarray(x)[:, 1])
            return model.output(x)

    exp = TabularLime().explain(Spy(), data, TabularLime().params.validate({"num_samples": 400}),
                                studio.explainers.base.Context(rows=[0, 2], targets=[1, 1]))
    colours = set(np.concatenate(seen))
    assert colours == {"red", "green", "blue", "black"}  # only real categories reach the model
    assert exp.values.shape == (2, 3) and exp.data is None
    ref = _direct(model, data, [0, 2], 1, {"num_samples": 400})
    np.testing.assert_array_equal(exp.values, np.stack([r[0] for r in ref]))


def test_bad_params(gbt, table):
    with pytest.raises(StudioError, match="num_samples"):
        studio.explain(gbt, table, "lime", params={"num_samples": 5}, cache=False)


def test_regression_local_gap_verdict_ignores_the_targets_units():
    """A regression target's units are arbitrary: the same model on the target x 1000 or / 1000 gets the same
    local-gap verdict (judged relative to the spread of the model's outputs; the raw gap is a fact)."""
    from sklearn.tree import DecisionTreeRegressor

    from studio.checks import verdicts

    _, data = diabetes_gbr()
    seen = []
    for scale in (1.0, 1000.0, 1e-3):
        est = DecisionTreeRegressor(max_depth=3, random_state=0).fit(data.frame, data.y * scale)
        exp = studio.explain(studio.wrap_model(est), data, "lime", rows=[0, 7],
                             params={"num_samples": 400, "max_rows": 200}, cache=False)
        assert exp.checks["local_gap"] > 0
        judged = {v.key: (v.status, v.value) for v in verdicts(exp.checks)}
        assert judged["local_gap"][0] == "info"  # superseded by the relative gap
        seen.append(judged["local_gap_relative"])
    assert seen[1][0] == seen[0][0] == seen[2][0]
    np.testing.assert_allclose([v for _, v in seen], seen[0][1], rtol=1e-6)
