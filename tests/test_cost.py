"""Cost estimates: each method's declared counts equal what a run does; calibration is kept and reused; budgets.

Nothing here times anything: seconds per count are measured by :func:`studio.cost.calibrate` and compared with
timed runs, as ratios, in benchmarks/ (section "cost").
"""

from __future__ import annotations

import json

import pytest

from studio.cost import Calibration, estimate, human, run_cost
from studio.explainers import registry
from studio.explainers.base import Cost

# every method, on a small model of its kind, with parameters that keep the run short (the counts depend on them)
CASES = {
    ("tabular", "shap"): {},
    ("tabular", "lime"): {"num_samples": 300},
    ("tabular", "anchors"): {"batch_size": 50, "fresh_samples": 500},
    ("tabular", "pdp"): {"max_rows": 300, "grid_resolution": 7, "features": ["mean radius", "mean texture:mean area"]},
    ("tabular", "ice"): {"max_rows": 40},
    ("tabular", "ale"): {"max_rows": 300, "features": ["mean radius", "mean texture:mean area"]},
    ("tabular", "permutation_importance"): {"n_repeats": 2, "max_rows": 100},
    ("tabular", "ebm_surrogate"): {"max_rows": 100, "outer_bags": 1, "max_rounds": 20, "interactions": 0},
    ("tabular", "ebm"): {"max_rows": 100, "outer_bags": 1, "max_rounds": 20, "interactions": 0},
    ("mlp", "shap"): {"nsamples": 60, "algorithm": "gradient", "background": 20},
    ("mlp", "saliency"): {},
    ("mlp", "integrated_gradients"): {"n_steps": 8, "max_gap": 0.0},
    ("image", "shap"): {"max_evals": 20},
    ("image", "lime"): {"n_samples": 300},
    ("image", "anchors"): {"n_validate": 100, "batch_size": 20, "threshold": 0.8},
    ("image", "saliency"): {},
    ("image", "integrated_gradients"): {"n_steps": 8, "max_gap": 0.0},
    ("image", "input_x_gradient"): {},
    ("image", "smoothgrad"): {"n_samples": 6},
    ("image", "grad_cam"): {},
    ("image", "guided_grad_cam"): {},
    ("image", "occlusion"): {"window": 8, "stride": 8},
    ("image", "feature_ablation"): {},
    ("image", "model_randomisation"): {"max_layers": 2},
}


def counting(model, monkeypatch) -> dict:
    """Count model calls and rows as the model sees them: ``_raw_output`` calls (numpy models); for torch models
    every call of the differentiable module (``torch_module`` and ``torch_module_over``), split by whether
    gradients are being recorded (a forward+backward pass) or not."""
    import torch

    seen = {"calls": 0, "rows": 0, "grad_calls": 0, "grad_rows": 0}

    def count(x):
        grad = torch.is_grad_enabled() and isinstance(x, torch.Tensor) and getattr(model, "differentiable", False)
        seen["grad_calls" if grad else "calls"] += 1
        seen["grad_rows" if grad else "rows"] += len(x)

    class Counted(torch.nn.Module):  # a module still (shap and captum look for one)
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x, *args, **kwargs):
            count(x)
            return self.inner(x, *args, **kwargs)

    def counted(f):
        if isinstance(f, torch.nn.Module):
            return Counted(f)

        def call(x, *args, **kwargs):
            count(x)
            return f(x, *args, **kwargs)
        return call

    if getattr(model, "differentiable", False):
        module, over = model.torch_module, model.torch_module_over
        monkeypatch.setattr(model, "torch_module", lambda *a, **k: counted(module(*a, **k)))
        monkeypatch.setattr(model, "torch_module_over", lambda *a, **k: counted(over(*a, **k)))
    else:
        monkeypatch.setattr(model, "_raw_output", counted(model._raw_output))
    return seen


@pytest.mark.parametrize("case", list(CASES), ids=[f"{k}-{m}" for k, m in CASES])
def test_declared_counts_equal_a_counted_run(case, gbt, mlp, table, cnn, digits, monkeypatch):
    """The cost model counts what the run does: model calls and rows, forward and forward+backward, equal to the
    counts of a real run (adaptive searches, marked ``bound``, within a factor of 3; SLIC may give fewer
    superpixels than asked)."""
    import studio

    kind, method = case
    model, data = {"tabular": (gbt, table), "mlp": (mlp, table), "image": (cnn, digits)}[kind]
    data = data.aligned_to(model)
    explainer = registry.get(method, data.kind)
    params = explainer.params.validate(CASES[case], method)
    rows = [3, 7] if explainer.scope == "local" else None
    studio.explain(model, data, method, rows=rows, params=params, cache=False)  # warm: one-off probes of the data
    declared = run_cost(explainer, model, data, params, len(rows or []))
    seen = counting(model, monkeypatch)
    studio.explain(model, data, method, rows=rows, params=params, cache=False)
    got = {k: declared.to_dict()[k] for k in seen}
    assert sum(seen.values()) > 0 or declared.own > 0
    if declared.bound:
        for k in ("calls", "rows"):
            both = (seen[k] + seen["grad_" + k], got[k] + got["grad_" + k])
            assert both[0] / 3 <= both[1] <= both[0] * 3, (method, got, seen)
    else:
        assert got == seen, (method, declared, seen)


