"""Streams: named map steps (extractors), filters and reducers, declared once with typed parameters.

A stream is ``event -> map -> [filter] -> reduce over a window``, after
TensorWatch's model (Shah, Fernandez, Drucker, EICS 2019), except that the
client names each step and sends parameters as JSON; no code crosses the wire.

Value kinds (what a map or reduce step yields, and what picks the chart):

- ``scalar``: a float (a loss, a norm).
- ``layers``: dict of layer name to float (per-layer gradient norms).
- ``histogram``: ``{"counts": int array (bins,), "edges": float array (bins + 1,)}``.
- ``images``: ``{"images": array (n, ...), "pred": int (n,), "target": int (n,) or absent,
  "loss": float (n,) or absent}`` (a sample of inputs with predictions, or top-k by loss).

An extractor has two halves: ``capture`` runs on the training thread and only
takes what the training loop may change afterwards (gradient norms are taken
before ``zero_grad``, a layer's weights are copied); ``compute`` runs on the
agent's thread. Everything else (``float()`` of a tensor, histograms, argmax,
reductions) runs off the training thread.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from studio.errors import StudioError

REQUIRED = object()


@dataclass(frozen=True)
class Param:
    """One typed parameter of a map or reduce step.

    ``observable=True`` says the value names an observable of the event (the
    keyword given to ``observe``), so a form can offer the names seen.
    """

    name: str
    type: type
    default: Any = REQUIRED
    low: float | None = None
    high: float | None = None
    observable: bool = False
    help: str = ""

    def check(self, value, step: str):
        if value is None:
            if self.default is REQUIRED:
                raise StudioError(f"{step} needs parameter {self.name!r} ({self.help or self.type.__name__}); "
                                  "give it in params.")
            return self.default
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or isinstance(value, bool):
            raise StudioError(f"{step} parameter {self.name!r} must be a {self.type.__name__}, got {value!r}.")
        if self.type is float and not math.isfinite(value):
            raise StudioError(f"{step} parameter {self.name!r} must be finite, got {value!r}.")
        if self.low is not None and value < self.low or self.high is not None and value > self.high:
            raise StudioError(f"{step} parameter {self.name!r} must lie in [{self.low}, {self.high}], got {value!r}.")
        return value

    def describe(self) -> dict:
        return {"name": self.name, "type": self.type.__name__,
                "default": None if self.default is REQUIRED else self.default, "required": self.default is REQUIRED,
                "low": self.low, "high": self.high, "observable": self.observable, "help": self.help}


def _check_params(step: str, declared: tuple, given: dict | None) -> dict:
    given = dict(given or {})
    unknown = set(given) - {p.name for p in declared}
    if unknown:
        raise StudioError(f"{step} has no parameter(s) {sorted(unknown)}; it takes {[p.name for p in declared]}.")
    return {p.name: p.check(given.get(p.name), step) for p in declared}


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _get(values: dict, name: str):
    try:
        return values[name]
    except KeyError:
        raise StudioError(f"observable {name!r} is not in this event (it has {sorted(values)}); pass it to "
                          "observe() or pick another name.") from None


def _capture_refs(values, params):
    return values


def _by_reference(*names):
    """A capture that keeps only the named observables, by reference (the training loop rebinds, not mutates)."""
    def capture(values, params):
        return {params[n]: values.get(params[n]) for n in names if params.get(n)}
    return capture


@dataclass(frozen=True)
class Extractor:
    """A named map step: typed parameters, the kind it yields, and its two halves (see the module docstring)."""

    name: str
    kind: str
    params: tuple
    compute: Callable[[Any, dict], Any]
    capture: Callable[[dict, dict], Any] = _capture_refs
    help: str = ""

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "help": self.help, "params": [p.describe() for p in self.params]}


def _scalar(captured, params):
    value = _get(captured, params["name"])
    return float(value.detach() if hasattr(value, "detach") else value)


def _module(values, params):
    module = _get(values, params["model"])
    if not hasattr(module, "named_parameters"):
        raise StudioError(f"observable {params['model']!r} is not a torch module; pass model=<your nn.Module>.")
    return module


def _grad_capture(values, params):
    """Training thread: one norm per parameter gradient (new tensors, so zero_grad cannot change them)."""
    import torch

    module = _module(values, params)
    layer = params["layer"]
    if layer:
        try:
            module = module.get_submodule(layer)
        except AttributeError:
            raise StudioError(f"the model has no layer {layer!r}; name one of its modules "
                              "(model.named_modules()).") from None
        owned = {layer: [p for p in module.parameters() if p.grad is not None]}
    else:
        owned = {}
        for name, p in module.named_parameters():
            if p.grad is not None:
                owned.setdefault(name.rpartition(".")[0] or name, []).append(p)
    return {k: [torch.linalg.vector_norm(p.grad.detach()) for p in ps] for k, ps in owned.items() if ps}


def _grad_compute(captured, params):
    import torch

    norms = {k: float(torch.linalg.vector_norm(torch.stack(v))) for k, v in captured.items()}
    if not norms:
        raise StudioError(f"{'layer ' + repr(params['layer']) if params['layer'] else 'the model'} has no "
                          "gradients yet; observe after backward().")
    return norms


def _weights_capture(values, params):
    import torch

    module = _module(values, params)
    if params["layer"]:
        module = module.get_submodule(params["layer"])
    ps = [p.detach().reshape(-1) for p in module.parameters()]
    if not ps:
        raise StudioError(f"layer {params['layer']!r} has no weights.")
    return torch.cat(ps)  # a copy: later optimizer steps do not change it


def _weights_compute(captured, params):
    w = _np(captured).astype(np.float64)
    counts, edges = np.histogram(w, bins=params["bins"])
    return {"counts": counts, "edges": edges}


def _images(captured, params, rows):
    x = _np(_get(captured, params["inputs"]))[rows]
    out = {"images": x.astype(np.float32)}
    if params["outputs"] in captured and captured[params["outputs"]] is not None:
        y = _np(captured[params["outputs"]])[rows]
        out["pred"] = (y.argmax(axis=1) if y.ndim == 2 else (y > 0.5)).astype(np.int64).reshape(-1)
    if params["targets"] in captured and captured[params["targets"]] is not None:
        out["target"] = _np(captured[params["targets"]])[rows].astype(np.int64).reshape(-1)
    return out


def _sample_compute(captured, params):
    n = len(_np(_get(captured, params["inputs"])))
    return _images(captured, params, np.arange(min(params["n"], n)))


def _top_loss_compute(captured, params):
    losses = _np(_get(captured, params["losses"])).astype(np.float64).reshape(-1)
    rows = np.argsort(-losses, kind="stable")[: params["k"]]
    out = _images(captured, params, rows)
    out["loss"] = losses[rows]
    return out


_MODEL = Param("model", str, "model", observable=True, help="observable holding the torch module")
_IO = (Param("inputs", str, "inputs", observable=True, help="observable holding the batch's inputs"),
       Param("outputs", str, "outputs", observable=True, help="observable holding the model's outputs (logits)"),
       Param("targets", str, "targets", observable=True, help="observable holding the labels"))

EXTRACTORS: dict[str, Extractor] = {e.name: e for e in (
    Extractor("scalar", "scalar", (Param("name", str, observable=True, help="observable to read as a float"),),
              _scalar, help="a scalar observable by name (float() of a number or a one-element tensor)"),
    Extractor("grad_norm", "layers", (_MODEL, Param("layer", str, "", help="one layer's name; empty for every layer")),
              _grad_compute, _grad_capture,
              help="L2 norm of the gradients, per layer (or of one layer): observe after backward()"),
    Extractor("weight_histogram", "histogram", (_MODEL, Param("layer", str, "", help="layer name; empty for all"),
                                                Param("bins", int, 30, 2, 512)),
              _weights_compute, _weights_capture, help="histogram of a layer's weights (numpy.histogram)"),
    Extractor("sample", "images", _IO + (Param("n", int, 8, 1, 256, help="rows of the batch"),),
              _sample_compute, _by_reference("inputs", "outputs", "targets"),
              help="the first n inputs of the batch with their predictions and labels"),
    Extractor("top_loss", "images", (Param("losses", str, "losses", observable=True,
                                           help="observable holding per-example losses (reduction='none')"),) + _IO
              + (Param("k", int, 8, 1, 256),),
              _top_loss_compute, _by_reference("losses", "inputs", "outputs", "targets"),
              help="the k examples of the batch with the highest loss, with predictions and labels"),
)}
"""The built-in map steps; a script may add its own (``Watcher(extractors=...)``), clients only name them."""


# ---- reducers -------------------------------------------------------------------------------------------------


def _elementwise(fn):
    def reduce(items, params, kind):
        if kind == "scalar":
            return "scalar", float(fn(np.asarray(items, dtype=np.float64)))
        keys = list(dict.fromkeys(k for item in items for k in item))
        return "layers", {k: float(fn(np.asarray([i[k] for i in items if k in i], dtype=np.float64))) for k in keys}
    return reduce


def _last(items, params, kind):
    return kind, items[-1]


def _histogram(items, params, kind):
    counts, edges = np.histogram(np.asarray(items, dtype=np.float64), bins=params["bins"])
    return "histogram", {"counts": counts, "edges": edges}


def _topk(items, params, kind):
    if any("loss" not in i for i in items):
        raise StudioError("reducer 'topk' needs a per-example loss: map with 'top_loss'.")
    loss = np.concatenate([i["loss"] for i in items])
    rows = np.argsort(-loss, kind="stable")[: params["k"]]
    out = {}
    for key in items[0]:
        if all(key in i for i in items):
            out[key] = np.concatenate([i[key] for i in items])[rows]
    return "images", out


@dataclass(frozen=True)
class Reducer:
    """A named reduce step over one window's mapped values, and the value kinds it accepts."""

    name: str
    kinds: tuple
    fn: Callable
    params: tuple = field(default_factory=tuple)
    help: str = ""

    def describe(self) -> dict:
        return {"name": self.name, "kinds": list(self.kinds), "help": self.help,
                "params": [p.describe() for p in self.params]}


