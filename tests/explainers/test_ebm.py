"""EBM: intercept + shape functions reproduce the EBM's score; surrogate fidelity is held-out."""

from __future__ import annotations

import numpy as np
import pytest
from tabular_models import categorical_table, dataset, diabetes_gbr, wine, one_torch_thread  # noqa: F401

import studio
from studio.errors import StudioError
from studio.explainers.ebm import Ebm, ebm_score

SMALL = {"interactions": 2, "max_rounds": 60, "outer_bags": 1, "max_bins": 32}


def _refit(data, y, classification):
    """The same EBM the explainer fits (interpret is deterministic under random_state)."""
    explainer = Ebm()
    return explainer._fit(data.frame, y, classification, explainer.params.validate(SMALL | {"max_rows": 0}))


def test_terms_reproduce_the_binary_score_for_both_classes(gbt, table):
    for target in (1, 0):
        exp = studio.explain(gbt, table, "ebm", target=target, params=SMALL | {"max_rows": 0}, cache=False)
        pairs = [c for c in exp.curves if isinstance(c.feature, tuple)]
        assert len(pairs) == 2 and all(c.average.ndim == 2 for c in pairs)
        assert len(exp.curves) == 30 + 2 and all(c.kind == "ebm" for c in exp.curves)
        ebm = _refit(table, np.asarray(table.y), True)
        want = ebm.decision_function(table.frame) * (1 if target == 1 else -1)  # logit of the explained class
        np.testing.assert_allclose(ebm_score(exp, table.x), want, rtol=0, atol=1e-10)
        assert exp.curves[0].extra["scale"] == "logit"


def test_terms_reproduce_multiclass_and_regression_scores():
    model, data = wine()
    exp = studio.explain(model, data, "ebm", target=2, params=SMALL | {"max_rows": 0}, cache=False)
    ebm = _refit(data, np.asarray(data.y), True)
    np.testing.assert_allclose(ebm_score(exp, data.x), ebm.decision_function(data.frame)[:, 2], atol=1e-10)
    model, data = diabetes_gbr()
    exp = studio.explain(model, data, "ebm", params=SMALL | {"max_rows": 0}, cache=False)
    ebm = _refit(data, np.asarray(data.y, dtype=float), False)
    np.testing.assert_allclose(ebm_score(exp, data.x), ebm.predict(data.frame), rtol=1e-12, atol=1e-9)
    assert exp.curves[0].extra["scale"] == "prediction" and exp.target is None


def test_categorical_terms():
    model, data = categorical_table()
    exp = studio.explain(model, data, "ebm", params=SMALL | {"max_rows": 0}, cache=False)
    colour = next(c for c in exp.curves if c.feature == "colour")
    assert colour.categorical and sorted(colour.grid[0]) == ["black", "blue", "green", "red"]
    ebm = _refit(data, np.asarray(data.y), True)
    np.testing.assert_allclose(ebm_score(exp, data.x), ebm.decision_function(data.frame), atol=1e-10)


@pytest.mark.parametrize("which", ["binary", "regression"])
def test_surrogate_fidelity_is_measured_on_held_out_rows(which, gbt, table):
    model, data = (gbt, table) if which == "binary" else diabetes_gbr()
    params = SMALL | {"max_rows": 0, "holdout": 0.3, "seed": 3}
    exp = studio.explain(model, data, "ebm_surrogate", params=params, cache=False)
    # the same split as the explainer: a seeded permutation, the first 30% held out
    perm = np.random.default_rng([3, 1]).permutation(len(data))
    hold = np.sort(perm[: int(round(0.3 * len(data)))])
    score = ebm_score(exp, data.x[hold])  # the surrogate, rebuilt from its curves
    if which == "binary":
        want = np.mean((score > 0).astype(int) == model.predict(data.x[hold]))  # target 1: logit of class 1
    else:
        y = model.output(data.x[hold])[:, 0]
        want = 1 - np.sum((y - score) ** 2) / np.sum((y - y.mean()) ** 2)
    assert exp.checks["fidelity"] == pytest.approx(want, abs=1e-9)
    assert exp.checks["n_holdout"] == len(hold) and exp.checks["fidelity"] > 0.8


def test_surrogate_of_torch_and_onnx_models(mlp, mlp_onnx, table):
    for model in (mlp, mlp_onnx):
        exp = studio.explain(model, table, "ebm_surrogate", params=SMALL | {"max_rows": 300}, cache=False)
        assert exp.checks["fidelity"] > 0.85 and len(exp.curves) == 32


def test_ebm_needs_labels_and_checks_params(gbt, table):
    unlabeled = table.subset(np.arange(50))
    unlabeled.y = None
    info = {m.name: m for m in studio.methods(gbt, unlabeled)}
    assert not info["ebm"].available and info["ebm_surrogate"].available
    with pytest.raises(StudioError, match="holdout"):
        studio.explain(gbt, table, "ebm_surrogate", params={"holdout": 0.99}, cache=False)


def test_default_target_occurs_in_data_without_class_0_and_a_missing_class_is_named():
    model, data = wine()
    frame = data.frame.assign(target=np.asarray(data.y))
    no_zero = dataset(frame[frame["target"] != 0])
    params = SMALL | {"max_rows": 0, "max_rounds": 20, "interactions": 0}
    exp = studio.explain(model, no_zero, "ebm", params=params, cache=False)
    labels = np.asarray(no_zero.y).tolist()
    assert exp.target == [max(set(labels), key=labels.count)] and exp.curves  # the most frequent class present
    assert studio.explain(model, data, "ebm", params=params, cache=False).target == [0]  # class 0 when present
    with pytest.raises(StudioError, match=r"class 0 does not occur .*: 1, 2\)") as err:
        studio.explain(model, no_zero, "ebm", target=0, params=params, cache=False)
    assert str(err.value).count(";") == 1
