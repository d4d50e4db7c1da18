"""The explainer interface: declared params, a compatibility check, one verb."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

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
        """Rough count of model evaluations (rows passed to the model), for cost estimates."""
        return n_rows
