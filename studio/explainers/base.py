"""The explainer interface: declared params, a compatibility check, one verb."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from studio.errors import StudioError
from studio.explainers.params import ParamSpec


class Cancelled(StudioError):
    """The run was cancelled or went past its time bound."""


@dataclass
class Context:
    """What an explainer needs besides model, data and params.

    Attributes
    ----------
    rows : list of int
        Dataset rows to explain (local methods); empty for global methods.
    targets : list of int or None
        Local: the class explained for each row. Global: one class.
        None for regression.
    device : str
        Resolved torch device (``"cpu"``, ``"cuda"``, ...).
    on_progress : callable(fraction, message) or None
    deadline : float or None
        ``time.monotonic()`` value after which :meth:`progress` raises.
    cancel : callable() -> bool, optional
        Polled by :meth:`progress`; True stops the run.
    """

    rows: list = field(default_factory=list)
    targets: list | None = None
    device: str = "cpu"
    on_progress: Callable | None = None
    deadline: float | None = None
    cancel: Callable | None = None

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress in [0, 1]; raises :class:`Cancelled` when asked to stop."""
        if self.cancel is not None and self.cancel():
            raise Cancelled("the explanation was cancelled")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise Cancelled("the explanation ran past its time limit; lower its sample sizes or raise the limit")
        if self.on_progress is not None:
            self.on_progress(min(max(float(fraction), 0.0), 1.0), message)


@dataclass
class Cost:
    """What one run costs, in counts (no seconds): the explainer's own cost model.

    :mod:`studio.cost` turns counts into seconds with coefficients measured on
    this machine (:func:`studio.cost.calibrate`). Per-model constants (trees,
    leaves, layers, pixels) need not appear: the calibration is per model.

    Attributes
    ----------
    calls, rows : int
        Forward-only model calls and the rows they hold in all.
    grad_calls, grad_rows : int
        Forward+backward passes (gradient methods) and their rows.
    own : float
        Units of the method's own work besides the model (``own_unit``), e.g.
        rows x background rows for tree SHAP, rows x terms x bags for an EBM fit.
    own_unit : str
    bound : bool
        True when the work adapts to the rows, so the counts are typical, not exact: a search that stops when
        its rule is precise enough (anchors), sampling that stops early, or integrated gradients' refinement,
        which recomputes rows over ``max_gap`` with more steps. Estimates say so (:attr:`studio.cost.Estimate.adaptive`).
    """

    calls: int = 0
    rows: int = 0
    grad_calls: int = 0
    grad_rows: int = 0
    own: float = 0.0
    own_unit: str = ""
    bound: bool = False

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.calls + other.calls, self.rows + other.rows, self.grad_calls + other.grad_calls,
                    self.grad_rows + other.grad_rows, self.own + other.own, self.own_unit or other.own_unit,
                    self.bound or other.bound)

    def times(self, k: int) -> Cost:
        """The cost of ``k`` such runs."""
        return Cost(k * self.calls, k * self.rows, k * self.grad_calls, k * self.grad_rows, k * self.own,
                    self.own_unit, self.bound)

    @property
    def evaluations(self) -> int:
        """Rows through the model, forward or backward."""
        return int(self.rows + self.grad_rows)

    @property
    def model_calls(self) -> int:
        return int(self.calls + self.grad_calls)

    def to_dict(self) -> dict:
        return {"calls": int(self.calls), "rows": int(self.rows), "grad_calls": int(self.grad_calls),
                "grad_rows": int(self.grad_rows), "own": float(self.own), "own_unit": self.own_unit,
                "bound": bool(self.bound)}

    @classmethod
    def from_dict(cls, d: dict) -> Cost:
        return cls(**{k: d[k] for k in ("calls", "rows", "grad_calls", "grad_rows", "own", "own_unit", "bound")})


