"""Importances derived for the Global page: EBM term importance and mean |attribution|."""

from __future__ import annotations

import numpy as np
import pytest

from studio.charts import importance_bars, importance_frame
from studio.charts.importance import ebm_term_importance, mean_abs_attribution, term_contributions
from studio.explanation import Explanation


@pytest.fixture(scope="module")
def fitted_ebm(table, gbt):
    """An EBM fitted by the studio's ``ebm`` explainer on every row, its curves for class 1, and the EBM itself."""
    from studio.explainers import registry
    from studio.explainers.ebm import ebm_curves

    data = table.aligned_to(gbt)
    explainer = registry.get("ebm", "tabular")
    params = explainer.params.validate({"max_rounds": 50, "outer_bags": 2, "interactions": 2, "max_rows": 0})
    frame = data.frame.reset_index(drop=True)
    ebm = explainer._fit(frame, np.asarray(data.y), True, params)
    curves, intercept = ebm_curves(ebm, 1, frame, data.feature_names)
    exp = Explanation(method="ebm", kind="curve", feature_names=list(data.feature_names), curves=curves)
    return exp, ebm, data, frame, intercept


def test_term_contributions_add_up_to_the_ebm_score(fitted_ebm):
    exp, ebm, data, frame, intercept = fitted_ebm
    terms, contrib = term_contributions(exp, data.x)
    assert terms == [t.replace(" & ", " x ") for t in ebm.term_names_] and contrib.shape == (len(data), len(terms))
    np.testing.assert_allclose(intercept + contrib.sum(axis=1), ebm.decision_function(frame), atol=1e-10)


def test_ebm_term_importance_is_interprets_on_the_fitting_rows(fitted_ebm):
    exp, ebm, data, _, _ = fitted_ebm
    imp = ebm_term_importance(exp, data.x)
    assert imp.kind == "importance" and imp.method == "ebm term importance"
    assert [i.feature for i in imp.importances] == [t.replace(" & ", " x ") for t in ebm.term_names_]
    np.testing.assert_allclose([i.mean for i in imp.importances], ebm.term_importances(), rtol=1e-10, atol=1e-12)
    assert imp.checks["rows"] == len(data)
    # a sample of the rows: the mean over exactly those rows
    sampled = ebm_term_importance(exp, data.x, max_rows=100, seed=3)
    rows = np.sort(np.random.default_rng(3).choice(len(data), 100, replace=False))
    _, contrib = term_contributions(exp, data.x[rows])
    np.testing.assert_allclose([i.mean for i in sampled.importances], np.abs(contrib).mean(axis=0), atol=1e-12)


def test_mean_abs_attribution_over_rows_and_side_by_side_bars(table, gbt):
    import studio

    rows = list(range(0, 40, 2))
    shap = studio.explain(gbt, table, "shap", rows=rows, target=1)
    imp = mean_abs_attribution(shap)
    values = np.abs(np.asarray(shap.values))  # (20, 30)
    assert imp.method == "mean |shap|" and imp.rows == rows and imp.checks == {"rows": 20.0}
    np.testing.assert_allclose([i.mean for i in imp.importances], values.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose([i.std for i in imp.importances], values.std(axis=0), atol=1e-12)
    frame = importance_frame(imp)
    assert list(frame["feature"]) == list(table.feature_names)
    chart = importance_bars([imp, imp], top_k=5).to_dict()
    assert [c["layer"][0]["title"] for c in chart["hconcat"]] == ["mean |shap|", "mean |shap|"]
    with pytest.raises(ValueError, match="tabular"):
        mean_abs_attribution(Explanation(method="ig", kind="attribution", values=np.zeros((1, 1, 2, 2))))
