"""Permutation importance equals scikit-learn's on the native estimator."""

from __future__ import annotations

import numpy as np
import pytest

import studio
from studio.errors import StudioError


def test_equals_sklearn_on_native_estimator(gbt, table):
    from sklearn.inspection import permutation_importance

    exp = studio.explain(gbt, table, "permutation_importance", params={"n_repeats": 3, "max_rows": 0, "seed": 3})
    ref = permutation_importance(gbt.native, table.frame, table.y, scoring="accuracy", n_repeats=3, random_state=3)
    np.testing.assert_allclose([i.mean for i in exp.importances], ref.importances_mean, atol=1e-12)
    np.testing.assert_allclose([i.std for i in exp.importances], ref.importances_std, atol=1e-12)
    assert exp.kind == "importance" and exp.feature_names == table.feature_names
    assert exp.checks["baseline_score"] == pytest.approx(gbt.native.score(table.frame, table.y))


def test_regression_torch_model_uses_r2():
    import torch
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    torch.manual_seed(0)
    w = torch.zeros(10, 1)
    w[2, 0] = 900.0  # only feature 2 matters
    net = torch.nn.Linear(10, 1)
    with torch.no_grad():
        net.weight.copy_(w.T)
        net.bias.fill_(float(y.mean()))
    names = [f"f{i}" for i in range(10)]
    model = studio.wrap_model(net, card={"task": "regression", "feature_names": names})
    import pandas as pd

    data = studio.load_dataset(pd.DataFrame(x, columns=names).assign(target=y).to_csv(index=False).encode(), name="d.csv")
    exp = studio.explain(model, data, "permutation_importance", params={"n_repeats": 2})
    means = np.array([i.mean for i in exp.importances])
    assert means.argmax() == 2 and np.all(means[np.arange(10) != 2] == 0)


def test_wrong_scorer_for_task(gbt, table):
    with pytest.raises(StudioError, match="does not suit"):
        studio.explain(gbt, table, "permutation_importance", params={"scoring": "r2"})


def test_needs_labels(gbt, table):
    unlabeled = table.subset(np.arange(10))
    unlabeled.y = None
    info = {m.name: m for m in studio.methods(gbt, unlabeled)}
    assert not info["permutation_importance"].available and "labels" in info["permutation_importance"].reason


def test_cancel_stops_midway(gbt, table):
    """Progress is reported per model evaluation, so a cancel stops the run early."""
    from studio.explainers.base import Cancelled

    seen = []

    def progress(fraction, message):
        seen.append(fraction)

    with pytest.raises(Cancelled):
        studio.explain(gbt, table, "permutation_importance", params={"n_repeats": 3, "max_rows": 100},
                       progress=progress, cancel=lambda: len(seen) >= 5, cache=False)
    assert len(seen) == 5 and max(seen) < 0.1  # 91 evaluations were planned
