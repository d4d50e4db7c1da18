"""The Global page's default effect-curve feature: the most important one, said in a caption (issue 14)."""

from __future__ import annotations

import numpy as np

import studio
from studio import Explanation, Importance
from studio.ui import global_views
from studio.ui.views import md_escape
from tests.app.test_pages import _app, _captions, _ok


def _linear():
    from sklearn.linear_model import LinearRegression

    from studio.data import Dataset

    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 4))
    coef = np.array([0.0, 0.5, 3.0, 1.0])  # the first column is flat; the third matters most
    est = LinearRegression().fit(x, x @ coef)
    model = studio.wrap_model(est)
    return model, Dataset(kind="tabular", x=x, y=x @ coef, feature_names=["flat", "b", "c", "d"], name="lin"), coef


def test_spread_ranks_features_by_their_effect_and_session_importances_come_first():
    model, data, coef = _linear()
    spread = global_views.permutation_spread(model, data.x[:200])
    # a linear model: shuffling feature j moves the output by |coef_j| x |x_j - x_j'|
    assert np.argsort(-spread).tolist() == np.argsort(-np.abs(coef) * data.x.std(axis=0)).tolist()
    assert spread[0] < 1e-9
    top, how = global_views.default_feature(model, data)
    assert top == "c" and "spread of predictions" in how and "200 rows" in how
    # an importance already computed for this model and data wins (another model's is ignored)
    imp = Explanation("permutation_importance", "importance", feature_names=data.feature_names,
                      importances=[Importance(n, m, 0.0) for n, m in zip(data.feature_names, [0.1, 0.9, 0.2, 0.3])],
                      model_id=model.fingerprint, dataset_id=data.fingerprint)
    other = imp.copy()
    other.model_id = "x" * 64
    other.importances = [Importance(n, m, 0.0) for n, m in zip(data.feature_names, [0.1, 0.2, 0.3, 0.9])]
    assert global_views.default_feature(model, data, [other, imp]) == ("b", "permutation importance")


def test_global_page_defaults_to_the_most_important_feature(gbt, table):
    at = _app(gbt, table)
    at.switch_page("pages/global.py").run()
    _ok(at)
    data = table.aligned_to(gbt)
    top, how = global_views.default_feature(gbt, data)
    assert top != data.feature_names[0]
    assert at.selectbox(key="global-feature").value == top
    assert md_escape(f"Default: {top}, the most important feature by {how}.") in _captions(at)
