"""The public verbs: ``methods`` and ``explain``."""

from __future__ import annotations

import functools
import platform
import time
from dataclasses import dataclass
from importlib import metadata

import numpy as np

from studio.errors import StudioError
from studio.explainers import registry
from studio.explainers.base import Context
from studio.explanation import Explanation

STUDIO_VERSION = "0.1.0"
_OOM_ADVICE = (
    "{method} ran out of memory; explain fewer rows, lower its sample or step counts, "
    "or run it on a machine (or device) with more memory"
)


@dataclass
class MethodInfo:
    """One registered method and whether it can run here.

    Attributes
    ----------
    name : str
    data_kind : str
    scope : {"local", "global"}
    kind : str
        Payload kind of its results.
    available : bool
    reason : str
        Why not, when unavailable.
    params : list of Param
    summary : str
    """

    name: str
    data_kind: str
    scope: str
    kind: str
    available: bool
    reason: str
    params: list
    summary: str

    def to_dict(self) -> dict:
        return {
            "name": self.name, "data_kind": self.data_kind, "scope": self.scope, "kind": self.kind,
            "available": self.available, "reason": self.reason, "summary": self.summary,
            "params": [
                {"name": p.name, "type": p.type, "default": p.default, "low": p.low, "high": p.high,
                 "choices": list(p.choices) if p.choices else None, "help": p.help}
                for p in self.params
            ],
        }


def methods(model=None, data=None) -> list[MethodInfo]:
    """Every registered method, available or not, with the reason.

    Parameters
    ----------
    model : Model, optional
    data : Dataset, optional
        With both, availability is decided for this pair; with only one of
        them or none, methods are listed for every data kind.
    """
    kinds = [data.kind] if data is not None else [model.kind] if model is not None and model.kind else ["tabular", "image"]
    out = []
    remote = {}
    if getattr(model, "remote", False):  # one call to the worker, which holds the model, per data kind
        for kind in kinds:
            remote[kind] = model.compatible([n for n in registry.names() if kind in registry.REGISTRY[n]], kind, data)
    for name in registry.names():
        for kind in kinds:
            if kind not in registry.REGISTRY[name]:
                continue
            explainer = registry.get(name, kind)
            available, reason = True, ""
            if kind in remote:
                available, reason = remote[kind][name]
            elif model is not None:
                try:
                    available, reason = explainer.is_compatible(model, data)
                except Exception as exc:  # a broken check must not hide the list
                    available, reason = False, f"compatibility check failed: {exc}"
            out.append(
                MethodInfo(name, kind, explainer.scope, explainer.kind, available, reason,
                           list(explainer.params.params), explainer.summary)
            )
    return out


@functools.lru_cache(maxsize=None)
def _package_versions(libraries: tuple) -> tuple:
    out = {"studio": STUDIO_VERSION, "numpy": np.__version__, "python": platform.python_version()}
    for lib in libraries:
        out[lib] = _installed_version(lib)
    return tuple(out.items())


def _installed_version(distribution: str) -> str:
    """The installed version of ``distribution``, or ``"absent"``.

    Reads the ``Version:`` header line itself: ``importlib.metadata.version``
    parses the whole metadata file with the email parser, which costs
    milliseconds per package in every fresh process.
    """
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return "absent"
    for line in (dist.read_text("METADATA") or dist.read_text("PKG-INFO") or "").splitlines():
        if not line:
            break
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return dist.version


def _versions(libraries) -> dict:
    """Versions of the studio, numpy, Python and ``libraries`` (read once per process)."""
    return dict(_package_versions(tuple(libraries)))


def requested_target(model, data, target, scope) -> int | None:
    """The requested output as an index, checked against the model's outputs.

    Classifiers: None stays None for local methods (each row's predicted
    class, which the model and rows determine) and becomes the positive class
    of a binary model or class 0 for global methods. Regression models with
    one output have no target (None); a multi-output regressor's target is
    the output explained (default 0, the first). A class or output name is
    accepted too. Runs the model at most once per model, to count its
    outputs, so a cache hit costs no model call.
    """
    if not model.is_classifier:
        n_out = model.n_outputs_or(0) or model.output(data.x[:1]).shape[1]
        if n_out <= 1:
            return None
        return _target_index(target, model.output_names, n_out, "output") if target is not None else 0
    n_classes = model.n_outputs_or(0) or model.output(data.x[:1]).shape[1]
    if target is None:
        return None if scope == "local" else default_class(model, data, 1 if n_classes == 2 else 0)
    return _target_index(target, model.class_names or [], n_classes, "class")