def test_estimate_is_counts_times_calibrated_seconds(gbt, table):
    pi = registry.get("permutation_importance", "tabular")
    params = pi.params.validate({"n_repeats": 4, "max_rows": 100})
    cal = Calibration(forward=(1e-3, 1e-5), own=(0.5, 2e-3))
    est = estimate(pi, gbt, table, params, 0, calibration=cal)
    counts = 2 + 30 * 4  # the baseline and check scores, one call per feature and repeat
    assert est.calls == counts and est.evaluations == counts * 100
    assert est.seconds == pytest.approx(counts * 1e-3 + counts * 100 * 1e-5 + 0.5 + 2e-3 * est.cost.own)
    ig = registry.get("integrated_gradients", "tabular")
    grad = Calibration(forward=(1.0, 0.0), backward=(10.0, 0.1))
    c = Cost(calls=2, rows=5, grad_calls=3, grad_rows=7)
    assert grad.seconds(c) == pytest.approx(2 * 1.0 + 3 * 10.0 + 7 * 0.1)
    assert ig.needs_gradients


def test_sample_sizes_are_halved_until_the_budget_fits(gbt, table):
    pi = registry.get("permutation_importance", "tabular")
    params = pi.params.validate({"n_repeats": 5, "max_rows": 800})
    cal = Calibration(forward=(0.0, 1e-3))  # 1 ms per row: 800 rows x 152 calls = 122 s
    est = estimate(pi, gbt, table, params, 0, budget=40.0, fit=True, calibration=cal)
    # 800 -> 400 -> 200 rows (30 s)
    assert est.fits and est.params["max_rows"] == 200 and est.params["n_repeats"] == 5
    assert "max_rows 800 -> 200" in est.note and "n_repeats" not in est.note
    assert est.seconds == pytest.approx(200 * 152 * 1e-3)
    refused = estimate(pi, gbt, table, params, 0, budget=10.0, calibration=cal)
    assert not refused.fits and "over the budget" in refused.note
    slow = estimate(pi, gbt, table, pi.params.validate({"n_repeats": 1, "max_rows": 1}), 0, budget=1.0, fit=True,
                    calibration=Calibration(forward=(10.0, 0.0)))
    assert not slow.fits and "even at the smallest useful sample sizes" in slow.note


def test_cut_to_fit_keeps_each_method_useful_and_says_why(gbt, table):
    """Cutting to fit a budget never takes a sample size below the method's useful minimum (``fit_low``: permutation
    importance keeps 200 rows for its score and 2 shuffles for its spread), cuts the next size instead, and when
    even the minimums do not fit it says which held and why; sizes the user set below a minimum stay as set."""
    pi = registry.get("permutation_importance", "tabular")
    declared = {p.name: p for p in pi.params.params}
    assert declared["max_rows"].fit_low == 200 and declared["n_repeats"].fit_low == 2
    params = pi.params.validate({"n_repeats": 5, "max_rows": 0})  # every row (569)
    cal = Calibration(forward=(0.0, 1e-3))
    est = estimate(pi, gbt, table, params, 0, budget=15.0, fit=True, calibration=cal)
    # rows 569 -> 284 -> 200 (30 s: the floor), then shuffles 5 -> 2 (62 calls x 200 rows = 12.4 s)
    assert est.fits and (est.params["max_rows"], est.params["n_repeats"]) == (200, 2), est.params
    assert est.note == "reduced to fit the budget: max_rows 569 -> 200, n_repeats 5 -> 2"
    floors = estimate(pi, gbt, table, params, 0, budget=5.0, fit=True, calibration=cal)
    assert not floors.fits and (floors.params["max_rows"], floors.params["n_repeats"]) == (200, 2)
    assert "max_rows is not cut below 200: on fewer rows one row moves the score" in floors.note
    assert "n_repeats is not cut below 2: the spread" in floors.note
    small = estimate(pi, gbt, table, pi.params.validate({"n_repeats": 5, "max_rows": 50}), 0, budget=1.0, fit=True,
                     calibration=cal)  # the user's own 50 rows are kept, never raised nor cut further
    assert small.params["max_rows"] == 50 and small.params["n_repeats"] == 2
    # every floor is within the parameter's bounds and says why
    floored = []
    for name, kinds in registry.REGISTRY.items():
        for kind in kinds:
            for p in registry.get(name, kind).params.params:
                if p.fit_low is not None:
                    assert (p.low or 0) <= p.fit_low <= (p.high or p.fit_low) and p.fit_why, (name, p.name)
                    floored.append(p.name)
    assert {"max_rows", "num_samples", "n_samples", "max_evals", "n_repeats", "n_steps"} <= set(floored)


