"""Faithfulness: deletion / insertion against a model that reads one region, infidelity against Captum."""

import numpy as np
import pytest
import torch

import studio
from studio.quality import faithfulness as faith


class Quadrant(torch.nn.Module):
    """Two classes from the top-left 8 x 8 quadrant only: logit_1 - logit_0 = 8 x (mean of the quadrant - 0.3)."""

    def forward(self, x):
        s = 8.0 * (x[:, :, :8, :8].mean(dim=(1, 2, 3)) - 0.3)
        return torch.stack([-s / 2, s / 2], dim=1)


@pytest.fixture(scope="module")
def quadrant():
    model = studio.wrap_model(Quadrant(), card={"task": "classification", "class_names": ["off", "on"],
                                               "input_size": [1, 16, 16], "outputs": "logits"})
    rng = np.random.default_rng(0)
    x = rng.uniform(0.4, 1.0, size=(6, 1, 16, 16)).astype(np.float32)  # every row predicted "on"
    return model, x


def test_deletion_of_the_true_attribution_beats_random_order(quadrant):
    model, x = quadrant
    target = model.output(x).argmax(axis=1)
    assert (target == 1).all()
    true = np.zeros_like(x)
    true[:, :, :8, :8] = x[:, :, :8, :8]  # the exact contribution of each pixel (input x gradient of a linear logit)
    fs = faith.settings({"patch": 1, "steps": 16, "insertion_substrate": "zero"}, "image")
    got = faith.deletion_insertion(model, x, true, "image", target, fs)
    n_units = 256
    rand = [faith.deletion_insertion(model, x, None, "image", target, fs, orders=o)
            for o in faith.random_orders(len(x), n_units, seed=0, count=3)]
    rand_del = np.mean([r["deletion_auc"] for r in rand], axis=0)
    rand_ins = np.mean([r["insertion_auc"] for r in rand], axis=0)
    assert (got["deletion_auc"] < rand_del - 0.2).all()  # the quadrant goes in the first quarter of the curve
    assert (got["insertion_auc"] > rand_ins).all()
    # the curve is flat once the quadrant is gone: removing the other 3/4 changes nothing
    quarter = np.searchsorted(got["fractions"], 0.25)
    assert np.allclose(got["deletion"][:, quarter:], got["deletion"][:, -1:])
    # an attribution that puts the quadrant last does worse than random
    wrong = np.ones_like(x)
    wrong[:, :, :8, :8] = 0.0
    bad = faith.deletion_insertion(model, x, wrong, "image", target, fs)
    assert (bad["deletion_auc"] > rand_del).all()


def test_assess_reports_deletion_beside_random_for_a_table(tmp_path):
    """A boosted model on feature a only: deleting a (to the column mean) first beats a random order."""
    import pandas as pd
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
    y = (frame["a"] > 0).astype(int)
    gbc = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0)
    model = studio.wrap_model(gbc.fit(frame[["a"]].assign(b=0.0, c=0.0, d=0.0), y))
    frame.assign(label=y).to_csv(tmp_path / "t.csv", index=False)
    data = studio.load_dataset(tmp_path / "t.csv", label="label")
    rows = [int(i) for i in np.argsort(-np.abs(frame["a"].to_numpy()))[:6]]  # confident rows
    res = studio.assess(model, data, ["shap"], [], rows=rows, faithfulness=("deletion", "insertion"),
                        method_params={"shap": {"background": 30, "algorithm": "tree"}})
    rec = {(r["metric"], r["other"]): r["value"] for r in res.records if r["attribute"] == "faithfulness"}
    assert rec[("deletion_auc", "")] < rec[("deletion_auc", "random")]
    assert rec[("insertion_auc", "")] > rec[("insertion_auc", "random")]
    assert res.provenance["faithfulness"]["settings"]["reference"] == "background mean"
    curves = res.curves["shap"]
    assert curves["fractions"][0] == 0 and curves["fractions"][-1] == 1 and len(curves["fractions"]) == 5
    assert len(curves["deletion_auc_rows"]) == len(rows)
    assert np.mean(curves["deletion_auc_rows"]) == pytest.approx(rec[("deletion_auc", "")])
    assert res.checks("shap")["deletion_vs_random"] < 0
    from studio.report import build_report

    html = build_report(model, data, [], interactive=False, assessment=res)
    assert "<h2>Quality of explanations</h2>" in html and "Deletion area minus random order" in html
    assert f"<td>{rec[('deletion_auc', 'random')]:.4g}</td>" in html


