"""studio.assess on the sample GBT, MLP and CNN (a few rows) and on a small model of our own."""

import json

import numpy as np
import pandas as pd
import pytest

import studio
from studio.quality import perturb, rank_correlation, top_k_overlap
from studio.quality.metrics import magnitudes

ROWS = [0, 1, 2, 3, 4]
SHAP = {"shap": {"background": 20}}


def _values(result, **match):
    return [r["value"] for r in result.records if all(r[k] == v for k, v in match.items())]


def test_severities_off_the_grid_are_refused(gbt, table):
    for bad in ((99,), (-1, 2), ()):
        with pytest.raises(studio.StudioError, match="severities must be between 0"):
            studio.assess(gbt, table, ["shap"], ["noise"], rows=ROWS, severities=bad, method_params=SHAP)


def test_severity_zero_keeps_accuracy_and_every_prediction(gbt, table):
    res = studio.assess(gbt, table, ["shap"], ["noise"], rows=ROWS, severities=(0, 5), method_params=SHAP)
    clean = _values(res, attribute="performance", metric="accuracy", attack="")
    assert _values(res, attribute="performance", metric="accuracy", attack="noise", severity=0) == clean
    assert _values(res, attribute="performance", metric="prediction_kept", severity=0) == [1.0]
    assert _values(res, attribute="resilience", metric="rank_correlation", severity=0) == [pytest.approx(1.0)]
    assert _values(res, attribute="deviation", metric="rank_correlation", method="shap", other="shap") == \
        [pytest.approx(1.0)]
    assert [(s.get("method"), s.get("metric")) for s in res.skipped] == [("shap", "sensitivity")]  # not differentiable
    assert res.provenance["methods"]["shap"]["params"]["seed"] == 0
    assert _values(res, attribute="cost", method="shap")[0] > 0


def test_same_seed_same_numbers_other_seed_other_noise(gbt, table):
    args = dict(rows=ROWS, severities=(4,), method_params=SHAP)
    one = studio.assess(gbt, table, ["shap", "lime"], ["noise"], seed=3, **{**args, "method_params": {
        **SHAP, "lime": {"num_samples": 100}}})
    two = studio.assess(gbt, table, ["shap", "lime"], ["noise"], seed=3, cache=False, **{**args, "method_params": {
        **SHAP, "lime": {"num_samples": 100}}})  # computed afresh, not read back from the first call's units
    assert json.dumps(one.numbers()) == json.dumps(two.numbers())
    assert one.provenance["data"]["fingerprint"] == table.fingerprint
    assert one.provenance["model"]["fingerprint"] == gbt.fingerprint
    assert one.provenance["attacks"]["noise"]["severities"]["4"] == {"sigma_stds": pytest.approx(0.4)}
    other = studio.assess(gbt, table, ["shap"], ["noise"], seed=4, **args)
    assert _values(other, attribute="resilience", method="shap", metric="rank_correlation") != \
        _values(one, attribute="resilience", method="shap", metric="rank_correlation")
    doc = json.loads(one.to_json())
    assert doc["schema"] == "studio.assessment/1"
    assert doc["deviation"]["rank_correlation"]["methods"] == ["shap", "lime"]
    assert one.to_csv().splitlines()[0] == "attribute,metric,method,other,attack,severity,attack_params,value,n_rows"
    assert len(one.to_csv().splitlines()) == len(one.records) + 1


@pytest.fixture(scope="module")
def boundary(tmp_path_factory):
    """A small boosted model on two of three features and rows near its boundary, so noise flips some predictions."""
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    model = studio.wrap_model(GradientBoostingClassifier(n_estimators=30, max_depth=2, random_state=0).fit(frame, y))
    near = np.argsort(np.abs(x[:, 0] + 0.5 * x[:, 1]))[:8]
    path = tmp_path_factory.mktemp("q") / "boundary.csv"
    frame.assign(label=y).to_csv(path, index=False)
    return model, studio.load_dataset(path, label="label"), sorted(near.tolist())