def test_durations_print_two_significant_figures():
    assert human(0.5) == "0.5 s" and human(42) == "42 s" and human(0.0123456) == "0.012 s"
    assert human(9.7e-05) == "under 0.01 s" and human(77.4) == "77 s" and human(600) == "10 min"
    assert human(30 * 3600) == "30 h" and human(1234) == "21 min" and human(8.76) == "8.8 s"


def test_calibration_is_stored_and_reused(gbt, table, monkeypatch, isolated_cache):
    """The first estimate of a model and method calibrates (timed calls and probe runs) and stores it under the
    cache folder; later estimates, in this process or a new one, make no calibration call."""
    from studio import cost

    real, calls = cost.calibrate, []

    def spy(*args, **kwargs):
        calls.append(args[0].name)
        return real(*args, **kwargs)

    monkeypatch.setattr(cost, "calibrate", spy)
    monkeypatch.setattr(cost, "_MEMO", {})
    ale = registry.get("ale", "tabular")
    params = ale.params.validate({"max_rows": 200})
    first = cost.estimate(ale, gbt, table, params, 0)
    assert calls == ["ale"] and first.seconds > 0
    stored = list((isolated_cache / "calibration").glob("*.json"))
    assert len(stored) == 1
    kept = json.loads(stored[0].read_text())
    assert kept["key"]["model"] == gbt.fingerprint and kept["key"]["method"] == "ale" and kept["key"]["device"] == "cpu"
    assert len(kept["value"]["probes"]) == 2
    cost._MEMO.clear()  # as a new process: read from the folder
    second = cost.estimate(ale, gbt, table, params, 0)
    assert calls == ["ale"] and second.seconds == pytest.approx(first.seconds)
    cost.estimate(ale, gbt, table, ale.params.validate({"max_rows": 50}), 0)  # other sample sizes: same calibration
    assert calls == ["ale"]
    cost.estimate(registry.get("pdp", "tabular"), gbt, table, registry.get("pdp", "tabular").params.validate({}), 0)
    assert calls == ["ale", "pdp"]  # another method calibrates once


def test_estimate_cli_prints_two_significant_figures(capsys):
    from studio.cli import main
    from tests.conftest import MODELS, SAMPLE_DATA

    args = ["explain", "--model", str(MODELS / "tabular_gbt.skops"), "--data", str(SAMPLE_DATA / "breast_cancer.csv"),
            "--method", "ale", "--estimate", "--sandbox", "off"]
    assert main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "ale" and out["counts"]["calls"] == out["calls"] and out["seconds"] > 0
    assert len(str(out["seconds"]).replace("0.", "").lstrip("0").replace(".", "").rstrip("0")) <= 2
    assert main(args) == 0
    line = capsys.readouterr().out
    assert "nothing was run" in line and "calls" in line


def test_a_run_past_its_budget_is_stopped_and_says_so(digits, isolated_cache):
    """A slow run (integrated gradients at 1024 steps on 40 images) with a 1 s budget is stopped in its sandboxed
    worker; the error is one sentence naming the budget and how to raise it; nothing is cached; the next run
    works."""
    import studio
    from studio.cache import Cache
    from studio.errors import StudioError
    from tests.conftest import MODELS

    model = studio.load_model(MODELS / "image_cnn.pt")  # sandboxed: the worker is stopped, not just asked
    with pytest.raises(StudioError) as err:
        studio.explain(model, digits, "integrated_gradients", rows=list(range(40)),
                       params={"n_steps": 1024, "max_gap": 0.0}, timeout=1.0)
    message = str(err.value)
    assert "ran past its time limit (a budget of 1 s) and was stopped" in message and "raise the budget" in message
    assert message.count(". ") == 0 and "\n" not in message  # one sentence
    assert Cache().entries() == []
    exp = studio.explain(model, digits, "integrated_gradients", rows=[0], params={"n_steps": 8}, timeout=120)
    assert exp.cache == "miss" and exp.values.shape[0] == 1
    model.close()


