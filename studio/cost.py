"""Cost estimates before a run: each method's own cost model, calibrated on this machine and remembered.

Every explainer declares its cost model (:meth:`studio.explainers.base.Explainer.cost`): the model calls and
rows it runs forward, the forward+backward passes, and units of its own work (e.g. rows x background rows for
tree SHAP, rows x terms x bags for an EBM fit). :func:`estimate` turns those counts into seconds::

    seconds = a_f x calls + b_f x rows + a_g x gradient calls + b_g x gradient rows + c + d x own units

with coefficients measured here at first use (:func:`calibrate`):

- ``a_f, b_f`` (``a_g, b_g``): one 1-row and one batched model call (forward, or forward+backward), timed where
  the model runs (in its sandboxed worker for a loaded file), ONCE per model and device: every method's
  calibration reuses it (:func:`shared_timing`, ``calibration/models/`` in the cache folder);
- ``c, d``: two tiny runs of the method itself (after a warm-up run that imports its libraries), each the
  shortest of up to five repeats when short, whose time beyond their model calls is the method's own work: the
  fixed part ``c`` (including the studio's overhead per run) and the part per unit ``d``.

Every finished run refines its method's estimate (:func:`record_run`): the calibration keeps the last
:data:`RUNS_KEPT` runs' measured / estimated seconds, and estimates are multiplied by the geometric median of
those ratios. A real run is a better witness of the next real run than the tiny probes are: a calibration
taken at a loaded moment, or a cost the probes do not exercise (a TorchScript graph compiled again for a new
batch shape, a method's refinement loop), is corrected by the first run, and from the third run on one odd run
(a spike of other sessions' load) no longer moves the estimate.

Per-model constants (trees and leaves, layers, pixels) are in the coefficients, as the calibration is kept per
model fingerprint, method and device (``calibration/`` in the studio's cache folder). Nobody should start a
30-hour job by accident, nor wait for an estimate: a calibration takes a few small runs, once.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np

from studio.explainers.base import Cost, batched

SAMPLE_PARAMS = ("max_rows", "n_samples", "num_samples", "nsamples", "max_evals", "n_repeats", "n_steps")
"""Parameters that set how much a method samples, tried in this order when fitting a budget."""
CALIBRATION_VERSION = 3
"""Bump when the cost models or the calibration change: older calibrations are measured again."""
TIMING_CAP = {"tabular": 4096, "image": 8}
"""Rows of the batched timing call (at most; larger calls are extrapolated linearly)."""
MIN_TIMING_ROWS = 8
"""Rows a model's call timing spans at least (a smaller set's rows repeated)."""
RUNS_KEPT = 8
"""Finished runs whose measured / estimated seconds refine a calibration (:func:`record_run`)."""
ADAPTIVE = " for typical rows; the work adapts to each row"
"""What an estimate of an adaptive method (:attr:`Estimate.adaptive`) adds to its seconds in words."""
REFINE_LIMIT = 20.0
"""The most the finished runs may scale a calibration's estimates, up or down."""


