"""Cost estimates before a run, and sample sizes that fit a time budget.

Estimated seconds = model calls x the measured fixed cost of one call
+ the explainer's ``estimate_evaluations`` (rows passed to the model) x the
measured marginal seconds per row (x :data:`GRADIENT_FACTOR` for methods
that also run the model backwards). The fixed per-call cost (input
conversion, feature-name checks, framework dispatch) is what dominates
small models and methods that call the model once per sample, row or
feature; leaving it out made estimates 10 to 1000 times too low. Nobody
should start a 30-hour job by accident.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

SAMPLE_PARAMS = ("max_rows", "n_samples", "num_samples", "nsamples", "max_evals", "n_repeats", "n_steps")
"""Parameters that set how much a method samples, tried in this order when fitting a budget."""


API_CALLS = 3
"""Model calls allowed around every method: the predicted class of the explained rows (local methods) and the
outputs methods read for their checks (e.g. f(x) for SHAP's additivity); a cache hit makes none."""
CALL_ROWS = 4096
"""Rows per model call assumed for methods that do not say how they batch (the curve methods' block size)."""
GRADIENT_FACTOR = 3.0
"""A forward and a backward pass cost about three forward passes."""


def _best(call, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


@dataclass
class Timing:
    """Measured cost of the model: a fixed part per call and a marginal part per row.

    Attributes
    ----------
    per_call : float
        Seconds of one call on a single row (the fixed cost of any call).
    per_row : float
        Marginal seconds per extra row in a batched call.
    """

    per_call: float
    per_row: float


def model_timing(model, data, batch: int = 256, repeats: int = 2) -> Timing:
    """Time one small (1-row) and one batched ``model.output`` call (best of ``repeats`` each).

    The marginal cost per row is the batched call's time beyond the 1-row
    call, spread over its other rows (at least a tenth of the batched call's
    mean time per row, so timing noise cannot make rows free).
    """
    if getattr(model, "remote", False):  # measured in the sandbox's worker, where explainers call the model
        return model.timing(data, batch)
    n = min(batch, len(data))
    x = data.x[:n]
    model.output(x[:1])  # warm up (lazy init, JIT)
    one = _best(lambda: model.output(x[:1]), repeats)
    full = _best(lambda: model.output(x), repeats)
    per_call = min(one, full)
    extra = max(full - per_call, 0.1 * full)
    return Timing(per_call=per_call, per_row=extra / max(n - 1, 1))


def seconds_per_row(model, data, batch: int = 256, repeats: int = 2) -> float:
    """Measured seconds per row of one batched ``model.output`` call (best of ``repeats``), fixed cost included."""
    n = min(batch, len(data))
    x = data.x[:n]
    model.output(x[:1])  # warm up (lazy init, JIT)
    return _best(lambda: model.output(x), repeats) / max(n, 1)


def estimate_calls(explainer, model, data, params: dict, n_rows: int, evaluations: int) -> int:
    """Model calls a run makes: the explainer's own ``estimate_calls`` when it has one, else a rough count.

    The rough count: :data:`API_CALLS`, plus, for local methods, one call per
    explained row (they work row by row) or per :data:`CALL_ROWS` evaluated
    rows, whichever is more; for global methods, one call per pass over the
    data or its ``max_rows`` sample (permutation importance: one per feature
    and repeat), at most :data:`CALL_ROWS` rows each.
    """
    own = getattr(explainer, "estimate_calls", None)
    if own is not None:
        return int(own(model, data, params, n_rows))
    if getattr(explainer, "scope", "local") == "local":
        return API_CALLS + max(n_rows, -(-int(evaluations) // CALL_ROWS), 1)
    rows = len(data)
    if isinstance(params.get("max_rows"), (int, np.integer)) and params["max_rows"] > 0:  # a sample of the rows
        rows = min(rows, int(params["max_rows"]))
    return API_CALLS + max(-(-int(evaluations) // max(1, min(rows, CALL_ROWS))), 1)


@dataclass
class Estimate:
    """The estimated cost of one run.

    Attributes
    ----------
    evaluations : int
        Rows the method passes to the model.
    seconds : float
    calls : int
        Model calls counted at the fixed per-call cost.
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
    calls: int = 0


def estimate(explainer, model, data, params: dict, n_rows: int, per_row: float, budget: float | None = None,
             fit: bool = False, per_call: float = 0.0) -> Estimate:
    """Estimated cost of ``explainer`` with ``params``; optionally shrink sample sizes to fit ``budget``.

    Parameters
    ----------
    explainer : Explainer
    params : dict
        Validated parameters.
    n_rows : int
        Rows explained (local methods).
    per_row : float
        Marginal seconds per evaluated row (:func:`model_timing`).
    budget : float, optional
        Seconds allowed.
    fit : bool
        Halve the sampling parameters (:data:`SAMPLE_PARAMS`, never below
        their declared low bound) until the estimate fits the budget.
    per_call : float
        Fixed seconds of one model call (:func:`model_timing`), counted
        :func:`estimate_calls` times.
    """
    params = dict(params)
    factor = GRADIENT_FACTOR if getattr(explainer, "needs_gradients", False) else 1.0
    calls = 0

    def cost(p):
        nonlocal calls
        evals = int(explainer.estimate_evaluations(model, data, p, n_rows))
        calls = estimate_calls(explainer, model, data, p, n_rows, evals) if per_call else 0
        return evals, factor * (evals * per_row + calls * per_call)

    evals, secs = cost(params)
    if budget is None or secs <= budget:
        return Estimate(evals, secs, params, True, calls=calls)
    if not fit:
        return Estimate(evals, secs, params, False, f"about {human(secs)}, over the budget of {human(budget)}",
                        calls=calls)
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
        return Estimate(evals, secs, params, True, "reduced to fit the budget: " + ", ".join(changed), calls=calls)
    return Estimate(evals, secs, params, False,
                    f"about {human(secs)} even at the smallest sample sizes, over the budget of {human(budget)}; "
                    "raise the budget or explain fewer rows", calls=calls)


def human(seconds: float) -> str:
    """A duration in words, two significant figures at most: 'under 0.01 s', '0.4 s', '42 s', '3 min', '2.5 h'."""
    if seconds < 0.01:
        return "under 0.01 s"
    if seconds < 90:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