def test_finished_runs_refine_the_estimate_and_it_is_kept(gbt, table, monkeypatch, isolated_cache):
    """Every computed run refines its method's calibration (measured / estimated seconds, kept in the cache
    beside it): the estimate follows the geometric median of the kept runs' ratios, so from the third run one
    odd run no longer moves it; a new process reads the refined calibration; a method never calibrated is left
    alone; cache hits refine nothing. The seconds are a synthetic clock (``record_run`` is given them), so
    nothing is timed."""
    import studio
    from studio import cost

    monkeypatch.setattr(cost, "_MEMO", {})
    monkeypatch.setattr(cost, "calibrate", lambda *a, **k: Calibration(forward=(1e-3, 1e-5), own=(0.1, 0.0)))
    pdp = registry.get("pdp", "tabular")
    params = pdp.params.validate({"max_rows": 100})
    before = estimate(pdp, gbt, table, params, 0).seconds
    base = cost.calibrated(pdp, gbt, table, params).base_seconds(run_cost(pdp, gbt, table, params, 0))
    assert before == pytest.approx(base)
    cost.record_run(pdp, gbt, table, params, 0, 4 * base)  # a run 4x slower than estimated
    assert estimate(pdp, gbt, table, params, 0).seconds == pytest.approx(4 * base)
    cost.record_run(pdp, gbt, table, params, 0, base)  # then one as estimated: the geometric mean of 4 and 1
    assert estimate(pdp, gbt, table, params, 0).seconds == pytest.approx(2 * base)
    cost.record_run(pdp, gbt, table, params, 0, 4 * base)  # the median of 4, 1, 4
    assert estimate(pdp, gbt, table, params, 0).seconds == pytest.approx(4 * base)
    cost.record_run(pdp, gbt, table, params, 0, 400 * base)  # one spike: the median of 1, 4, 4, 400 moves not
    assert estimate(pdp, gbt, table, params, 0).seconds == pytest.approx(4 * base)
    bigger = pdp.params.validate({"max_rows": 400})  # other sizes carry the same factor
    assert estimate(pdp, gbt, table, bigger, 0).seconds == pytest.approx(
        4 * cost.calibrated(pdp, gbt, table, bigger).base_seconds(run_cost(pdp, gbt, table, bigger, 0)))
    cost._MEMO.clear()  # a new process reads the refined calibration from the cache folder
    assert estimate(pdp, gbt, table, params, 0).seconds == pytest.approx(4 * base)
    for _ in range(cost.RUNS_KEPT):  # the last RUNS_KEPT runs only: an old slow spell is forgotten
        cost.record_run(pdp, gbt, table, params, 0, base / 2)
    assert estimate(pdp, gbt, table, params, 0).seconds == pytest.approx(base / 2)

    ale = registry.get("ale", "tabular")
    assert cost.record_run(ale, gbt, table, ale.params.validate({}), 0, 1.0) is None  # never estimated: untouched
    assert not cost.is_calibrated(ale, gbt, table, ale.params.validate({}))

    seen = []
    monkeypatch.setattr(cost, "record_run", lambda *a, **k: seen.append((a[0].name, a[5])))
    studio.explain(gbt, table, "pdp", params=params, cache=True)
    studio.explain(gbt, table, "pdp", params=params, cache=True)  # a hit: nothing to learn from
    assert [name for name, _ in seen] == ["pdp"] and seen[0][1] > 0


def test_one_model_timing_serves_every_method(gbt, table, monkeypatch, isolated_cache):
    """The model's call timing is measured once per model and direction and reused by every method's calibration
    (in this process and, from the cache folder, in the next)."""
    from studio import cost

    monkeypatch.setattr(cost, "_MEMO", {})
    timed, real = [], cost.call_timing

    def spy(model, data, batch, backward=False):
        timed.append(backward)
        return real(model, data, batch, backward)

    monkeypatch.setattr(cost, "call_timing", spy)
    for method in ("pdp", "ale", "permutation_importance"):
        explainer = registry.get(method, "tabular")
        cost.calibrated(explainer, gbt, table, explainer.params.validate({"max_rows": 100}))
    assert timed == [False]
    cost._MEMO.clear()
    ice = registry.get("ice", "tabular")
    cost.calibrated(ice, gbt, table, ice.params.validate({"max_rows": 20}))
    assert timed == [False]
    assert len(list((isolated_cache / "calibration" / "models").glob("*.json"))) == 1