def default_class(model, data, t: int) -> int:
    """The class global methods explain by default: ``t`` (the positive class of a binary model, class 0
    otherwise) when the data's labels hold it or the data has no labels, else the most frequent class in the
    labels (an EBM surrogate on wine data without class 0 has a class to fit). Labels may be class names or
    indices."""
    names = [str(n) for n in model.class_names or []]
    if getattr(data, "y", None) is None or not names:
        return t
    labels = [str(v) for v in np.asarray(data.y).ravel()]
    index = [names.index(v) if v in names else (int(v) if v.lstrip("-").isdigit() else -1) for v in labels]
    present = [i for i in index if 0 <= i < len(names)]
    if not present or t in present:
        return t
    return max(sorted(set(present)), key=present.count)


def _target_index(target, names, n: int, what: str) -> int:
    """``target`` (an index, or a name in ``names``) as an index in ``range(n)``, or StudioError."""
    if isinstance(target, str) and not target.lstrip("-").isdigit():
        if target not in names:
            raise StudioError(f"target {target!r} is not a {what} of this model; {what}es: {', '.join(names)}"
                              if what == "class" else
                              f"target {target!r} is not an {what} of this model; outputs: {', '.join(names)}")
        t = names.index(target)
    else:
        try:
            t = int(target)
        except (TypeError, ValueError):
            raise StudioError(f"target must be a{'n' if what == 'output' else ''} {what} index or name, got {target!r}") from None
    if not 0 <= t < n:
        raise StudioError(f"target {t} is out of range; the model has {n} {what}{'es' if what == 'class' else 's'} (0 to {n - 1})")
    return t


def resolve_target(model, data, target, rows, scope) -> list | None:
    """The class explained: per row (local) or one class (global).

    ``None`` picks each row's predicted class (local), or the positive class
    of a binary model / class 0 (global). A class name is accepted too.
    """
    return row_targets(model, data, requested_target(model, data, target, scope), rows, scope)


def row_targets(model, data, t: int | None, rows, scope) -> list | None:
    """:func:`requested_target`'s answer ``t`` per explained row (local) or as one class (global).

    A local ``None`` runs the model on the rows for their predicted classes.
    Regression: None for a one-output model; the output index (per row, or
    one for global methods) for a multi-output regressor.
    """
    if not model.is_classifier:
        if t is None:
            return None
        return [t] if scope == "global" else [t] * len(rows)
    if scope == "global":
        return [t]
    if t is None:
        return [int(c) for c in model.predict(data.x[rows])]
    return [t] * len(rows)


def _non_finite(result: Explanation) -> str:
    """What in ``result`` holds NaN or infinity ("" when nothing does).

    Checks the answer itself: attribution values and base values, each
    curve's grid (numeric), average, individual curves and "missing" point,
    importances, and rule precision and coverage. ``data`` (the explained
    inputs, which may hold missing values) and ``checks`` are not answers.
    """
    def bad(a) -> bool:
        a = np.asarray(a)
        return a.dtype.kind in "fc" and not np.all(np.isfinite(a))

    if result.values is not None and bad(result.values):
        return "attribution values"
    if result.base_values is not None and bad(result.base_values):
        return "base values"
    for c in result.curves:
        parts = [("grid", g) for g in c.grid] + [("average", c.average)]
        if c.individual is not None:
            parts.append(("individual curves", c.individual))
        if isinstance(c.extra, dict) and "missing" in c.extra:
            parts.append(("missing-value point", c.extra["missing"]))
        if isinstance(c.extra, dict) and "with_missing" in c.extra:
            parts.append(("missing-value row", np.asarray(c.extra["with_missing"], dtype=float)))
        for what, a in parts:
            if bad(a):
                return f"the {what} of the {c.kind} curve of {c.feature}"
    for imp in result.importances:
        if bad([imp.mean, imp.std]):
            return f"the importance of {imp.feature}"
    for r in result.rules:
        if bad([r.precision, r.coverage]):
            return f"the rule for row {r.row}"
    return ""