def test_resilience_counts_only_unchanged_predictions(boundary):
    model, data, rows = boundary
    res = studio.assess(model, data, ["shap"], ["noise"], rows=rows, severities=(3,), seed=1,
                        method_params={"shap": {"background": 30, "algorithm": "tree"}}, faithfulness=())
    x0 = data.x[rows]
    xp = perturb(x0, "tabular", "noise", 3, seed=1, scale=data.x.std(axis=0))
    kept = model.predict(x0) == model.predict(xp)
    assert 0 < kept.sum() < len(rows)  # the case tests something
    (n,) = [r["n_rows"] for r in res.records if r["attribute"] == "resilience" and r["metric"] == "top_k_overlap"]
    assert n == kept.sum()
    assert _values(res, metric="prediction_kept") == [pytest.approx(kept.mean())]
    # the value: over the kept rows only, recomputed from public pieces
    shap = {"background": 30, "algorithm": "tree", "seed": 1}
    clean = magnitudes(studio.explain(model, data, "shap", rows=rows, params=shap, cache=False).values, "tabular")
    pdata = data.subset(range(len(data)))
    pdata.x[rows] = xp
    pdata.frame.iloc[rows] = xp
    pdata._fingerprint = None
    krows = [r for r, k in zip(rows, kept) if k]
    pert = magnitudes(studio.explain(model, pdata, "shap", rows=krows, params=shap, cache=False).values, "tabular")
    want = np.mean([rank_correlation(c, p) for c, p in zip(clean[kept], pert)])
    assert _values(res, attribute="resilience", metric="rank_correlation") == [pytest.approx(want)]
    want_k = np.mean([top_k_overlap(c, p, 3) for c, p in zip(clean[kept], pert)])
    assert _values(res, attribute="resilience", metric="top_k_overlap") == [pytest.approx(want_k)]


def test_sandboxed_model_gives_the_in_process_numbers(gbt, table):
    from tests.conftest import MODELS

    remote = studio.load_model(MODELS / "tabular_gbt.skops")
    assert getattr(remote, "remote", False)
    try:
        here = studio.assess(gbt, table, ["shap"], ["noise", "fgsm"], rows=ROWS, severities=(2,), method_params=SHAP)
        there = studio.assess(remote, table, ["shap"], ["noise", "fgsm"], rows=ROWS, severities=(2,),
                              method_params=SHAP, cache=False)  # computed in the worker, not read from here's units
    finally:
        remote.close()
    assert json.dumps(here.numbers()) == json.dumps(there.numbers())
    assert {r["metric"] for r in there.numbers("faithfulness")} == {"deletion_auc", "insertion_auc", "infidelity"}
    assert there.provenance["model"]["fingerprint"] == gbt.fingerprint
    assert sorted(str(s.get("attack") or s.get("metric")) for s in there.skipped) == ["fgsm", "sensitivity"]
    # peak memory measured in the worker, where shap ran
    assert _values(there, attribute="cost", metric="python_peak_bytes", method="shap")[0] > 0


def test_fgsm_and_pgd_lower_the_cnn_accuracy_monotonically_in_epsilon(cnn, digits):
    """Rows 0..9 of the digits sample, epsilon 0.05 ... 0.25 (FGSM and PGD are deterministic: no seed)."""
    res = studio.assess(cnn, digits, ["saliency"], ["fgsm", "pgd"], rows=list(range(10)),
                        severities=(1, 2, 3, 4, 5), faithfulness=())
    assert res.skipped == []
    fgsm = _values(res, attribute="performance", metric="accuracy", attack="fgsm")
    pgd = _values(res, attribute="performance", metric="accuracy", attack="pgd")
    clean = _values(res, attribute="performance", metric="accuracy", attack="")[0]
    assert len(fgsm) == 5 and all(a >= b for a, b in zip([clean, *fgsm], fgsm)) and fgsm[-1] < clean
    assert all(p <= f for p, f in zip(pgd, fgsm))  # PGD (10 steps) is at least as strong as one FGSM step
    assert res.provenance["attacks"]["pgd"]["severities"]["2"]["steps"] == 10


