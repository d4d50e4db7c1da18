"""``assess``: cost, performance, deviation and resilience of explanation methods under perturbations.

After XAIport (Wang and Liu, 2024, "XAIport: A Service Framework for the Early
Adoption of XAI in AI Model Development"), which measures explanation quality
as a set of attributes with provenance for every number. This module uses only
the Model's public verbs (``output``) and :func:`studio.explain`, so a model
in the sandbox worker is assessed exactly like one in this process; FGSM needs
gradients and so runs only for in-process differentiable models.
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from studio.errors import StudioError
from studio.quality import faithfulness as faith
from studio.quality.attacks import GRADIENT_ATTACKS, adversarial, epsilon
from studio.quality.grid import UnitStore
from studio.quality.memory import measure
from studio.quality.metrics import magnitudes, rank_correlation, top_k_overlap

SCHEMA = "studio.assessment/1"
SEVERITIES = (1, 2, 3, 4, 5)

ATTACKS = {
    "noise": "Gaussian noise: tables 0.1 x severity x each column's std; images 0.04 x severity (pixels in [0, 1], "
             "clipped)",
    "blur": "Gaussian blur of each image channel, sigma 0.5 x severity pixels (scipy.ndimage.gaussian_filter); "
            "images only",
    "brightness": "Brightness shift: every pixel + 0.1 x severity, clipped to [0, 1] (as ImageNet-C's brightness); "
                  "images only",
    "fgsm": "Fast gradient sign method (Goodfellow et al. 2015, captum.robust.FGSM) against the predicted class: "
            "epsilon 0.05 x severity (images, clipped to [0, 1]) or 0.1 x severity column stds (tables); "
            "differentiable classifiers, run where the model runs (its sandbox worker for untrusted files)",
    "pgd": "Projected gradient descent (Madry et al. 2018, captum.robust.PGD), L-inf, 10 steps of epsilon / 4, no "
           "random start, against the predicted class: the same epsilon grid as fgsm; differentiable classifiers, "
           "run where the model runs",
}
FAITHFULNESS = ("deletion", "insertion", "infidelity", "sensitivity")

CSV_COLUMNS = ("attribute", "metric", "method", "other", "attack", "severity", "attack_params", "value", "n_rows")


def attack_params(attack: str, severity: int, kind: str) -> dict:
    """The parameters of one perturbation at one severity (what the provenance records)."""
    if attack == "noise":
        return ({"sigma_stds": 0.1 * severity} if kind == "tabular" else {"sigma": 0.04 * severity, "clip": [0, 1]})
    if attack == "blur":
        return {"sigma_pixels": 0.5 * severity}
    if attack == "brightness":
        return {"delta": 0.1 * severity, "clip": [0, 1]}
    if attack in GRADIENT_ATTACKS:
        return epsilon(attack, severity, kind)
    raise StudioError(f"unknown attack {attack!r}; choose from {', '.join(ATTACKS)}")


def _rng(seed: int, attack: str, severity: int) -> np.random.Generator:
    # one stream per (seed, attack, severity): a scenario's noise does not depend on which others run
    return np.random.default_rng([int(seed), zlib.crc32(attack.encode()), int(severity)])


def perturb(x: np.ndarray, kind: str, attack: str, severity: int, seed: int = 0, scale=None) -> np.ndarray:
    """Perturb inputs with noise or blur (model-free attacks).

    Parameters
    ----------
    x : ndarray of shape (n, n_features) or (n, C, H, W)
    kind : {"tabular", "image"}
    attack : {"noise", "blur", "brightness"}
    severity : int
        0 returns an unchanged copy; 1..5 are the standard grid.
    seed : int
    scale : ndarray of shape (n_features,), optional
        Tables: each column's std (of the whole dataset); default: of ``x``.

    Returns
    -------
    ndarray of x's shape and dtype.
    """
    x = np.asarray(x)
    if severity == 0:
        return x.copy()
    params = attack_params(attack, severity, kind)
    rng = _rng(seed, attack, severity)
    if attack == "noise":
        if kind == "tabular":
            std = np.nanstd(x.astype(float), axis=0) if scale is None else np.asarray(scale, dtype=float)
            return (x + rng.normal(size=x.shape) * params["sigma_stds"] * std).astype(x.dtype)
        return np.clip(x + rng.normal(0.0, params["sigma"], size=x.shape), 0.0, 1.0).astype(x.dtype)
    if attack == "blur":
        if kind != "image":
            raise StudioError("blur applies to images; use noise for tables")
        from scipy.ndimage import gaussian_filter

        s = params["sigma_pixels"]
        return gaussian_filter(x, sigma=(0, 0, s, s), mode="nearest").astype(x.dtype)
    if attack == "brightness":
        if kind != "image":
            raise StudioError("brightness applies to images; use noise for tables")
        return np.clip(x + params["delta"], 0.0, 1.0).astype(x.dtype)
    raise StudioError(f"{attack} is not a model-free perturbation; assess() runs it")


def _attacked(model, x: np.ndarray, kind: str, attack: str, severity: int, target: np.ndarray, scale) -> np.ndarray:
    """FGSM or PGD where the model runs: its sandbox worker (``RemoteModel.attack``) or this process."""
    if getattr(model, "remote", False):
        return model.attack(x, kind, attack, severity, target, scale)
    return adversarial(model, x, kind, attack, severity, target, scale)


@dataclass
class Scenario:
    """One method under one perturbation: what a cell of the Quality page's heatmap is computed from.

    Attributes
    ----------
    method, attack : str
    severity : int
    rows : list of int
        The assessed rows, in the order of every array below.
    params : dict
        The perturbation's parameters at this severity (as in the provenance).
    x_clean, x_perturbed : ndarray of shape (n_rows, n_features) or (n_rows, C, H, W)
    output_clean, output_perturbed : ndarray of shape (n_rows, n_outputs)
        The model's output (probabilities for classifiers) on each.
    kept : ndarray of bool, shape (n_rows,)
        Rows whose prediction the perturbation left unchanged: only these were re-explained and enter the number.
    attribution_clean : ndarray, one per row (the method's signed attributions of the clean rows)
    attribution_perturbed : ndarray, one per kept row (``rows[kept]``), in order
    rank_correlation_rows, top_k_overlap_rows : ndarray of shape (n_kept,)
        Each kept row's agreement of clean and perturbed ``|attribution|``; the cell's number is their mean
        (NaN rows, from constant maps, left out).
    numbers : dict
        The cell's resilience ``rank_correlation`` and ``top_k_overlap`` and the perturbation's performance
        (``accuracy`` or ``r2``, ``prediction_kept``).
    """

    method: str
    attack: str
    severity: int
    rows: list
    params: dict
    x_clean: np.ndarray
    x_perturbed: np.ndarray
    output_clean: np.ndarray
    output_perturbed: np.ndarray
    kept: np.ndarray
    attribution_clean: np.ndarray
    attribution_perturbed: np.ndarray
    rank_correlation_rows: np.ndarray
    top_k_overlap_rows: np.ndarray
    numbers: dict


@dataclass
class Assessment:
    """The result of :func:`assess`.

    Attributes
    ----------
    records : list of dict
        The long table: one number per record, keys ``CSV_COLUMNS``.
        ``attribute`` is one of cost, performance, deviation, resilience, faithfulness.
    provenance : dict
        Model and data fingerprints, rows, seed, each method's version and
        parameters, each attack's parameters, library versions, device, time.
    skipped : list of dict
        Attacks or methods not run, each with ``{"attack"|"method", "reason"}`` (a faithfulness metric
        not run for a method also names ``"metric"``).
    curves : dict
        Faithfulness curves per method (and ``"random"``, the random-order baseline): ``fractions`` (share of
        units moved), ``deletion`` and ``insertion`` (mean score per step) and per row (``*_rows``, and the
        per-row areas ``*_auc_rows``), in the order of ``provenance["rows"]``.
    """

    records: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    curves: dict = field(default_factory=dict)
    # the arrays behind the numbers, for :meth:`scenario` (not exported: the JSON holds numbers and provenance)
    _inputs: dict = field(default_factory=dict, repr=False, compare=False)
    _signed: dict = field(default_factory=dict, repr=False, compare=False)
    _perturbed: dict = field(default_factory=dict, repr=False, compare=False)
    _perturbed_attr: dict = field(default_factory=dict, repr=False, compare=False)

    def scenario(self, method: str, attack: str, severity: int) -> "Scenario":
        """One cell of the methods x perturbations grid with the inputs and explanations behind its number.

        Parameters
        ----------
        method : str
        attack : str
        severity : int

        Returns
        -------
        Scenario

        Raises
        ------
        StudioError
            The assessment has no such cell (a method, attack or severity it did not run, or a skipped attack).
        """
        severity = int(severity)
        if (attack, severity) not in self._perturbed or method not in self._signed:
            raise StudioError(f"this assessment has no scenario {method} under {attack} severity {severity}; "
                              "choose a method, attack and severity it ran (provenance lists them)")
        xp, out, kept = self._perturbed[(attack, severity)]
        values, rc, tk = self._perturbed_attr[(method, attack, severity)]
        cell = {r["metric"]: r["value"] for r in self.numbers("resilience")
                if r["method"] == method and r["attack"] == attack and r["severity"] == severity}
        perf = {r["metric"]: r["value"] for r in self.numbers("performance")
                if r["attack"] == attack and r["severity"] == severity}
        return Scenario(method=method, attack=attack, severity=severity, rows=list(self.provenance["rows"]),
                        params=dict(self.provenance["attacks"][attack]["severities"].get(str(severity), {})),
                        x_clean=self._inputs["x"], x_perturbed=xp, output_clean=self._inputs["output"], output_perturbed=out,
                        kept=kept, attribution_clean=self._signed[method],
                        attribution_perturbed=values, rank_correlation_rows=rc, top_k_overlap_rows=tk,
                        numbers={**cell, **perf})

    def numbers(self, attribute: str | None = None) -> list:
        """Records without the timing ones (cost), or only ``attribute``'s: what a re-run reproduces."""
        if attribute is None:
            return [r for r in self.records if r["attribute"] != "cost"]
        return [r for r in self.records if r["attribute"] == attribute]

    def matrix(self, metric: str = "rank_correlation") -> tuple[list, np.ndarray]:
        """The deviation matrix: methods x methods mean agreement by ``metric`` (rank_correlation or top_k_overlap)."""
        methods = list(self.provenance.get("methods", {}))
        m = np.full((len(methods), len(methods)), np.nan)
        for r in self.records:
            if r["attribute"] == "deviation" and r["metric"] == metric:
                m[methods.index(r["method"]), methods.index(r["other"])] = r["value"]
        return methods, m

    def checks(self, method: str) -> dict:
        """Check values for one method (keys in :mod:`studio.checks`): faithfulness against random, resilience."""
        out = {}
        got = {(r["metric"], r["other"]): r["value"] for r in self.numbers("faithfulness") if r["method"] == method}
        for kind in ("deletion", "insertion"):
            if (f"{kind}_auc", "") in got and (f"{kind}_auc", "random") in got:
                gap = got[(f"{kind}_auc", "")] - got[(f"{kind}_auc", "random")]
                out[f"{kind}_vs_random"] = gap / self._span(kind)
        res = [r["value"] for r in self.numbers("resilience") if r["method"] == method and r["n_rows"]
               and r["metric"] == "rank_correlation" and np.isfinite(r["value"])]
        if res:
            out["resilience_min"] = float(min(res))
        return out

    def _span(self, kind: str) -> float:
        """Mean |output at the full input - output with every unit removed| over the rows (the ends of the random
        curves, which every order shares): the scale that makes a gap between areas a share of the output's
        change, comparable between a classifier's probability and a regressor's units. 1 when unknown or 0."""
        rows = np.asarray(self.curves.get("random", {}).get(f"{kind}_rows", []), dtype=float)
        if rows.ndim != 2 or rows.shape[1] < 2:
            return 1.0
        span = float(np.mean(np.abs(rows[:, 0] - rows[:, -1])))
        return span if np.isfinite(span) and span > 0 else 1.0

    def to_dict(self) -> dict:
        out = {"schema": SCHEMA, "provenance": self.provenance, "skipped": self.skipped,
               "records": [{**r, "value": _finite(r["value"])} for r in self.records],
               "curves": {m: {k: _finite_list(v) for k, v in c.items()} for m, c in self.curves.items()}}
        for metric in ("rank_correlation", "top_k_overlap"):
            names, m = self.matrix(metric)
            out.setdefault("deviation", {})[metric] = {
                "methods": names, "matrix": [[_finite(v) for v in row] for row in m]}
        return out

    def to_json(self) -> str:
        """JSON in schema ``studio.assessment/1`` (NaN written as null)."""
        return json.dumps(self.to_dict(), indent=1, allow_nan=False)

    def to_frame(self):
        """The long table as a pandas DataFrame, columns ``CSV_COLUMNS`` (attack parameters as JSON text)."""
        import pandas as pd

        rows = [{**{c: r.get(c) for c in CSV_COLUMNS},
                 "attack_params": json.dumps(r["attack_params"], sort_keys=True) if r["attack_params"] else ""}
                for r in self.records]
        return pd.DataFrame(rows, columns=list(CSV_COLUMNS))

    def to_csv(self) -> str:
        """The long table as CSV, columns ``CSV_COLUMNS``, through the studio's one CSV writer
        (:func:`studio.export.csv_bytes`: formula-like text cells neutralised)."""
        from studio.export import csv_bytes

        return csv_bytes(self.to_frame()).decode("utf-8")


def _finite(v):
    return None if v is None or (isinstance(v, float) and not np.isfinite(v)) else v


def _finite_list(v):
    return [_finite_list(u) for u in v] if isinstance(v, (list, tuple)) else _finite(float(v))


def _record(attribute, metric, value, method="", other="", attack="", severity=None, params=None, n_rows=0):
    return {"attribute": attribute, "metric": metric, "method": method, "other": other, "attack": attack,
            "severity": severity, "attack_params": params or {}, "value": float(value), "n_rows": int(n_rows)}


def _method_infos(names, kind):
    import studio

    infos = {m.name: m for m in studio.methods() if m.data_kind == kind}
    out = {}
    for name in names:
        info = infos.get(name)
        if info is None:
            raise StudioError(f"unknown method {str(name)[:40]!r} for {kind} data; see python -m studio methods")
        if info.kind != "attribution" or info.scope != "local":
            raise StudioError(f"{name} gives {info.scope} {info.kind}s; assess compares local attributions "
                              "(e.g. shap, lime, saliency, integrated_gradients)")
        out[name] = info
    return out


def _performance(model, sub, out) -> dict:
    """accuracy (classifiers) or r2 on ``sub`` given the model's ``out`` on it; {} without labels."""
    if sub.y is None:
        return {}
    if model.is_classifier:
        from studio.evaluation import label_names

        names = np.asarray(model.class_names or [str(i) for i in range(out.shape[1])], dtype=object)
        return {"accuracy": float(np.mean(label_names(model, sub) == names[out.argmax(axis=1)]))}
    from sklearn.metrics import r2_score

    y = np.asarray(sub.y, dtype=float)
    return {"r2": float(r2_score(y, out[:, 0])) if len(y) > 1 else float("nan")}


def _kept(model, out0, out, tolerance) -> np.ndarray:
    """Rows whose prediction the perturbation left unchanged (regression: within tolerance x spread)."""
    if model.is_classifier:
        return out0.argmax(axis=1) == out.argmax(axis=1)
    spread = float(np.std(out0[:, 0])) or 1.0
    return np.abs(out[:, 0] - out0[:, 0]) <= tolerance * spread


def _with_rows(data, rows, x_rows):
    """``data`` with ``rows`` replaced by ``x_rows`` (other rows stay: background samples keep coming from them)."""
    import dataclasses

    x = data.x.copy()
    x[rows] = x_rows
    frame = None
    if data.frame is not None:
        import pandas as pd

        frame = pd.DataFrame(x, columns=list(data.frame.columns))
    return dataclasses.replace(data, x=x, frame=frame, _fingerprint=None, _checked_for=None)


def check_grid(methods, attacks, severities, faithfulness=(), kind: str | None = None) -> tuple:
    """The grid's names checked, repeats dropped: ``(methods, attacks, severities, faithfulness)``.

    With ``kind`` ("tabular" or "image"), the methods are checked to be local attributions for that data too
    (what the API checks before it queues a job).

    Raises
    ------
    StudioError
        No method, an unknown attack or faithfulness metric, a severity off the grid 0..5, a method unknown or
        not a local attribution for ``kind``.
    """
    methods = list(dict.fromkeys(methods))
    attacks = list(dict.fromkeys(attacks))
    if not methods:
        raise StudioError("assess needs at least one method")
    for a in attacks:
        if a not in ATTACKS:
            raise StudioError(f"unknown attack {str(a)[:40]!r}; choose from {', '.join(ATTACKS)}")
    severities = [int(v) for v in severities]
    if not severities or any(not 0 <= v <= max(SEVERITIES) for v in severities):
        raise StudioError(f"severities must be between 0 (no perturbation) and {max(SEVERITIES)}, the grid each "
                          f"attack's scale is defined on; got {severities or 'none'}")
    severities = list(dict.fromkeys(severities))
    faithfulness = list(dict.fromkeys(faithfulness or ()))
    for f in faithfulness:
        if f not in FAITHFULNESS:
            raise StudioError(f"unknown faithfulness metric {str(f)[:40]!r}; choose from {', '.join(FAITHFULNESS)}")
    if kind is not None:
        _method_infos(methods, kind)
    return methods, attacks, severities, faithfulness


def assess(model, data, methods, attacks=("noise",), rows=None, severities=SEVERITIES, seed: int = 0,
           top_k: int | None = None, tolerance: float = 0.05, method_params: dict | None = None,
           progress=None, faithfulness=FAITHFULNESS, faithfulness_params: dict | None = None,
           reference=None, memory: bool = True, cache=True) -> Assessment:
    """Assess explanation methods on rows of a dataset: cost, performance, deviation and resilience.

    Parameters
    ----------
    model : Model
        In process or sandboxed (only ``output`` and ``studio.explain`` are used; FGSM needs an
        in-process differentiable classifier and is skipped, with the reason, otherwise).
    data : Dataset
        Numeric tables or images.
    methods : list of str
        Local attribution methods (``studio.methods()``), compared pairwise.
    attacks : list of str
        From ``ATTACKS``: noise, blur and brightness (images), fgsm and pgd (differentiable classifiers; run in
        the model's sandbox worker when it has one).
    rows : list of int, optional
        Rows assessed (performance, explanations); default the first 10.
    severities : sequence of int
        Severity grid, default 1..5 (0 is the identity).
    seed : int
        Seeds every perturbation and every method that takes a seed; the same seed gives the same numbers.
    top_k : int, optional
        Features (tables) or pixels (images) in the top-k overlap; default min(5, features) or 10 % of pixels.
    tolerance : float
        Regression only: a prediction counts as unchanged within ``tolerance`` x the std of the clean predictions.
    method_params : dict of str to dict, optional
        Parameters per method (``seed`` is set from ``seed`` unless given).
    progress : callable(fraction, message), optional
    faithfulness : sequence of str
        From ``FAITHFULNESS``: deletion, insertion (any model), infidelity (any model; attributions with one
        value per input value), sensitivity (differentiable models: it re-explains perturbed copies). Empty: none.
    faithfulness_params : dict, optional
        Overrides of :data:`studio.quality.faithfulness.DEFAULTS` (steps, patch, substrates, samples, radii).
    reference : array-like of shape (n_features,), optional
        Tables: what a deleted feature becomes (default: each column's mean over the whole dataset).
    memory : bool
        Measure peak memory of each clean explanation (tracemalloc slows Python-heavy methods such as LIME
        while it traces, and ``seconds_per_row`` includes that; False: time only).
    cache : bool or Cache
        True (default): every finished unit (a method's clean explanation, its faithfulness, a perturbation, a
        method under a perturbation: a scenario) is stored in the studio's cache as it completes, and a call with
        the same model, data, rows, seed and parameters reuses what is stored, so an interrupted grid resumes
        where it stopped (:mod:`studio.quality.grid`); ``provenance["grid"]`` says how many scenarios were reused
        and computed. False computes everything and stores nothing. Reused cost records are the ones measured
        when the unit was computed.

    Returns
    -------
    Assessment
        Records: cost (seconds per explained row, from ``Explanation.compute_seconds``, and peak memory of
        the clean explanation, measured where it ran: ``python_peak_bytes``, ``rss_hwm_delta_bytes``,
        ``cuda_peak_bytes`` on a GPU; see :mod:`studio.quality.memory`); faithfulness (mean over rows of
        ``deletion_auc``, ``insertion_auc``, ``infidelity``, ``sensitivity_max``; deletion and insertion also
        with ``other="random"``, the random-order baseline on the same rows); performance
        (accuracy or r2, and the share of predictions kept) clean and per attack and severity; deviation
        (mean over rows of Spearman rank correlation and top-k overlap of ``|attribution|`` for every
        ordered pair of methods); resilience (the same, clean vs perturbed, over only the rows whose
        prediction the perturbation did not change; ``n_rows`` says how many).

    Raises
    ------
    StudioError
        Unknown or non-attribution methods, unknown attacks, non-numeric tables, bad rows.
    """
    import studio
    from studio.api import _versions, registry

    started = time.time()
    methods, attacks, severities, faithfulness = check_grid(methods, attacks, severities, faithfulness)
    data = data.aligned_to(model)
    if data.kind == "tabular":
        data.numeric_x()
    infos = _method_infos(methods, data.kind)
    rows = list(range(min(10, len(data)))) if rows is None else [int(r) for r in rows]
    bad = [r for r in rows if not 0 <= r < len(data)]
    if not rows or bad:
        raise StudioError(f"rows must be between 0 and {len(data) - 1}, got {bad or 'none'}")
    if len(set(rows)) != len(rows):
        raise StudioError("rows must not repeat")
    params = {}
    for name in methods:
        p = dict((method_params or {}).get(name, {}))
        if any(q.name == "seed" for q in infos[name].params):
            p.setdefault("seed", seed)
        params[name] = p
    scale = np.nanstd(data.x.astype(float), axis=0) if data.kind == "tabular" else None
    n_px = None if data.kind == "tabular" else data.x.shape[-1] * data.x.shape[-2]
    k = top_k or (min(5, data.n_features) if data.kind == "tabular" else max(1, n_px // 10))
    res = Assessment()
    say = progress or (lambda f, m: None)
    versions_used = _versions(("scikit-learn", "scipy", "torch", "captum", "shap", "lime"))
    store = UnitStore(cache, {"model": model.cache_id, "data": data.fingerprint, "rows": rows, "seed": int(seed),
                              "versions": versions_used})
    method_key = {name: {"method": name, "version": registry.get(name, data.kind).version, "params": params[name]}
                  for name in methods}

    x0 = data.x[rows]
    sub = data.subset(rows)
    out0 = model.output(x0)
    res._inputs = {"x": x0, "output": out0}
    for metric, v in _performance(model, sub, out0).items():
        res.records.append(_record("performance", metric, v, n_rows=len(rows)))

    fsettings = faith.settings(faithfulness_params, data.kind, reference) if faithfulness else {}
    ref = None
    if data.kind == "tabular":
        ref = np.nanmean(data.x.astype(float), axis=0) if reference is None else np.asarray(reference, dtype=float)
        if ref.shape != (data.n_features,):
            raise StudioError(f"reference must have one value per feature ({data.n_features}), got {ref.shape}")
    target = out0.argmax(axis=1) if model.is_classifier else np.zeros(len(rows), dtype=int)
    device = getattr(model, "device", "cpu") or "cpu"
    runnable = [a for a in attacks if not _skip_reason(model, data, a)]
    n_scenarios = len(methods) * len(runnable) * len(severities)
    n_units = len(methods) * (2 if faithfulness else 1) + len(runnable) * len(severities) + n_scenarios
    done = [0]

    def step(message):
        done[0] += 1
        say(min(done[0] / max(n_units, 1), 1.0), message)

    # clean explanations: cost (time, peak memory), deviation and faithfulness
    clean, signed, versions = {}, {}, {}
    for name in methods:
        def explain_clean(name=name):
            if memory:
                with measure(device, here=not getattr(model, "remote", False)) as peaks:
                    exp = studio.explain(model, data, name, rows=rows, params=params[name], cache=False)
            else:
                peaks = {}
                exp = studio.explain(model, data, name, rows=rows, params=params[name], cache=False)
            return ({"compute_seconds": exp.compute_seconds, "peaks": dict(peaks),
                     "version": exp.provenance.get("method_version")}, {"values": np.asarray(exp.values)})

        head, arr = store.unit({"unit": "clean", **method_key[name], "memory": bool(memory)}, explain_clean)
        signed[name] = arr["values"]
        clean[name] = magnitudes(signed[name], data.kind)
        versions[name] = head["version"]
        res.records.append(_record("cost", "seconds_per_row", head["compute_seconds"] / len(rows), method=name,
                                   n_rows=len(rows)))
        for metric, v in head["peaks"].items():
            res.records.append(_record("cost", metric, v, method=name, n_rows=len(rows)))
        step(f"explained the clean rows with {name}")
    res._signed = signed
    if faithfulness:
        _faithfulness(res, store, model, data, rows, x0, target, signed, faithfulness, fsettings, ref, scale, seed,
                      params, method_key, step)
    for a in methods:
        for b in methods:
            for metric, fn in (("rank_correlation", rank_correlation),
                               ("top_k_overlap", lambda u, v: top_k_overlap(u, v, k))):
                vals = [fn(clean[a][j], clean[b][j]) for j in range(len(rows))]
                res.records.append(_record("deviation", metric, _nanmean(vals), method=a, other=b,
                                           n_rows=int(np.sum(np.isfinite(vals)))))

    # perturbations: performance and resilience; every (method, attack, severity) is one scenario, stored when done
    attack_log = {}
    for attack in attacks:
        reason = _skip_reason(model, data, attack)
        if reason:
            res.skipped.append({"attack": attack, "reason": reason})
            continue
        attack_log[attack] = {}
        for sev in severities:
            ap = attack_params(attack, sev, data.kind) if sev else {}
            attack_log[attack][str(sev)] = ap

            def perturbed(attack=attack, sev=sev):
                if attack in GRADIENT_ATTACKS and sev:
                    xp = _attacked(model, x0, data.kind, attack, sev, out0.argmax(axis=1), scale)
                else:
                    xp = perturb(x0, data.kind, attack, sev, seed=seed, scale=scale)
                return {}, {"x": xp, "output": model.output(xp)}

            _, arr = store.unit({"unit": "perturbation", "attack": attack, "severity": sev, "attack_params": ap,
                                 "tolerance": float(tolerance)}, perturbed)
            xp, out = arr["x"], arr["output"]
            kept = _kept(model, out0, out, tolerance)
            res._perturbed[(attack, sev)] = (xp, out, kept)
            step(f"{attack} severity {sev}")
            n_kept = int(kept.sum())
            for metric, v in _performance(model, sub, out).items():
                res.records.append(_record("performance", metric, v, attack=attack, severity=sev, params=ap,
                                           n_rows=len(rows)))
            res.records.append(_record("performance", "prediction_kept", n_kept / len(rows), attack=attack,
                                       severity=sev, params=ap, n_rows=len(rows)))
            idx = np.nonzero(kept)[0]
            krows = [rows[j] for j in idx]
            pdata = []  # the dataset with the perturbed rows, made only if a scenario is computed
            for name in methods:
                def explain_perturbed(name=name, xp=xp, pdata=pdata):
                    if not n_kept:
                        return {}, {"values": np.zeros((0,) + signed[name].shape[1:], signed[name].dtype)}
                    if not pdata:
                        pdata.append(_with_rows(data, rows, xp))
                    exp = studio.explain(model, pdata[0], name, rows=krows, params=params[name], cache=False)
                    return {}, {"values": np.asarray(exp.values)}

                _, arr = store.unit({"unit": "scenario", **method_key[name], "attack": attack, "severity": sev,
                                     "attack_params": ap, "tolerance": float(tolerance)}, explain_perturbed)
                mp = magnitudes(arr["values"], data.kind) if n_kept else []
                rc = [rank_correlation(clean[name][j], mp[i]) for i, j in enumerate(idx)]
                tk = [top_k_overlap(clean[name][j], mp[i], k) for i, j in enumerate(idx)]
                res._perturbed_attr[(name, attack, sev)] = (arr["values"], np.asarray(rc, dtype=float),
                                                            np.asarray(tk, dtype=float))
                res.records.append(_record("resilience", "rank_correlation", _nanmean(rc), method=name,
                                           attack=attack, severity=sev, params=ap, n_rows=n_kept))
                res.records.append(_record("resilience", "top_k_overlap", _nanmean(tk), method=name,
                                           attack=attack, severity=sev, params=ap, n_rows=n_kept))
                finished = store.reused["scenario"] + store.computed["scenario"]
                step(f"scenario {finished} of {n_scenarios}: {name} under {attack} severity {sev} "
                     f"({store.reused['scenario']} reused from the cache)")
    say(1.0, "done")
    res.provenance = {
        "model": {"name": model.name, "format": model.format, "fingerprint": model.fingerprint, "task": model.task,
                  "sandbox": getattr(model, "sandbox", "off")},
        "data": {"name": data.name, "kind": data.kind, "fingerprint": data.fingerprint},
        "rows": rows, "seed": int(seed), "severities": [int(s) for s in severities], "top_k": int(k),
        "tolerance": float(tolerance), "memory": bool(memory),
        "faithfulness": {"metrics": faithfulness, "settings": fsettings},
        "methods": {name: {"version": versions[name], "params": params[name]} for name in methods},
        "attacks": {a: {"definition": ATTACKS[a], "severities": attack_log.get(a, {})} for a in attacks},
        "versions": versions_used,
        "device": device, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 3),
        "grid": {"scenarios": n_scenarios, "reused": store.reused["scenario"],
                 "computed": store.computed["scenario"], "cache": store.cache is not None,
                 "units_reused": sum(store.reused.values()), "units_computed": sum(store.computed.values())},
    }
    return res


def _nanmean(vals) -> float:
    vals = np.asarray(vals, dtype=float)
    return float(np.mean(vals[np.isfinite(vals)])) if np.isfinite(vals).any() else float("nan")


def _skip_reason(model, data, attack) -> str:
    if attack == "blur" and data.kind != "image":
        return "blur applies to images only"
    if attack == "brightness" and data.kind != "image":
        return "brightness applies to images only"
    if attack in GRADIENT_ATTACKS:
        if not getattr(model, "differentiable", False):
            return "needs a differentiable (torch) model"
        if not model.is_classifier:
            return "attacks the predicted class; classifiers only"
    return ""


def _faithfulness(res, store, model, data, rows, x0, target, signed, metrics, fs, ref, scale, seed, params,
                  method_key, step) -> None:
    """Deletion / insertion (and their random-order baseline), infidelity and max-sensitivity: one unit per method."""
    n = len(rows)
    curve_kinds = [kind for kind in ("deletion", "insertion") if kind in metrics]
    common = {"unit": "faithfulness", "metrics": list(metrics), "settings": fs,
              "reference": None if ref is None else [float(v) for v in ref]}

    def curves_of(c) -> dict:
        out = {"fractions": np.asarray(c["fractions"]).tolist()}
        for kind in curve_kinds:
            out.update({kind: c[kind].mean(axis=0).tolist(), f"{kind}_rows": c[kind].tolist(),
                        f"{kind}_auc_rows": c[f"{kind}_auc"].tolist()})
        return out

    def random_unit():
        patch = int(fs.get("patch", 1))
        n_units = faith.unit_scores(x0[:1], data.kind, patch).shape[1]
        rand = [faith.deletion_insertion(model, x0, None, data.kind, target, fs, ref, orders=o)
                for o in faith.random_orders(n, n_units, seed, int(fs["random_orders"]))]
        mean = {key: (np.mean([r[key] for r in rand], axis=0) if key != "fractions" else rand[0][key])
                for key in rand[0]}
        return {"curves": curves_of(mean)}, {}

    def method_unit(name):
        head = {"records": [], "curves": None, "skipped": []}
        if curve_kinds:
            c = faith.deletion_insertion(model, x0, signed[name], data.kind, target, fs, ref)
            head["curves"] = curves_of(c)
            head["records"] += [[f"{kind}_auc", float(np.mean(c[f"{kind}_auc"]))] for kind in curve_kinds]
        if "infidelity" in metrics:
            try:
                v = faith.infidelity(model, x0, signed[name], data.kind, target, fs.get("infidelity_sigma", 0.0),
                                     fs["n_perturb_samples"], seed, scale=None if data.kind == "image" else scale)
                head["records"].append(["infidelity", float(np.mean(v))])
            except StudioError as exc:
                head["skipped"].append({"method": name, "metric": "infidelity", "reason": str(exc)})
        if "sensitivity" in metrics:
            if not getattr(model, "differentiable", False):
                head["skipped"].append({"method": name, "metric": "sensitivity",
                                        "reason": "re-explains perturbed copies; run for differentiable models only"})
            else:
                v = faith.sensitivity(model, data, x0, signed[name], name, params[name], fs["sensitivity_radius"],
                                      fs["n_perturb_samples"], seed, scale=None if data.kind == "image" else scale)
                head["records"].append(["sensitivity_max", float(np.mean(v))])
        return head, {}

    random_auc, random_curves = {}, None
    if curve_kinds:
        head, _ = store.unit({**common, "method": "random"}, random_unit)
        random_curves = head["curves"]
        random_auc = {kind: float(np.mean(head["curves"][f"{kind}_auc_rows"])) for kind in curve_kinds}
    for name in signed:
        head, _ = store.unit({**common, **method_key[name]}, lambda name=name: method_unit(name))
        if head["curves"] is not None:
            res.curves[name] = head["curves"]
        for metric, value in head["records"]:
            res.records.append(_record("faithfulness", metric, value, method=name, n_rows=n))
            kind = metric[: -len("_auc")]
            if kind in random_auc:
                res.records.append(_record("faithfulness", metric, random_auc[kind], method=name, other="random",
                                           n_rows=n))
        res.skipped += head["skipped"]
        step(f"faithfulness of {name}")
    if random_curves is not None:
        res.curves["random"] = random_curves


def reassess(previous, model, data, cache: bool = False, progress=None) -> tuple[Assessment, dict]:
    """Run an assessment again from its provenance and compare the numbers (XAIport's reproducibility).

    Parameters
    ----------
    previous : Assessment, dict or path
        An assessment, its JSON (schema ``studio.assessment/1``) parsed, or the JSON file.
    model, data : Model, Dataset
        The model and data it assessed: their fingerprints must equal the provenance's.
    cache : bool
        False (default): every number is computed again (a re-run that reads the stored units would only
        compare the cache with itself).
    progress : callable(fraction, message), optional

    Returns
    -------
    (Assessment, dict)
        The new assessment, and ``{"numbers", "equal", "max_abs_diff", "differ"}``: how many numbers (cost
        left out: it is this device's time) the two hold, how many are equal (NaN equals NaN), the largest
        absolute difference, and the first differing records as ``(attribute, metric, method, other, attack,
        severity, before, after)``.

    Raises
    ------
    StudioError
        Not an assessment, or a model or data other than the one it recorded.
    """
    import json
    from pathlib import Path

    if isinstance(previous, Assessment):
        before, prov = previous.numbers(), previous.provenance
    else:
        doc = previous if isinstance(previous, dict) else json.loads(Path(previous).read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or "provenance" not in doc:
            raise StudioError(f"not an assessment (schema {SCHEMA}); pass the JSON that assess wrote")
        prov = doc["provenance"]
        before = [r for r in doc.get("records", []) if r.get("attribute") != "cost"]
    aligned = data.aligned_to(model)
    for what, now, then in (("model", model.fingerprint, prov["model"]["fingerprint"]),
                            ("data", aligned.fingerprint, prov["data"]["fingerprint"])):
        if now != then:
            raise StudioError(f"the {what} is not the one this assessment recorded (fingerprint {now[:12]} here, "
                              f"{then[:12]} in its provenance); load the same {what} file")
    settings = dict(prov["faithfulness"]["settings"])
    reference = settings.pop("reference", None)
    result = assess(model, data, list(prov["methods"]), list(prov["attacks"]), rows=list(prov["rows"]),
                    severities=prov["severities"], seed=prov["seed"], top_k=prov["top_k"],
                    tolerance=prov["tolerance"], method_params={m: v["params"] for m, v in prov["methods"].items()},
                    progress=progress, faithfulness=prov["faithfulness"]["metrics"],
                    faithfulness_params=settings or None,
                    reference=None if isinstance(reference, str) or reference is None else reference,
                    memory=prov.get("memory", True), cache=cache)

    def key(r):
        return (r["attribute"], r["metric"], r["method"], r["other"], r["attack"],
                None if r["severity"] is None else int(r["severity"]))

    after = {key(r): r["value"] for r in result.numbers()}
    differ, top, equal = [], 0.0, 0
    for r in before:
        a, b = r["value"], after.get(key(r), "missing")
        same = b != "missing" and ((a is None or a != a) and (b is None or b != b) or a == b)
        if same:
            equal += 1
            continue
        if b != "missing" and a is not None and b is not None:
            top = max(top, abs(float(a) - float(b)))
        differ.append((*key(r), a, None if b == "missing" else b))
    return result, {"numbers": len(before), "equal": equal, "max_abs_diff": top, "differ": differ[:20]}
