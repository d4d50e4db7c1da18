"""Cost estimates before a run, and sample sizes that fit a time budget.

Estimated seconds = the explainer's ``estimate_evaluations`` (rows passed
to the model) x the measured seconds per row of one batched
``model.output`` call. Nobody should start a 30-hour job by accident.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

SAMPLE_PARAMS = ("max_rows", "n_samples", "num_samples", "nsamples", "max_evals", "n_repeats", "n_steps")
"""Parameters that set how much a method samples, tried in this order when fitting a budget."""


def seconds_per_row(model, data, batch: int = 256, repeats: int = 2) -> float:
    """Measured seconds per row of one batched ``model.output`` call (best of ``repeats``)."""
    n = min(batch, len(data))
    x = data.x[:n]
    model.output(x[:1])  # warm up (lazy init, JIT)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model.output(x)
        best = min(best, time.perf_counter() - start)
    return best / max(n, 1)


@dataclass
class Estimate:
    """The estimated cost of one run.

    Attributes
    ----------
    evaluations : int
        Rows the method passes to the model.
    seconds : float
    params : dict
        The parameters the estimate is for (possibly reduced to fit the budget).
    fits : bool
        Whether ``seconds`` <= the budget.
    note : str
        What was reduced, or why it cannot fit.
    """

    evaluations: int
    seconds: float
    params: dict
    fits: bool
    note: str = ""


def estimate(explainer, model, data, params: dict, n_rows: int, per_row: float, budget: float | None = None,
             fit: bool = False) -> Estimate:
    """Estimated cost of ``explainer`` with ``params``; optionally shrink sample sizes to fit ``budget``.

    Parameters
    ----------
    explainer : Explainer
    params : dict
        Validated parameters.
    n_rows : int
        Rows explained (local methods).
    per_row : float
        :func:`seconds_per_row`.
    budget : float, optional
        Seconds allowed.
    fit : bool
        Halve the sampling parameters (:data:`SAMPLE_PARAMS`, never below
        their declared low bound) until the estimate fits the budget.
    """
    params = dict(params)

    def cost(p):
        evals = int(explainer.estimate_evaluations(model, data, p, n_rows))
        return evals, evals * per_row

    evals, secs = cost(params)
    if budget is None or secs <= budget:
        return Estimate(evals, secs, params, True)
    if not fit:
        return Estimate(evals, secs, params, False, f"about {human(secs)}, over the budget of {human(budget)}")
    declared = {p.name: p for p in explainer.params.params}
    changed = []
    for name in SAMPLE_PARAMS:
        if name == "max_rows" and params.get(name) == 0:  # 0 means every row: start from the data size
            params[name] = len(data)
        if name not in declared or not isinstance(params.get(name), (int, np.integer)) or params[name] <= 0:
            continue
        low = int(declared[name].low or 1)
        low = max(low, 1)
        while secs > budget and params[name] > low:
            params[name] = max(low, params[name] // 2)
            evals, secs = cost(params)
        changed.append(f"{name}={params[name]}")
        if secs <= budget:
            break
    if secs <= budget:
        return Estimate(evals, secs, params, True, "reduced to fit the budget: " + ", ".join(changed))
    return Estimate(evals, secs, params, False, f"about {human(secs)} even at the smallest sample sizes, "
                                                f"over the budget of {human(budget)}; raise the budget or explain fewer rows")


def human(seconds: float) -> str:
    """A duration in words: '0.4 s', '3 min', '2.5 h'."""
    if seconds < 90:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
