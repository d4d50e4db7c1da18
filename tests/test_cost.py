"""Cost estimates: evaluations x seconds per row, and sample sizes cut to fit a budget."""

from __future__ import annotations

import pytest

from studio.cost import estimate, human, model_timing, seconds_per_row
from studio.explainers import registry


def test_estimate_is_evaluations_times_per_row(gbt, table):
    pi = registry.get("permutation_importance", "tabular")
    params = pi.params.validate({"n_repeats": 4, "max_rows": 100})
    est = estimate(pi, gbt, table, params, 0, per_row=1e-3)
    assert est.evaluations == 100 * 30 * 4
    assert est.seconds == pytest.approx(12.0)
    assert est.fits and est.params == params


def test_sample_sizes_are_halved_until_the_budget_fits(gbt, table):
    pi = registry.get("permutation_importance", "tabular")
    params = pi.params.validate({"n_repeats": 5, "max_rows": 400})
    # 400 * 30 * 5 = 60,000 evaluations at 1 ms = 60 s; budget 10 s -> max_rows 400 -> 200 -> 100 -> 50 (7.5 s)
    est = estimate(pi, gbt, table, params, 0, per_row=1e-3, budget=10.0, fit=True)
    assert est.fits and est.params["max_rows"] == 50 and est.params["n_repeats"] == 5
    assert est.seconds == pytest.approx(50 * 30 * 5 * 1e-3) and "max_rows=50" in est.note
    # without fitting, the same run is refused with the estimate in words
    refused = estimate(pi, gbt, table, params, 0, per_row=1e-3, budget=10.0, fit=False)
    assert not refused.fits and "over the budget" in refused.note


def test_a_run_that_cannot_fit_is_refused(gbt, table):
    pi = registry.get("permutation_importance", "tabular")
    params = pi.params.validate({"n_repeats": 1, "max_rows": 1})
    est = estimate(pi, gbt, table, params, 0, per_row=10.0, budget=1.0, fit=True)
    assert not est.fits and "even at the smallest sample sizes" in est.note
    assert est.params["max_rows"] == 1 and est.params["n_repeats"] == 1  # never below the declared low bounds
    # max_rows=0 means every row: it is cut from the data size
    every = estimate(pi, gbt, table, pi.params.validate({"n_repeats": 1, "max_rows": 0}), 0, per_row=1e-3,
                     budget=2.0, fit=True)
    assert every.fits and every.params["max_rows"] == len(table) // 16  # 569 -> 284 -> 142 -> 71 -> 35 (1.05 s)


def test_seconds_per_row_is_positive_and_human_durations(gbt, table):
    assert 0 < seconds_per_row(gbt, table, batch=32, repeats=1) < 1
    assert human(0.5) == "0.5 s" and human(42) == "42 s" and human(600) == "10 min" and human(30 * 3600) == "30.0 h"
    assert human(9.7e-05) == "under 0.01 s" and human(0.0123456) == "0.012 s"  # no false precision


def test_each_model_call_adds_the_fixed_per_call_cost(gbt, table, cnn, digits):
    from studio.cost import API_CALLS, CALL_ROWS, GRADIENT_FACTOR, estimate_calls

    pi = registry.get("permutation_importance", "tabular")
    params = pi.params.validate({"n_repeats": 2, "max_rows": 100})
    est = estimate(pi, gbt, table, params, 0, per_row=1e-6, per_call=1e-3)
    # one pass over the 100 rows per feature and repeat, plus the calls around every run
    assert est.evaluations == 100 * 30 * 2 and est.calls == API_CALLS + 30 * 2
    assert est.seconds == pytest.approx(6000 * 1e-6 + est.calls * 1e-3)
    assert estimate(pi, gbt, table, params, 0, per_row=1e-6).seconds == pytest.approx(6000 * 1e-6)  # no per-call
    ig = registry.get("integrated_gradients", "image")
    ig_params = ig.params.validate({})
    local = estimate(ig, cnn, digits, ig_params, 3, per_row=1e-4, per_call=1e-2)
    n_calls = estimate_calls(ig, cnn, digits, ig_params, 3, local.evaluations)
    assert n_calls == API_CALLS + max(3, -(-local.evaluations // CALL_ROWS)) == local.calls
    assert local.seconds == pytest.approx(GRADIENT_FACTOR * (local.evaluations * 1e-4 + n_calls * 1e-2))


def test_model_timing_splits_a_fixed_and_a_per_row_cost(gbt, table):
    t = model_timing(gbt, table, batch=64, repeats=1)
    assert 0 < t.per_call < 1 and 0 < t.per_row < 1  # the split is checked against measured runs below


def counting(model, monkeypatch) -> dict:
    """Count the model calls and rows a run makes: every ``_raw_output`` call (numpy path) and, for torch
    models, every call of the differentiable module explainers use directly."""
    seen = {"calls": 0, "rows": 0}

    def counted(f):
        def call(x, *args, **kwargs):
            seen["calls"] += 1
            seen["rows"] += len(x)
            return f(x, *args, **kwargs)
        return call

    monkeypatch.setattr(model, "_raw_output", counted(model._raw_output))
    if getattr(model, "differentiable", False):
        module = model.torch_module
        monkeypatch.setattr(model, "torch_module", lambda *a, **k: counted(module(*a, **k)))
    return seen


@pytest.mark.parametrize("case", ["permutation_importance", "occlusion", "lime", "integrated_gradients"])
def test_estimated_calls_and_rows_match_a_counted_run(case, gbt, table, cnn, digits, monkeypatch):
    """The estimate counts what the run does: model calls and rows within a factor of 2 of the calls and rows
    counted on a real run (deterministic; seconds per call and per row are measured, and compared with timed
    runs as ratios, in benchmarks/). A formula missing the per-call term or the method's own passes is off by
    10 to 100 times here."""
    import studio

    if case == "permutation_importance":  # 60 small calls of 20 rows: the fixed cost is most of the time
        model, data, rows, params = gbt, table, None, {"n_repeats": 2, "max_rows": 20}
    elif case == "lime":
        model, data, rows, params = gbt, table, [0], {}
    else:  # one image: its occluded copies in a few batches, or its interpolation path
        model, data, rows, params = cnn, digits, [3], {}
    explainer = registry.get(case, data.kind)
    valid = explainer.params.validate(params)
    est = estimate(explainer, model, data, valid, len(rows or []), per_row=1.0, per_call=1.0)
    seen = counting(model, monkeypatch)
    studio.explain(model, data, case, rows=rows, params=params, cache=False)
    assert seen["calls"] > 0 and seen["rows"] > 0
    assert seen["rows"] / 2 <= est.evaluations <= seen["rows"] * 2, (est, seen)
    assert seen["calls"] / 2 <= est.calls <= seen["calls"] * 2, (est, seen)