def test_own_work_fit_does_not_multiply_a_spike():
    """The method's own seconds per unit from two probes: exact on a clean line, and a probe slowed by other
    processes goes to the fixed part instead of a slope that a larger run multiplies."""
    from studio.cost import own_fit

    assert own_fit([(50, 0.1 + 50 * 2e-3), (100, 0.1 + 100 * 2e-3)]) == pytest.approx((0.1, 2e-3))
    c, d = own_fit([(50, 0.05), (100, 0.5)])  # 1 ms per unit, then a 5x spike on the larger probe
    assert d == pytest.approx(1e-3) and c + 600 * d < 1.0  # not 0.009 per unit, 5.4 s at 600 units
    assert own_fit([(1, 0.2), (1, 0.4)]) == pytest.approx((0.3, 0.0))  # equal units: a fixed cost
    assert own_fit([(1, 0.4), (2, 0.2)]) == pytest.approx((0.3, 0.0))  # the larger probe faster: noise


def test_calibration_costs_a_fraction_of_a_run_on_a_large_image():
    """Every image method's calibration (a warm-up and two probes, :meth:`probe_params`) sends at most half
    of the model rows of one default run on one 224 x 224 image, or 64 rows: occlusion's probes were whole runs
    (3,138 rows each: an estimate of resnet18 ran for minutes)."""
    import numpy as np
    import torch

    import studio
    from studio.data.dataset import Dataset

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(4, 3))
    model = studio.wrap_model(net.eval(), card={"task": "classification", "class_names": ["a", "b", "c"],
                                                "input_size": [3, 224, 224]})
    data = Dataset(kind="image", x=np.random.default_rng(0).random((3, 3, 224, 224), dtype=np.float32),
                   y=np.zeros(3, dtype=np.int64), class_names=["a", "b", "c"], name="large")
    checked, heavy = [], []
    for name in [n for n in registry.names() if "image" in registry.REGISTRY[n]]:
        explainer = registry.get(name, "image")
        if explainer.scope != "local":
            continue
        checked.append(name)
        params = explainer.params.validate({}, name)
        run = run_cost(explainer, model, data, params, 1, target=0)
        probes = 0
        for k in (0, 0, 1):  # the warm-up runs probe 0's parameters
            p, rows = explainer.probe_params(dict(params), data, k)
            c = run_cost(explainer, model, data, explainer.params.validate(p, name), rows, target=0)
            probes += c.rows + c.grad_rows
        if probes > max((run.rows + run.grad_rows) / 2, 64):
            heavy.append((name, probes, run.rows + run.grad_rows))
    assert not heavy
    assert {"occlusion", "feature_ablation", "integrated_gradients", "lime"} <= set(checked)


def test_first_use_set_up_is_added_where_the_method_is_cold(gbt, table, monkeypatch, isolated_cache):
    """A method's first run in a fresh process pays its imports and compilation (``Calibration.cold``, measured
    by the calibration's warm-up run): estimates add it where the method has not run on this model here, and
    always for a command that will start a new process (``explain --estimate``); a cold run refines the estimate
    against the estimate WITH the set-up, so the set-up is not learned into every later warm run (a trial: the
    wine pipeline's SHAP, 9.0 s cold and 0.26 s warm, was estimated at 3.5 s warm after two command-line runs)."""
    from studio import cost

    monkeypatch.setattr(cost, "_MEMO", {})
    monkeypatch.setattr(cost, "_WARM", {})
    monkeypatch.setattr(cost, "calibrate", lambda *a, **k: Calibration(forward=(1e-3, 1e-5), own=(0.1, 0.0), cold=5.0))
    pdp = registry.get("pdp", "tabular")
    params = pdp.params.validate({"max_rows": 100})
    base = cost.calibrated(pdp, gbt, table, params).base_seconds(run_cost(pdp, gbt, table, params, 0))
    first = estimate(pdp, gbt, table, params, 0)
    assert first.seconds == pytest.approx(base + 5.0) and first.setup == pytest.approx(5.0)
    assert "about 5 s of it is first-use set-up" in first.words()
    cost.record_run(pdp, gbt, table, params, 0, base + 5.0)  # the cold run took what was estimated
    warm = estimate(pdp, gbt, table, params, 0)
    assert warm.seconds == pytest.approx(base) and warm.setup == 0 and "set-up" not in warm.words()
    assert estimate(pdp, gbt, table, params, 0, fresh=True).seconds == pytest.approx(base + 5.0)
    assert cost.is_warm(pdp, gbt) and not cost.is_warm(registry.get("ale", "tabular"), gbt)
    kept = cost.calibrated(pdp, gbt, table, params)
    assert Calibration.from_dict(json.loads(json.dumps(kept.to_dict()))).cold == 5.0  # kept with the calibration