REDUCERS: dict[str, Reducer] = {r.name: r for r in (
    Reducer("mean", ("scalar", "layers"), _elementwise(np.mean), help="arithmetic mean (numpy.mean, float64)"),
    Reducer("min", ("scalar", "layers"), _elementwise(np.min)),
    Reducer("max", ("scalar", "layers"), _elementwise(np.max)),
    Reducer("last", ("scalar", "layers", "histogram", "images"), _last, help="the window's last value"),
    Reducer("histogram", ("scalar",), _histogram, (Param("bins", int, 30, 2, 512),),
            help="histogram of the window's values (numpy.histogram)"),
    Reducer("topk", ("images",), _topk, (Param("k", int, 8, 1, 256),),
            help="the k examples of the window with the highest loss"),
)}

FILTER_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq,
              "!=": operator.ne}


def check_spec(spec: dict, extractors: dict) -> dict:
    """A stream spec from the wire, validated and with defaults filled in.

    Parameters
    ----------
    spec : dict
        ``{"event": str, "map": str, "params": dict, "reduce": str, "reduce_params": dict,
        "window": {"until": name} | {"every": n} | {"seconds": t}, "filter": {"op", "value", "on"?} | None}``.
    extractors : dict of str to Extractor

    Returns
    -------
    dict
        The same keys, complete.

    Raises
    ------
    StudioError
        Naming the field that is wrong and what it may be.
    """
    if not isinstance(spec, dict):
        raise StudioError("a stream spec must be a JSON object.")
    event = spec.get("event")
    if not isinstance(event, str) or not event:
        raise StudioError("a stream needs 'event': the name the script passes to observe(), e.g. 'batch'.")
    ex = extractors.get(spec.get("map"))
    if ex is None:
        raise StudioError(f"unknown map step {spec.get('map')!r}; pick one of {sorted(extractors)}.")
    red = REDUCERS.get(spec.get("reduce", "last"))
    if red is None:
        raise StudioError(f"unknown reducer {spec.get('reduce')!r}; pick one of {sorted(REDUCERS)}.")
    if ex.kind not in red.kinds:
        ok = [r for r in REDUCERS.values() if ex.kind in r.kinds]
        raise StudioError(f"reducer {red.name!r} does not apply to {ex.kind} values from {ex.name!r}; "
                          f"use one of {[r.name for r in ok]}.")
    window = spec.get("window") or {"every": 1}
    if not isinstance(window, dict) or len(window) != 1:
        raise StudioError("'window' must be one of {'until': name}, {'every': n}, {'seconds': t}.")
    (wkind, wval), = window.items()
    if wkind == "until":
        if not isinstance(wval, str) or not wval:
            raise StudioError("window 'until' names the window the script closes with end_window(name), e.g. 'epoch'.")
    elif wkind == "every":
        wval = Param("every", int, None, 1, 10**9).check(wval, "window")
    elif wkind == "seconds":
        wval = Param("seconds", float, None, 0.01, 86400).check(wval, "window")
    else:
        raise StudioError(f"unknown window {wkind!r}; use 'until', 'every' or 'seconds'.")
    filt = spec.get("filter")
    if filt is not None:
        if not isinstance(filt, dict) or filt.get("op") not in FILTER_OPS:
            raise StudioError(f"a filter is {{'op': one of {list(FILTER_OPS)}, 'value': number, 'on': observable?}}.")
        value = Param("value", float, None).check(filt.get("value"), "filter")
        on = filt.get("on")
        if on is not None and not isinstance(on, str):
            raise StudioError("filter 'on' names a scalar observable of the event.")
        if on is None and ex.kind != "scalar":
            raise StudioError(f"a filter without 'on' tests the mapped value, which must be scalar ({ex.name!r} "
                              f"yields {ex.kind}); name a scalar observable in 'on'.")
        filt = {"op": filt["op"], "value": value, "on": on}
    return {"event": event, "map": ex.name, "params": _check_params(f"map {ex.name!r}", ex.params, spec.get("params")),
            "reduce": red.name, "reduce_params": _check_params(f"reduce {red.name!r}", red.params,
                                                               spec.get("reduce_params")),
            "window": {wkind: wval}, "filter": filt, "kind": ex.kind if red.name not in ("histogram",) else "histogram"}


def passes(filt: dict | None, values: dict, mapped) -> bool:
    """Whether one event's mapped value passes the stream's filter."""
    if filt is None:
        return True
    subject = mapped if filt["on"] is None else float(_get(values, filt["on"]))
    return bool(FILTER_OPS[filt["op"]](subject, filt["value"]))
