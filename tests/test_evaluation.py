"""Model page computations: predictions, metrics, confusion, subsets."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from studio.errors import StudioError
from studio.evaluation import Condition, apply_conditions, confusion, metrics, predictions_frame


def test_classifier_metrics_match_sklearn(gbt, table):
    data = table.aligned_to(gbt)
    frame, out = predictions_frame(gbt, data)
    proba = gbt.predict_proba(data.x)
    np.testing.assert_allclose(frame["confidence"], proba.max(axis=1))
    y = np.asarray(data.y).astype(int)  # 0 malignant, 1 benign = class index
    m = metrics(frame, out, gbt)
    np.testing.assert_allclose(m["accuracy"], skm.accuracy_score(y, proba.argmax(1)), rtol=1e-12)
    np.testing.assert_allclose(m["roc_auc"], skm.roc_auc_score(y, proba[:, 1]), rtol=1e-12)
    cm = confusion(frame, gbt.class_names)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y, proba.argmax(1)))
    assert frame["correct"].sum() == np.trace(cm)


def test_subsets_by_conditions(gbt, table):
    data = table.aligned_to(gbt)
    frame, out = predictions_frame(gbt, data)
    wrong = apply_conditions(frame, [Condition("correct", "==", "False")])
    assert wrong.sum() == (~frame["correct"]).sum()
    big = apply_conditions(frame, [Condition("mean radius", ">", "15"), Condition("confidence", ">=", 0.9)])
    expect = (data.frame["mean radius"] > 15).to_numpy() & (frame["confidence"] >= 0.9).to_numpy()
    np.testing.assert_array_equal(big, expect)
    sub = metrics(frame[wrong], out, gbt)
    assert sub["rows"] == wrong.sum() and sub["accuracy"] == 0.0
    with pytest.raises(StudioError, match="numeric"):
        apply_conditions(frame, [Condition("mean radius", ">", "big")])
    with pytest.raises(StudioError, match="no column"):
        apply_conditions(frame, [Condition("nope", "==", 1)])


def test_regression_metrics():
    from sklearn.linear_model import LinearRegression

    import studio
    from studio.data import Dataset

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = x @ [1.0, 2.0, -1.0] + rng.normal(scale=0.1, size=200)
    est = LinearRegression().fit(x[:100], y[:100])
    model = studio.wrap_model(est)
    data = Dataset(kind="tabular", x=x, y=y, feature_names=["a", "b", "c"])
    frame, out = predictions_frame(model, data.aligned_to(model))
    m = metrics(frame, out, model)
    np.testing.assert_allclose(m["r2"], skm.r2_score(y, est.predict(x)), rtol=1e-12)
    np.testing.assert_allclose(m["mae"], skm.mean_absolute_error(y, est.predict(x)), rtol=1e-12)


def test_in_condition_selects_listed_values():
    import pandas as pd

    from studio.evaluation import Condition, apply_conditions

    frame = pd.DataFrame({"row": [0, 1, 2, 3], "label": ["a", "b", "a", "c"], "score": [0.5, 1.0, 2.0, 3.0]})
    assert apply_conditions(frame, [Condition("row", "in", "1, 3")]).tolist() == [False, True, False, True]
    assert apply_conditions(frame, [Condition("label", "in", ["a", "c"])]).tolist() == [True, False, True, True]
    assert apply_conditions(frame, [Condition("score", "in", "1,3")]).tolist() == [False, True, False, True]