def _best(call, repeats: int, enough: float = 0.0, most: int = 7) -> float:
    """The shortest of ``repeats`` timed calls, or of more (up to ``most``) while ``n`` calls at the shortest time
    take under ``enough`` seconds: on a shared machine a single short call is mostly the other processes' noise."""
    best, spent, n = float("inf"), 0.0, 0
    while n < repeats or (n < most and best * n < enough):
        start = time.perf_counter()
        call()
        took = time.perf_counter() - start
        best, spent, n = min(best, took), spent + took, n + 1
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
    mean time per row, so timing noise cannot make rows free); the fixed cost
    is the 1-row call less one row, so a call of m rows is
    ``per_call + m * per_row``.
    """
    if getattr(model, "remote", False):  # measured in the sandbox's worker, where explainers call the model
        return model.timing(data, batch)
    return local_call_timing(model, data, batch, False, repeats)


def local_call_timing(model, data, batch: int, backward: bool = False, repeats: int = 2) -> Timing:
    """:func:`model_timing` in this process, forward (``model.output`` in one call) or forward+backward.

    A set of fewer than :data:`MIN_TIMING_ROWS` rows (a reviewer's handful of images) is repeated up to that
    many: a fit between 1 and 2 rows is mostly timing noise (resnet18 on 2 images: 1.0 s per row, against 0.12 s
    in runs). Larger sets are timed on at most ``batch`` of their own rows, as before (a wide table is never
    copied up to ``batch`` rows).
    """
    n = max(1, min(batch, max(len(data), MIN_TIMING_ROWS)))
    x = data.x[np.arange(n) % max(len(data), 1)]
    if backward:
        from studio.explainers.gradients import gradient_pass

        def call(rows):
            gradient_pass(model, rows)
    else:
        def call(rows):
            model.output(rows, batch_size=len(rows))
    call(x[:1])  # warm up (lazy init, JIT)
    one = _best(lambda: call(x[:1]), repeats, enough=0.5)
    if n == 1:
        return Timing(per_call=one, per_row=0.0)
    full = _best(lambda: call(x), repeats, enough=0.5)
    per_row = max(full - one, 0.1 * full) / max(n - 1, 1)
    return Timing(per_call=max(min(one, full) - per_row, 0.0), per_row=per_row)  # t(m) = per_call + m x per_row


def call_timing(model, data, batch: int, backward: bool = False) -> Timing:
    """Seconds per call and per row of a model call of ``batch`` rows, where the model runs (its worker)."""
    if getattr(model, "remote", False):
        return model.call_timing(data, batch, backward)
    return local_call_timing(model, data, batch, backward)


def seconds_per_row(model, data, batch: int = 256, repeats: int = 2) -> float:
    """Measured seconds per row of one batched ``model.output`` call (best of ``repeats``), fixed cost included."""
    n = min(batch, len(data))
    x = data.x[:n]
    model.output(x[:1])  # warm up (lazy init, JIT)
    return _best(lambda: model.output(x), repeats) / max(n, 1)


# ---- counts ------------------------------------------------------------------------------------
def run_cost(explainer, model, data, params: dict, n_rows: int, target=None) -> Cost:
    """The counts of one :func:`studio.explain` run: the explainer's cost model (computed in the model's worker
    for a loaded file, which holds the model's internals) plus the call :func:`studio.explain` makes for the
    predicted class of the explained rows (local methods on a classifier, no target given)."""
    if getattr(model, "remote", False):
        cost = model.explainer_cost(explainer, data, params, n_rows)
    else:
        cost = explainer.cost(model, data, params, n_rows)
    if explainer.scope == "local" and model.is_classifier and target is None and n_rows:
        block = 4096 if data.kind == "tabular" else 64
        cost = cost + Cost(calls=batched(n_rows, block), rows=n_rows)
    return cost


# ---- calibration -------------------------------------------------------------------------------
@dataclass
class Calibration:
    """Seconds per count, measured on this machine for one model, method and device.

    Attributes
    ----------
    forward, backward : tuple of float
        Seconds per call and per row, forward-only and forward+backward.
    own : tuple of float
        The method's own seconds per run and per unit of its own work.
    probes : list of dict
        The calibration runs: parameters, rows, counts and seconds (for the record).
    runs : list of list
        The last :data:`RUNS_KEPT` finished runs as ``[estimated seconds before refinement, measured seconds]``
        (:func:`record_run`).
    cold : float
        Seconds the method's first run in a fresh process (or sandbox worker) takes beyond a warm run: library
        imports and just-in-time compilation (shap's numba code, TorchScript's first passes). The calibration's
        untimed warm-up run less its first probe, which repeats it warm. Added to estimates where the method has
        not run on this model in this process (:func:`is_warm`), and always for a command that will run in a
        new process (``explain --estimate``): a permutation SHAP run on a wine pipeline took 9.0 s in a fresh
        process and 0.26 s warm.
    """

    forward: tuple = (0.0, 0.0)
    backward: tuple = (0.0, 0.0)
    own: tuple = (0.0, 0.0)
    probes: list = field(default_factory=list)
    runs: list = field(default_factory=list)
    cold: float = 0.0

    def seconds(self, cost: Cost, cold: bool = False) -> float:
        """Estimated seconds of a run with these counts: :meth:`base_seconds` (plus :attr:`cold` for a first
        run in a fresh process) x :attr:`refinement`."""
        return (self.base_seconds(cost) + (self.cold if cold else 0.0)) * self.refinement

    def base_seconds(self, cost: Cost) -> float:
        """Seconds from the calibration's coefficients alone (before the finished runs refine them)."""
        return float(self.model_seconds(cost) + self.own[0] + self.own[1] * cost.own)

    @property
    def refinement(self) -> float:
        """The factor the finished runs put on the coefficients: the geometric median of the kept runs' measured
        / estimated seconds (1 before any run; the geometric mean of the middle two for an even count), within
        [1/:data:`REFINE_LIMIT`, :data:`REFINE_LIMIT`]."""
        ratios = [m / e for e, m in self.runs if e > 0 and m > 0]
        if not ratios:
            return 1.0
        factor = float(np.exp(np.median(np.log(ratios))))
        return min(max(factor, 1 / REFINE_LIMIT), REFINE_LIMIT)

    def model_seconds(self, cost: Cost) -> float:
        return float(self.forward[0] * cost.calls + self.forward[1] * cost.rows
                     + self.backward[0] * cost.grad_calls + self.backward[1] * cost.grad_rows)

    def to_dict(self) -> dict:
        return {"forward": list(self.forward), "backward": list(self.backward), "own": list(self.own),
                "probes": self.probes, "runs": self.runs, "cold": self.cold, "version": CALIBRATION_VERSION}

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        return cls(tuple(d["forward"]), tuple(d["backward"]), tuple(d["own"]), list(d.get("probes", [])),
                   [list(r) for r in d.get("runs", [])], float(d.get("cold", 0.0)))


_MEMO: dict = {}
_WARM: dict = {}
"""Methods that have run on each loaded model in this process (keyed by the model object's id): their
libraries are imported and compiled, in this process or in the model's worker, so the next run is warm."""


def _warm_key(model, explainer, device: str) -> tuple:
    return (id(model), getattr(model, "fingerprint", ""), explainer.name, device)


def mark_warm(explainer, model, device: str = "cpu") -> None:
    """Remember that ``explainer`` has run on ``model`` here (:func:`is_warm`)."""
    if len(_WARM) > 4096:
        _WARM.clear()
    _WARM[_warm_key(model, explainer, device)] = True


def is_warm(explainer, model, device: str = "cpu") -> bool:
    """Whether ``explainer`` has run on this loaded ``model`` in this process (then :attr:`Calibration.cold` is
    not added to its estimates)."""
    return _warm_key(model, explainer, device) in _WARM


def calibration_key(explainer, model, data, params: dict, device: str) -> dict:
    """What a calibration is kept under: model fingerprint, method, data kind, device, where the model runs, and
    the method's choices (e.g. shap's algorithm), which change its cost model."""
    choices = {p.name: params.get(p.name, p.default) for p in explainer.params.params if p.choices}
    return {"model": model.fingerprint, "method": explainer.name, "data_kind": data.kind, "device": device,
            "remote": bool(getattr(model, "remote", False)), "choices": choices, "version": CALIBRATION_VERSION}


def _path(key: dict, folder: str = ""):
    from studio.cache import default_dir

    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return default_dir() / "calibration" / folder / f"{digest}.json"


def _read(path, key: dict):
    """The value stored at ``path`` under ``key``, or None (missing, unreadable, or another key's)."""
    try:
        stored = json.loads(path.read_text())
        if stored.get("key") == json.loads(json.dumps(key, default=str)):
            return stored["value"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


def _write(path, key: dict, value) -> None:
    """Store ``value`` under ``key`` at ``path`` atomically, through a private temporary file of its own (several
    sessions' threads may refine one calibration at once); a read-only cache folder: measured again next time."""
    import tempfile

    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps({"key": key, "value": value}, default=str))
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def shared_timing(model, data, backward: bool = False, device: str = "cpu") -> Timing:
    """The model's seconds per call and per row (:func:`call_timing` on a :data:`TIMING_CAP`-row batch), measured
    once per model, input shape, device and direction and kept (in memory and under ``calibration/models/``):
    every method's calibration on this model reuses it."""
    key = {"model": model.fingerprint, "data_kind": data.kind, "shape": list(np.shape(data.x)[1:]),
           "device": device, "remote": bool(getattr(model, "remote", False)), "backward": bool(backward),
           "version": CALIBRATION_VERSION}
    path = _path(key, "models")
    if str(path) not in _MEMO:
        value = _read(path, key)
        if value is None:
            t = call_timing(model, data, TIMING_CAP.get(data.kind, 64), backward=backward)
            value = [t.per_call, t.per_row]
            _write(path, key, value)
        _MEMO[str(path)] = Timing(*value)
    return _MEMO[str(path)]


def _stored_calibration(explainer, model, data, params: dict, device: str):
    """``(path, key, Calibration or None)``: the calibration remembered in memory or in the cache folder."""
    key = calibration_key(explainer, model, data, params, device)
    path = _path(key)
    if str(path) in _MEMO:
        return path, key, _MEMO[str(path)]
    value = _read(path, key)
    try:
        cal = Calibration.from_dict(value) if value is not None else None
    except (KeyError, TypeError, ValueError):
        cal = None
    if cal is not None:
        _MEMO[str(path)] = cal
    return path, key, cal


def is_calibrated(explainer, model, data, params: dict, device: str = "cpu") -> bool:
    """Whether an estimate of this model, method and device is ready without measuring anything."""
    return _stored_calibration(explainer, model, data, params, device)[2] is not None


def calibrated(explainer, model, data, params: dict, device: str = "cpu") -> Calibration:
    """The calibration of this model, method and device: remembered (in memory, then in the cache folder), or
    measured now by :func:`calibrate` and stored."""
    path, key, cal = _stored_calibration(explainer, model, data, params, device)
    if cal is None:
        cal = calibrate(explainer, model, data, params, device)
        _write(path, key, cal.to_dict())
        _MEMO[str(path)] = cal
    return cal


def record_run(explainer, model, data, params: dict, n_rows: int, seconds: float, target=None,
               device: str = "cpu") -> Calibration | None:
    """Refine the method's calibration with one finished run: its estimate from the coefficients alone and its
    measured ``seconds`` join :attr:`Calibration.runs` (the last :data:`RUNS_KEPT`), kept in memory and in the
    cache folder, so the next estimate carries :attr:`Calibration.refinement`.

    Called by :func:`studio.explain` after every computed run (not cache hits). Measures nothing and calibrates
    nothing: a method never estimated on this model is left alone. Returns the refined calibration, or None.
    """
    cold = not is_warm(explainer, model, device)
    mark_warm(explainer, model, device)
    path, key, cal = _stored_calibration(explainer, model, data, params, device)
    if cal is None or not seconds > 0:
        return None
    base = cal.base_seconds(run_cost(explainer, model, data, params, n_rows, target)) + (cal.cold if cold else 0.0)
    if not base > 0:
        return None
    cal.runs = (cal.runs + [[float(base), float(seconds)]])[-RUNS_KEPT:]
    _write(path, key, cal.to_dict())
    _MEMO[str(path)] = cal
    return cal


def calibrate(explainer, model, data, params: dict, device: str = "cpu") -> Calibration:
    """Measure the coefficients of :class:`Calibration` for ``explainer`` on ``model``.

    1. The model calls: :func:`shared_timing`, forward and, for gradient methods, forward+backward (measured at
       the first calibration of the model, reused by every other method's).
    2. The method's own work: its two tiny probe runs (:meth:`Explainer.probe_params`, after one untimed warm-up
       run) through :func:`studio.explain` with the cache off, each the shortest of up to five repeats while they
       take under half a second together; each run's time beyond its model calls, fitted as a fixed part plus a
       part per unit of own work (a fixed part only when the probes' units are equal).
    """
    import studio

    n_rows = 1 if explainer.scope == "local" else 0
    shape = run_cost(explainer, model, data, params, n_rows)
    cal = Calibration()
    if shape.calls:
        t = shared_timing(model, data, False, device)
        cal.forward = (t.per_call, t.per_row)
    if shape.grad_calls:
        t = shared_timing(model, data, True, device)
        cal.backward = (t.per_call, t.per_row)
    runs, warm_up = [], 0.0
    for k in (None, 0, 1):  # None: a warm-up (library imports, JIT compilation, lazy model state), timed alone
        p, rows = explainer.probe_params(dict(params), data, k or 0)
        p = explainer.params.validate(p, explainer.name)
        rows = list(range(min(rows, len(data)))) if explainer.scope == "local" else None

        def run(rows=rows, p=p):
            studio.explain(model, data, explainer.name, rows=rows, params=p, device=device, cache=False)

        if k is None:
            start = time.perf_counter()
            run()
            warm_up = time.perf_counter() - start
            continue
        seconds = _best(run, 1, enough=0.5, most=5)
        counts = run_cost(explainer, model, data, p, len(rows or []))
        runs.append({"params": p, "rows": len(rows or []), "cost": counts.to_dict(), "seconds": seconds})
    cal.probes = runs
    cal.cold = max(warm_up - runs[0]["seconds"], 0.0)  # the warm-up is the first probe's run, done cold
    cal.own = own_fit([(r["cost"]["own"], r["seconds"] - cal.model_seconds(Cost.from_dict(r["cost"])))
                       for r in runs])
    return cal


def own_fit(probes) -> tuple:
    """The method's own seconds per run and per unit, ``(c, d)``, from two probes' ``(units, own seconds)``.

    The line through both probes, with its slope at most the smaller of the probes' own seconds per unit: a
    fixed part is never negative, so ``c + d u = o`` gives ``d <= o / u`` for every probe. Without that bound a
    probe slowed by another process (a 5x spike on the larger one) became a slope that a run 6x larger
    multiplied (lime on the CNN: estimated 14 s, took 1.3 s); with it the spike goes to the fixed part. Equal
    units, or a difference lost in timing noise: a fixed cost per run.
    """
    (u0, o0), (u1, o1) = probes
    o0, o1 = max(o0, 0.0), max(o1, 0.0)
    if u1 > 1.2 * u0 and o1 > o0 and u0 > 0:
        slope = min((o1 - o0) / (u1 - u0), o0 / u0, o1 / u1)
        return (max(((o0 - slope * u0) + (o1 - slope * u1)) / 2, 0.0), slope)
    return ((o0 + o1) / 2, 0.0)


# ---- estimates ---------------------------------------------------------------------------------
@dataclass
class Estimate:
    """The estimated cost of one run.

    Attributes
    ----------
    evaluations : int
        Rows the method passes to the model (forward or backward).
    seconds : float
    params : dict
        The parameters the estimate is for (possibly reduced to fit the budget).
    fits : bool
        Whether ``seconds`` <= the budget.
    note : str
        What was reduced, or why it cannot fit.
    calls : int
        Model calls.
    cost : Cost
        The counts behind it.
    setup : float
        Seconds of ``seconds`` that are the method's first-use set-up in a fresh process
        (:attr:`Calibration.cold`; 0 where the method is warm).
    """

    evaluations: int
    seconds: float
    params: dict
    fits: bool
    note: str = ""
    calls: int = 0
    cost: Cost | None = None
    setup: float = 0.0

    @property
    def adaptive(self) -> bool:
        """Whether the method's work adapts to the rows (:attr:`Cost.bound`): the estimate is a typical run, and
        a run on rows the model finds hard may take several times longer (integrated gradients on the CNN sample:
        the hardest pair of rows takes 3x a typical pair, as every row is refined to 128 steps)."""
        return bool(self.cost is not None and self.cost.bound)

    def words(self) -> str:
        """The estimate as a reviewer reads it (:func:`describe`)."""
        return describe(self.seconds, self.setup, self.adaptive)


def describe(seconds: float, setup: float = 0.0, adaptive: bool = False) -> str:
    """An estimate in words: 'about 42 s' or 'under 0.01 s'; then :data:`ADAPTIVE` for an adaptive method; then
    how much of it is first-use set-up in a new process, where that is a fifth or more."""
    took = human(seconds)
    part = (f"; about {human(setup)} of it is first-use set-up in a new process (imports, compilation)"
            if setup >= 0.1 and setup >= 0.2 * seconds else "")
    return (took if took.startswith("under") else "about " + took) + (ADAPTIVE if adaptive else "") + part


def estimate(explainer, model, data, params: dict, n_rows: int, budget: float | None = None, fit: bool = False,
             calibration: Calibration | None = None, target=None, device: str = "cpu",
             fresh: bool = False) -> Estimate:
    """Estimated cost of ``explainer`` with ``params``; optionally shrink sample sizes to fit ``budget``.

    Parameters
    ----------
    explainer : Explainer
    params : dict
        Validated parameters.
    n_rows : int
        Rows explained (local methods).
    budget : float, optional
        Seconds allowed.
    fit : bool
        Halve the sampling parameters (:data:`SAMPLE_PARAMS`, never below
        their declared ``fit_low`` nor ``low``: the smallest size that still
        gives a useful result) until the estimate fits the budget. The note
        says what was cut (``max_rows 5,000 -> 625``) or, when even the
        smallest useful sizes do not fit, which floors held and why.
    calibration : Calibration, optional
        Default: :func:`calibrated` (measured at first use, then remembered).
    target : int, optional
        The explained class; None (local methods) adds the predicted-class call.
    device : str
        Resolved device of the run (part of the calibration's key).
    fresh : bool
        The run will start in a new process (``explain --estimate``, then the command): the method's first-use
        set-up (:attr:`Calibration.cold`) is added even where it has run here. Otherwise it is added where the
        method has not yet run on this model in this process (:func:`is_warm`).
    """
    params = dict(params)
    cal = calibration if calibration is not None else calibrated(explainer, model, data, params, device)
    cold = fresh or not is_warm(explainer, model, device)
    last = {}

    def cost(p):
        c = run_cost(explainer, model, data, p, n_rows, target)
        last["cost"] = c
        return c.evaluations, cal.seconds(c, cold)

    def made(evals, secs, p, fits, note=""):
        c = last["cost"]
        setup = cal.cold * cal.refinement if cold else 0.0
        return Estimate(evals, secs, p, fits, note, calls=c.model_calls, cost=c, setup=setup)

    evals, secs = cost(params)
    if budget is None or secs <= budget:
        return made(evals, secs, params, True)
    if not fit:
        return made(evals, secs, params, False, f"about {human(secs)}, over the budget of {human(budget)}")
    declared = {p.name: p for p in explainer.params.params}
    changed, floors = [], []
    for name in SAMPLE_PARAMS:
        if name == "max_rows" and params.get(name) == 0:  # 0 means every row: start from the data size
            params[name] = len(data)
        if name not in declared or not isinstance(params.get(name), (int, np.integer)) or params[name] <= 0:
            continue
        p = declared[name]
        low = max(int(p.low or 1), int(p.fit_low or 1), 1)
        was = params[name]
        while secs > budget and params[name] > low:
            params[name] = max(low, params[name] // 2)
            evals, secs = cost(params)
        if params[name] != was:
            changed.append(f"{name} {was:,} -> {params[name]:,}")
        if secs > budget and p.fit_low and params[name] <= low:
            floors.append(f"{name} is not cut below {low:,}" + (f": {p.fit_why}" if p.fit_why else ""))
        if secs <= budget:
            break
    if secs <= budget:
        return made(evals, secs, params, True, "reduced to fit the budget: " + ", ".join(changed))
    why = f" ({'; '.join(floors)})" if floors else ""
    return made(evals, secs, params, False,
                f"about {human(secs)} even at the smallest useful sample sizes{why}, over the budget of "
                f"{human(budget)}; raise the budget or explain fewer rows")


def human(seconds: float) -> str:
    """A duration in words, two significant figures: 'under 0.01 s', '0.42 s', '42 s', '3.5 min', '2.5 h'."""
    if seconds < 0.01:
        return "under 0.01 s"
    if seconds < 90:
        return f"{float(f'{seconds:.2g}'):g} s"
    if seconds < 5400:
        return f"{float(f'{seconds / 60:.2g}'):g} min"
    return f"{float(f'{seconds / 3600:.2g}'):g} h"