def test_gradient_attacks_run_in_the_worker_and_equal_the_in_process_ones(cnn, digits):
    from studio.quality.attacks import adversarial
    from tests.conftest import MODELS

    x = digits.x[:4]
    target = cnn.output(x).argmax(axis=1)
    remote = studio.load_model(MODELS / "image_cnn.pt")
    try:
        assert getattr(remote, "remote", False)
        for attack in ("fgsm", "pgd"):
            here = adversarial(cnn, x, "image", attack, 2, target)
            there = remote.attack(x, "image", attack, 2, target)
            assert there.dtype == here.dtype and np.abs(there - here).max() <= 1e-6, attack
            assert np.abs(here - x).max() == pytest.approx(0.1, abs=1e-6)  # epsilon 0.05 x 2, L-inf
        kw = dict(rows=[0, 1], severities=(1,), faithfulness=("deletion",))
        one = studio.assess(remote, digits, ["saliency"], ["pgd"], **kw)
    finally:
        remote.close()
    two = studio.assess(cnn, digits, ["saliency"], ["pgd"], cache=False, **kw)
    assert one.skipped == [] and json.dumps(one.numbers()) == json.dumps(two.numbers())


def test_fgsm_on_the_table_mlp_steps_in_column_stds(mlp, table):
    res = studio.assess(mlp, table, ["saliency"], ["fgsm"], rows=ROWS, severities=(1, 5), faithfulness=())
    assert res.skipped == []
    kept = _values(res, attribute="performance", metric="prediction_kept")
    assert len(kept) == 2 and kept[1] <= kept[0]


@pytest.mark.parametrize("methods, attacks, rows, match", [
    (["pdp"], ["noise"], None, "local attributions"),
    (["nope"], ["noise"], None, "unknown method"),
    (["shap"], ["rain"], None, "unknown attack"),
    (["shap"], ["noise"], None, "unknown faithfulness metric"),
    (["shap"], ["noise"], [10 ** 6], "rows must be between"),
    ([], ["noise"], None, "at least one method"),
])
def test_bad_requests_are_one_sentence(gbt, table, methods, attacks, rows, match):
    with pytest.raises(studio.StudioError, match=match):
        studio.assess(gbt, table, methods, attacks, rows=rows,
                      faithfulness=("leakage",) if match.startswith("unknown faith") else ())


def test_gradient_attacks_move_a_confident_classifier_whose_probabilities_are_exactly_one():
    """A classifier sure of every row (float32 probability 1.0) has no gradient in log(probability): the attack
    must take its loss from the logits, or FGSM / PGD leave every row as it was and the rows count as robust
    and resilient (found by a new-user trial: resilience 1.00 at every epsilon, max|dx| 0)."""
    import torch

    from studio.quality.attacks import adversarial

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 3))
    with torch.no_grad():
        net[1].weight.mul_(400.0)
    model = studio.wrap_model(net.eval(), card={"task": "classification", "class_names": ["a", "b", "c"],
                                                "input_size": [1, 16, 16], "outputs": "logits"})
    x = np.random.default_rng(0).random((6, 1, 16, 16), dtype=np.float32)
    p = model.output(x)
    target = p.argmax(axis=1)
    assert (p.max(axis=1) == 1.0).all()  # saturated in float32
    for attack in ("fgsm", "pgd"):
        moved = np.abs(adversarial(model, x, "image", attack, 2, target) - x).reshape(6, -1).max(axis=1)
        assert np.allclose(moved, 0.1, atol=1e-6), (attack, moved)  # every row at epsilon 0.1 (L-inf)


def test_an_assessment_rerun_from_its_provenance_reproduces_its_numbers(gbt, table, mlp, tmp_path):
    """XAIport's provenance: the JSON alone (methods, parameters, attacks, rows, seed, settings) gives the same
    numbers again; a changed seed in it does not, and another model is refused."""
    from studio.errors import StudioError
    from studio.quality import reassess

    first = studio.assess(gbt, table, ["shap", "lime"], ["noise"], rows=ROWS, severities=(1, 3), seed=3,
                          method_params={**SHAP, "lime": {"num_samples": 200}}, faithfulness=("deletion",),
                          cache=False)
    path = tmp_path / "assessment.json"
    path.write_text(first.to_json())
    again, same = reassess(path, gbt, table)
    assert same["numbers"] == len(first.numbers()) > 10 and same["equal"] == same["numbers"], same["differ"]
    doc = json.loads(first.to_json())
    doc["provenance"]["seed"] = 4
    assert reassess(doc, gbt, table)[1]["equal"] < same["numbers"]
    with pytest.raises(StudioError, match="the model is not the one this assessment recorded"):
        reassess(path, mlp, table)