def _check_finite(result: Explanation, method: str) -> None:
    """Refuse to return (or cache) an answer holding NaN or infinity: StudioError naming the part."""
    what = _non_finite(result)
    if what:
        raise StudioError(
            f"{method} produced NaN or infinite values in {what}, so no answer is returned; "
            "check the data for missing or extreme values (or a model that returns them) and report it if they are fine"
        )


# (method, data kind, model format and cache id, data fingerprint) -> (ok, reason): these decide it
_COMPATIBLE: dict = {}


def _compatible(explainer, model, data) -> tuple:
    """``explainer.is_compatible(model, data)``, asked once per model and dataset in a process."""
    key = (explainer.name, data.kind, model.format, model.cache_id, data.fingerprint)
    if key not in _COMPATIBLE:
        if len(_COMPATIBLE) >= 1024:
            _COMPATIBLE.clear()
        if getattr(model, "remote", False):
            _COMPATIBLE[key] = model.compatible([explainer.name], data.kind, data)[explainer.name]
        else:
            _COMPATIBLE[key] = explainer.is_compatible(model, data)
    return _COMPATIBLE[key]


def over_budget(method: str, budget: float) -> str:
    """The one sentence a run stopped at its time budget ends with."""
    from studio.cost import human

    return (f"{method} ran past its time limit (a budget of {human(budget)}) and was stopped; raise the budget (the "
            "pages' 'Time budget per method (s)', the CLI's --budget, or explain(timeout=...)) or lower its sample "
            "sizes, and run it again")


def cancel_asked(cancel) -> bool:
    """Whether the user's cancel flag is set (a cancel is not a time-out)."""
    try:
        return bool(cancel()) if cancel is not None else False
    except Exception:  # noqa: BLE001 -- a broken flag is not a cancel
        return False


def row_scope(explainer, rows) -> str:
    """The scope rows are read in: a global method that draws given rows (ICE, ``takes_rows``) reads them as a
    local one does when rows are given; every other global method ignores them."""
    return "local" if rows is not None and getattr(explainer, "takes_rows", False) else explainer.scope


def resolve_rows(rows, data, scope) -> list:
    if scope == "global":
        return []
    if rows is None:
        rows = [0]
    if isinstance(rows, (int, np.integer)):
        rows = [rows]
    try:
        rows = [int(r) for r in rows]
    except (TypeError, ValueError):
        raise StudioError(f"rows must be row numbers, got {rows!r}") from None
    if not rows:
        raise StudioError("no rows to explain; give at least one row number")
    bad = [r for r in rows if not 0 <= r < len(data)]
    if bad:
        raise StudioError(f"row(s) {', '.join(map(str, bad[:5]))} out of range; the dataset has {len(data)} rows (0 to {len(data) - 1})")
    return rows


