"""Cost estimates: evaluations x seconds per row, and sample sizes cut to fit a budget."""

from __future__ import annotations

import pytest

from studio.cost import estimate, human, seconds_per_row
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