def batched(rows: int, per_call: int) -> int:
    """Calls needed for ``rows`` rows at ``per_call`` rows per call."""
    return -(-int(rows) // max(1, int(per_call))) if rows > 0 else 0


def output_calls(model, data, rows: int, calls: int = 1) -> int:
    """Model calls of ``calls`` ``model.output`` calls of ``rows`` rows each: ``Model.output`` splits a call into
    blocks of 4096 rows (tables) or 64 images, or of ``max_batch`` rows for a model that takes fewer."""
    block = 4096 if data is None or data.kind == "tabular" else 64
    limit = getattr(model, "max_batch", None)
    if limit:
        block = min(block, int(limit))
    return calls * batched(rows, block)


class Explainer:
    """Base class of every explainer.

    Subclasses set the class attributes and implement :meth:`explain`.

    Attributes
    ----------
    name : str
        Registry key (DESIGN.md method names).
    data_kind : {"tabular", "image"}
    scope : {"local", "global"}
    kind : {"attribution", "curve", "rule", "importance"}
        The payload this explainer fills.
    version : str
        Bump when results change; part of the cache key.
    params : ParamSpec
    libraries : tuple of str
        Distributions whose versions go into the cache key and provenance.
    needs_gradients : bool
    summary : str
        One line for the UI and ``methods``.
    """

    name: str = ""
    data_kind: str = "tabular"
    scope: str = "local"
    kind: str = "attribution"
    version: str = "1"
    params: ParamSpec = ParamSpec()
    libraries: tuple = ()
    needs_gradients: bool = False
    summary: str = ""

    def is_compatible(self, model, data) -> tuple[bool, str]:
        """Whether this explainer can run on ``model`` and ``data``, and why not.

        The base checks the data kind and gradients; subclasses add theirs.
        """
        if data is not None and data.kind != self.data_kind:
            return False, f"{self.name} for {self.data_kind} data; the dataset holds {data.kind} data"
        if self.needs_gradients and not getattr(model, "differentiable", False):
            return False, f"needs gradients, which a {model.format} model does not provide (only torch models do)"
        return True, ""

    def explain(self, model, data, params: dict, ctx: Context):
        """Compute the explanation.

        Parameters
        ----------
        model : studio.models.Model
        data : studio.data.Dataset
            Already aligned to the model's feature order.
        params : dict
            Validated against :attr:`params`.
        ctx : Context

        Returns
        -------
        Explanation
            With method, kind, payload and checks filled; the caller adds
            ids, timing, cache state and provenance.
        """
        raise NotImplementedError

    def estimate_evaluations(self, model, data, params: dict, n_rows: int) -> int:
        """Rows passed to the model (forward or backward), for cost estimates: :meth:`cost`'s evaluations."""
        return self.cost(model, data, params, n_rows).evaluations

    def cost(self, model, data, params: dict, n_rows: int) -> Cost:
        """The method's cost model: model calls, rows and its own work for ``params`` on ``n_rows`` rows.

        Counts what :meth:`explain` does, not what :func:`studio.explain` adds
        around it (the predicted class of the rows: :func:`studio.cost.estimate`
        adds it). Subclasses override it; the base is one call on the rows.
        """
        n = n_rows if self.scope == "local" else len(data)
        if self.needs_gradients:
            return Cost(grad_calls=1, grad_rows=n)
        return Cost(calls=1, rows=n)

    def probe_params(self, params: dict, data, k: int) -> tuple[dict, int]:
        """Small parameters (and rows explained) of calibration probe ``k`` in (0, 1): two runs whose own work
        differs, so :func:`studio.cost.calibrate` can tell the fixed part of a run from the per-unit part.

        The base: local methods explain 1 then 2 rows; global methods sample 100 then 200 rows
        (``max_rows``). Sample sizes keep their values; methods with big ones override this.
        """
        p = dict(params)
        if self.scope == "local":
            return p, k + 1
        if "max_rows" in p:
            p["max_rows"] = min(len(data), 100 * (k + 1))
        return p, 0