def explain(
    model,
    data,
    method: str,
    rows=None,
    target=None,
    params: dict | None = None,
    device: str = "auto",
    cache=True,
    progress=None,
    timeout: float | None = None,
    cancel=None,
) -> Explanation:
    """Run one explainer, or fetch its result from the cache.

    Parameters
    ----------
    model : Model
    data : Dataset
    method : str
        A registry key (``studio.methods()``).
    rows : list of int, optional
        Rows to explain (local methods; ICE draws these rows, other global methods ignore them); default ``[0]``.
    target : int or str, optional
        Class index or name; None explains each row's predicted class.
    params : dict, optional
        Method parameters; validated against the method's declaration.
    device : {"auto", "cpu", "cuda", "mps"}
    cache : bool or Cache
        True uses the default disk cache; False computes afresh.
    progress : callable(fraction, message), optional
    timeout : float, optional
        The run's time budget: past it the run is stopped (a sandboxed worker is ended
        if it does not stop by itself) and a StudioError says so, naming the budget; nothing is cached.
    cancel : callable() -> bool, optional
        Polled during the run; True stops it.

    Returns
    -------
    Explanation
    """
    from studio.cache import Cache, cache_key

    explainer = registry.get(method, data.kind)
    data = data.aligned_to(model)
    ok, reason = _compatible(explainer, model, data)
    if not ok:
        raise StudioError(f"{method} cannot run on this model and data: {reason}")
    valid = explainer.params.validate(params, method)
    rows = resolve_rows(rows, data, row_scope(explainer, rows))
    if getattr(model, "differentiable", False):
        from studio.device import resolve_device

        device = resolve_device(device)
        model.to(device)
    else:
        device = "cpu"
    wanted = requested_target(model, data, target, explainer.scope)
    versions = _versions(("scikit-learn",) + tuple(explainer.libraries))
    key = cache_key(
        {
            "method": method, "data_kind": data.kind, "version": explainer.version, "params": valid,
            "model": model.cache_id, "data": data.fingerprint, "rows": rows,
            # None for a local method means each row's predicted class, which the model and rows fix
            "target": "predicted" if wanted is None and model.is_classifier else wanted,
            "versions": versions,
        }
    )
    store = None
    if cache:
        store = cache if isinstance(cache, Cache) else Cache()
        try:
            stored = store.get_decoded(key, Explanation.from_bytes)
        except Exception:  # corrupt, truncated or from another schema: recompute
            store.discard(key)
            stored = None
        if stored is not None:
            hit = stored.copy()
            hit.cache = "hit"
            return hit
    begun = time.perf_counter()  # the run as an estimate counts it: the predicted-class pass included
    targets = row_targets(model, data, wanted, rows, explainer.scope)
    ctx = Context(
        rows=rows, targets=targets, device=device, on_progress=progress,
        deadline=None if timeout is None else time.monotonic() + timeout, cancel=cancel,
    )
    start = time.perf_counter()
    try:
        if getattr(model, "remote", False):  # the file's code runs only in its sandboxed worker
            result = model.run_explainer(explainer, data, valid, ctx)
        else:
            result = explainer.explain(model, data, valid, ctx)
    except StudioError as exc:  # Cancelled, or the sandbox's WorkerError after ending a worker past its deadline
        if timeout is not None and time.perf_counter() - start >= timeout and cancel_asked(cancel) is False:
            from studio.explainers.base import Cancelled

            raise Cancelled(over_budget(method, timeout)) from None
        raise
    except MemoryError:
        raise StudioError(_OOM_ADVICE.format(method=method)) from None
    except RuntimeError as exc:
        if type(exc).__name__ != "OutOfMemoryError":  # torch.cuda.OutOfMemoryError
            raise
        raise StudioError(_OOM_ADVICE.format(method=method)) from None
    _check_finite(result, method)
    result.compute_seconds = time.perf_counter() - start
    result.method = method
    result.params = valid
    result.rows = rows
    if result.target is None:
        result.target = targets
    result.model_id = model.fingerprint
    result.model_format = model.format
    result.dataset_id = data.fingerprint
    result.cache = "miss"
    result.provenance = {
        **(result.provenance or {}),  # what the explainer recorded (e.g. shap's algorithm and why)
        "versions": versions, "model_id": model.fingerprint, "model_name": model.name,
        "dataset_id": data.fingerprint, "dataset_name": data.name, "seed": valid.get("seed"),
        "device": device, "task": model.task, "method_version": explainer.version, "cache_key": key,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if data.notes:  # what loading or aligning changed in the data (grey to RGB, alpha dropped, ...)
        result.provenance["data_notes"] = list(data.notes)
    if store is not None:
        store.put_decoded(key, result.copy(), Explanation.to_bytes)
    _refine_estimates(explainer, model, data, valid, rows, wanted, device, time.perf_counter() - begun)
    return result


def _refine_estimates(explainer, model, data, params, rows, target, device, seconds) -> None:
    """A finished run's seconds refine the method's cost calibration, when there is one (:func:`studio.cost.
    record_run`); never a reason for the run to fail."""
    from studio.cost import record_run

    try:
        record_run(explainer, model, data, params, len(rows or []) if explainer.scope == "local" else 0, seconds,
                   target, device)
    except Exception:  # noqa: BLE001 -- a read-only cache folder, a worker gone: the estimate stays as it was
        pass
