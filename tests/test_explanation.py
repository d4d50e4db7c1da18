"""The Explanation type: JSON schema and lossless binary round trips."""

from __future__ import annotations

import json

import numpy as np

from studio.explanation import Curve, Explanation, Importance, Rule


def _examples():
    rng = np.random.default_rng(0)
    return [
        Explanation("shap", "attribution", rows=[0, 3], target=[1, 0], feature_names=["a", "b"],
                    values=rng.normal(size=(2, 2)), base_values=np.array([0.1, 0.2]), checks={"additivity_gap": 1e-9}),
        Explanation("pdp", "curve", curves=[Curve("a", "pdp", [np.linspace(0, 1, 5)], rng.normal(size=5), rng.normal(size=(3, 5)))]),
        Explanation("ale", "curve", curves=[Curve(("a", "b"), "ale", [np.arange(3.0), np.arange(4.0)], rng.normal(size=(3, 4)))]),
        Explanation("anchors", "rule", rules=[Rule(0, ["a > 1.5", "0.1 < b <= 2"], 0.97, 0.2)]),
        Explanation("permutation_importance", "importance", importances=[Importance("a", 0.5, 0.1)]),
        Explanation("saliency", "attribution", rows=[1], values=rng.normal(size=(1, 1, 4, 4)).astype(np.float32), base_values=np.zeros(1)),
    ]


def test_binary_round_trip_is_exact():
    for exp in _examples():
        back = Explanation.from_bytes(exp.to_bytes())
        assert back.method == exp.method and back.kind == exp.kind and back.rows == exp.rows
        if exp.values is not None:
            np.testing.assert_array_equal(back.values, exp.values)
            assert back.values.dtype == exp.values.dtype
        for a, b in zip(exp.curves, back.curves):
            assert a.features == b.features
            np.testing.assert_array_equal(a.average, b.average)
        assert back.rules == exp.rules and back.importances == exp.importances


def test_json_schema_round_trip():
    for exp in _examples():
        doc = json.loads(exp.to_json())
        assert doc["schema"] == "studio.explanation/1" and doc["kind"] == exp.kind
        assert {"method", "params", "model", "dataset", "rows", "target", "checks", "compute_seconds", "cache", "provenance"} <= set(doc)
        back = Explanation.from_dict(doc)
        if exp.values is not None:
            np.testing.assert_allclose(back.values, exp.values, rtol=1e-6)


def test_nan_becomes_null():
    exp = Explanation("x", "importance", importances=[Importance("a", float("nan"), 0.0)])
    assert json.loads(exp.to_json())["importances"][0]["mean"] is None


def test_copy_shares_no_mutable_part():
    for original in _examples():
        before = original.to_bytes()
        twin = original.copy()
        assert twin.to_bytes() == before
        if twin.values is not None:
            twin.values[...] = 123.0
        for curve in twin.curves:
            curve.average[...] = 123.0
            curve.extra["planted"] = 1
        for rule in twin.rules:
            rule.predicates.append("planted")
        for item in twin.importances:
            item.mean = 123.0
        twin.checks["planted"] = 1.0
        twin.provenance.setdefault("versions", {})["planted"] = "1"
        if twin.feature_names:
            twin.feature_names.append("planted")
        assert original.to_bytes() == before


def test_model_cache_id_follows_a_card_changed_in_place():
    from sklearn.linear_model import LogisticRegression

    import studio

    model = studio.wrap_model(LogisticRegression().fit(np.eye(4)[:, :2], [0, 1, 0, 1]))
    first = model.cache_id
    assert model.cache_id == first
    model.card.class_names = ["no", "yes"]
    assert model.cache_id != first