def test_the_verdicts_against_random_do_not_depend_on_the_outputs_units(tmp_path):
    """A regressor and the same regressor with its target in units 1000 times smaller give the same verdict
    numbers: the gap between areas is a share of the output's change, not a number in the target's units."""
    import pandas as pd
    from sklearn.ensemble import GradientBoostingRegressor

    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.normal(size=(120, 3)), columns=list("abc"))
    y = 3.0 * frame["a"] + 0.5 * frame["b"]
    data_path = tmp_path / "r.csv"
    frame.assign(y=y).to_csv(data_path, index=False)
    data = studio.load_dataset(data_path, label="y")
    checks = []
    for scale in (1.0, 1000.0):
        gbr = GradientBoostingRegressor(n_estimators=20, max_depth=2, random_state=0).fit(frame, y * scale)
        model = studio.wrap_model(gbr, card={"task": "regression"})
        res = studio.assess(model, data, ["shap"], [], rows=list(range(6)), faithfulness=("deletion", "insertion"),
                            method_params={"shap": {"background": 30, "algorithm": "tree"}})
        checks.append(res.checks("shap"))
    assert all(np.isfinite(v) and v != 0 for v in checks[0].values())
    for key in ("deletion_vs_random", "insertion_vs_random"):
        assert checks[1][key] == pytest.approx(checks[0][key], rel=1e-6)


def test_infidelity_equals_captums_on_a_fixed_case(mlp, table):
    """Our call (through Model.output) against Captum's own on the network, with the same perturbations."""
    from captum.metrics import infidelity

    x = table.x[:4]
    target = mlp.output(x).argmax(axis=1)
    attr = np.random.default_rng(2).normal(size=x.shape)
    scale = x.std(axis=0) + 1.0
    ours = faith.infidelity(mlp, x, attr, "tabular", target, sigma=0.1, n_samples=7, seed=5, scale=scale)

    gen = torch.Generator().manual_seed(5)
    std = torch.as_tensor(0.1 * scale, dtype=torch.float64)

    def perturb(inputs):
        noise = torch.randn(inputs.shape, generator=gen, dtype=torch.float64) * std
        return noise, inputs - noise

    net = mlp.torch_module("probabilities").double()
    try:
        want = infidelity(net, perturb, torch.as_tensor(x), torch.as_tensor(attr), target=torch.as_tensor(target),
                          n_perturb_samples=7, normalize=True).numpy()
    finally:
        net.float()
    assert ours.shape == (4,) and (ours > 0).all()
    assert ours == pytest.approx(want, rel=1e-4)
    assert faith.infidelity(mlp, x, attr, "tabular", target, sigma=0.1, n_samples=7, seed=6, scale=scale)[0] != \
        pytest.approx(ours[0], rel=1e-6)  # another seed draws other perturbations


def test_a_one_channel_map_broadcasts_and_a_wrong_shape_is_one_sentence(quadrant):
    model, x = quadrant
    target = np.ones(len(x), dtype=int)
    one = faith.infidelity(model, x, x[:, :1], "image", target, sigma=0.05, n_samples=3, seed=0)
    assert one.shape == (len(x),)
    with pytest.raises(studio.StudioError, match="one value per input value"):
        faith.infidelity(model, x, x[:, :, :4], "image", target, sigma=0.05, n_samples=3, seed=0)
