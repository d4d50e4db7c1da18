"""What each check means: one registry of check definitions and the verdict each value earns.

Explainers put numbers in ``Explanation.checks`` under fixed keys
(``completeness_gap``, ``additivity_gap``, ``fidelity``, ...; DESIGN.md).
This module declares once, per key, a label a reviewer reads, one sentence
of meaning, the direction (lower or higher is better), and the warn / fail
thresholds, or ``info`` for facts that are not verdicts (row counts, the
SHAP algorithm used). Pages, the report and the CLI all call
:func:`verdict` / :func:`verdicts`, so a number means the same everywhere
(the pattern of scikit-learn's ``validate_params``: declare once, check
everywhere).

Thresholds are conventions, not theorems; each says where it comes from:

* ``completeness_gap`` (IG): Captum's Gauss-Legendre rule stays under 1%
  on our CNN at 64 steps (DESIGN.md), so over 1% warns, over 5% fails.
* ``additivity_gap`` (SHAP): exact paths are additive to ~1e-12; sampling
  paths to ~1e-3 of the output. Over 1e-3 of the output warns, over 1e-2
  fails.
* ``fidelity`` (surrogates): accuracy or R^2 of the surrogate against the
  model; under 0.9 warns (one row in ten explained by a different rule),
  under 0.7 fails.
* LIME ``score`` (R^2 of the local linear fit) under 0.5 warns, under 0.2
  fails; ``local_gap`` over 0.05 of the output warns, over 0.2 fails (regression: ``local_gap_relative``,
  the gap over the spread of the model's outputs, with the same thresholds).
* anchors: ``meets_threshold`` 0 fails (a rule under the precision the
  user asked for is not an anchor); ``precision`` under 0.95 warns.
* sanity check: ``does_not_depend_on_model`` 1 fails (Adebayo et al. 2018).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

STATUSES = ("fail", "warn", "pass", "info")
"""Verdicts, worst first."""


@dataclass(frozen=True)
class Check:
    """The definition of one check key.

    Attributes
    ----------
    key : str
    label : str
        A name a reviewer reads ("Completeness gap").
    meaning : str
        One sentence: what the number measures and what a good value is.
    direction : {"lower", "higher", "info"}
        Which way is better; ``info``: a fact, never a verdict.
    warn, fail : float or None
        Thresholds: past ``warn`` the verdict is warn, past ``fail`` it is
        fail (above them for ``lower``, below them for ``higher``).
    kind : {"number", "share", "flag", "count"} or "text:<words>"
        How the value is written: a number (3 significant figures), a
        share (percent), a flag (yes / no), a count, or fixed words (for
        keys that carry the fact in their name, ``path_tree``).
    yes, no : str
        Flags with a verdict: what a yes and a no mean, as a clause a
        sentence can start with ("every rule reaches the precision asked").
    """

    key: str
    label: str
    meaning: str
    direction: str = "info"
    warn: float | None = None
    fail: float | None = None
    kind: str = "number"
    yes: str = ""
    no: str = ""

    def threshold_text(self) -> str:
        """The thresholds in words, e.g. ``pass at or below 1%, fail above 5%, warn between``; empty for info
        checks."""
        if self.direction == "info":
            return ""
        if self.kind == "flag":
            good = self.no if self.direction == "lower" else self.yes
            return f"pass when {good}" if good else f"pass when {'no' if self.direction == 'lower' else 'yes'}"
        ok, bad = ("at or below", "above") if self.direction == "lower" else ("at or above", "below")
        parts = []
        if self.warn is not None:
            parts.append(f"pass {ok} {format_value(self.warn, self.kind)}")
        if self.fail is not None:
            parts.append(f"fail {bad} {format_value(self.fail, self.kind)}")
        if self.warn is not None and self.fail is not None and self.warn != self.fail:
            parts.append("warn between")
        return ", ".join(parts)

    def statement(self, value) -> str:
        """A flag's value as a clause ("A rule stays under the precision asked"); empty when not declared."""
        try:
            said = self.yes if float(value) >= 0.5 else self.no
        except (TypeError, ValueError):
            return ""
        return said[:1].upper() + said[1:] if said else ""


def _c(key, label, meaning, direction="info", warn=None, fail=None, kind="number", yes="", no="") -> Check:
    return Check(key, label, meaning, direction, warn, fail, kind, yes, no)


CHECKS: dict[str, Check] = {c.key: c for c in (
    # integrated gradients
    _c("completeness_gap", "Completeness gap",
       "How far the attributions' sum misses the change in output from the baseline to the input, as a share of "
       "that change (integrated gradients); near 0 means the attributions account for the whole prediction.",
       "lower", 0.01, 0.05, "share"),
    _c("completeness_gap_abs", "Completeness gap (absolute)",
       "The same gap in the explained output's own units (probability for classifiers)."),
    _c("n_steps_max", "Integration steps (most)", "Most interpolation steps any row needed to close its gap.",
       kind="count"),
    _c("rows_refined", "Rows refined", "Rows recomputed with more steps because their gap was too wide.",
       kind="count"),
    # SHAP
    _c("additivity_gap", "Additivity gap",
       "How far base value + sum of SHAP values misses the model's output, in the output's units (probability "
       "for classifiers); exact SHAP values add up, so near 0 is expected.", "lower", 1e-3, 1e-2),
    _c("additivity_gap_relative", "Additivity gap (relative)",
       "The additivity gap divided by the output's magnitude (at least 1); near 0 means the values add up to "
       "the prediction.", "lower", 1e-3, 1e-2),
    _c("tree_additivity_gap", "Tree-path gap (replaced)",
       "The gap shap's tree algorithm left before the studio replaced it with the permutation algorithm."),
    _c("gradient_additivity_gap", "Gradient-path gap (replaced)",
       "The gap shap's gradient algorithm left before the studio replaced it with the permutation algorithm."),
    _c("tree_unsupported", "Tree path unsupported",
       "shap's tree algorithms cannot explain this model's output (shap does not read the model, or a multiclass "
       "boosted model whose probabilities are a softmax of its trees' scores); the permutation algorithm ran "
       "instead.", kind="flag"),
    _c("tree_not_additive_gap", "Tree path not additive (replaced)",
       "The tree path ran but its values missed additivity: the smallest gap its routes left, as a share of the "
       "output scale, over the threshold that keeps a route (the additivity check's pass threshold); the "
       "permutation algorithm ran instead."),
    _c("tree_interventional_additivity_gap", "Interventional TreeSHAP gap (replaced)",
       "The gap shap's interventional tree algorithm left (on the first row, or on all of them) before the studio "
       "replaced it with path-dependent TreeSHAP (or, if that missed too, the permutation algorithm)."),
    _c("tree_interventional_unsupported", "Interventional TreeSHAP unsupported",
       "shap's interventional tree algorithm does not cover this model; path-dependent TreeSHAP was tried next.",
       kind="flag"),
    _c("tree_path_dependent", "Path-dependent TreeSHAP",
       "SHAP values were computed with path-dependent TreeSHAP: absent features follow the training cover of each "
       "branch instead of the background sample (exact and additive on the trees' own output).", kind="flag"),
    _c("tree_path_dependent_xgboost", "Path-dependent TreeSHAP by XGBoost",
       "The path-dependent TreeSHAP values were computed by XGBoost's multithreaded TreeSHAP (the same algorithm) on "
       "the scikit-learn trees rewritten exactly as an XGBoost model; they agree with shap's to float32 precision "
       "(XGBoost sums in float32) and passed the same additivity check.", kind="flag"),
    _c("tree_path_dependent_tables", "Path-dependent TreeSHAP by look-up tables",
       "The path-dependent TreeSHAP values were computed by the studio's per-leaf look-up tables (FastTreeSHAP v2, "
       "Yang 2022) on shap's own reading of the trees: the same values as shap's C path to about 1e-15, several "
       "times faster on many rows, and passed the same additivity check.", kind="flag"),
    _c("tree_path_dependent_additivity_gap", "Path-dependent TreeSHAP gap (replaced)",
       "The gap path-dependent TreeSHAP left on the explained output (it explains the trees' raw output, e.g. "
       "log-odds for gradient boosting) before the permutation algorithm replaced it."),
    _c("tree_path_dependent_unsupported", "Path-dependent TreeSHAP unsupported",
       "shap's path-dependent tree algorithm does not cover this model; the permutation algorithm ran instead.",
       kind="flag"),
    _c("explains_margin", "Explains the margin",
       "The values explain the model's raw margin (log-odds for binary classifiers, per-class scores before "
       "softmax, the value before the link for Poisson/Gamma/Tweedie), not the probability: the library's own "
       "exact TreeSHAP works there; the additivity gap is in those units.", kind="flag"),
    _c("background_rows", "Background rows", "Rows of the data SHAP compares against (the 'absent' features).",
       kind="count"),
    # surrogates
    _c("fidelity", "Fidelity",
       "How often the surrogate agrees with the model on held-out rows (accuracy; R^2 for regression); the "
       "surrogate's explanation describes the model only as far as it agrees.", "higher", 0.9, 0.7),
    _c("fidelity_train", "Fidelity (training rows)", "The same agreement on the rows the surrogate was fitted on."),
    _c("n_train", "Rows fitted", "Rows the surrogate was fitted on.", kind="count"),
    _c("n_holdout", "Rows held out", "Rows held out to measure fidelity.", kind="count"),
    _c("intercept", "Intercept", "The EBM's constant term, in its own units (logit for classifiers)."),
    _c("n_terms", "Terms", "Shape functions in the EBM (single features and pairs).", kind="count"),
    # LIME
    _c("score", "Local fit (R^2)",
       "How well LIME's linear surrogate fits the model near the row (lowest R^2 over the rows); a poor fit "
       "means the weights describe a line the model does not follow.", "higher", 0.5, 0.2),
    _c("score_mean", "Local fit (mean R^2)", "The surrogate's R^2 averaged over the rows."),
    _c("local_gap", "Local gap",
       "How far LIME's surrogate prediction at the row is from the model's output there, in the output's units "
       "(probability for classifiers, the target's units for regression; regression is judged by the relative "
       "gap).", "lower", 0.05, 0.2),
    _c("local_gap_relative", "Local gap (relative)",
       "LIME's local gap divided by the spread (standard deviation) of the model's outputs on the data "
       "(regression, whose units are arbitrary); 0.05 means the surrogate misses by 5% of that spread.",
       "lower", 0.05, 0.2),
    _c("grid_rows", "Rows on a regular grid",
       "Images whose superpixels came from a regular grid because SLIC failed or cut across the image's edges.",
       kind="count"),
    _c("missing_rate", "Missing values sampled",
       "The largest share of missing values among the columns LIME samples with a 'missing' bin (drawn at this "
       "observed rate).", kind="share"),
    # anchors
    _c("meets_threshold", "Every rule meets the precision asked",
       "Whether every rule reached the precision threshold; a rule under it is the best found, not an anchor.",
       "higher", None, 0.5, "flag", yes="every rule reaches the precision asked",
       no="a rule stays under the precision asked"),
    _c("below_threshold", "Rules under the threshold", "Rows whose best rule stayed under the precision threshold.",
       kind="count"),
    _c("precision", "Precision",
       "Share of perturbed samples where the rule holds and the model keeps its prediction (lowest over the "
       "rows); anchors aim at 0.95.", "higher", 0.95, 0.8),
    _c("coverage", "Coverage", "Share of the data (or perturbed samples) the rule applies to (lowest over rows).",
       kind="share"),
    # superpixels
    _c("n_segments_min", "Fewest superpixels",
       "Fewest superpixels an image was split into; with under 4 the map says little about where the model looks.",
       "higher", 8, 4, "count"),
    _c("n_segments_max", "Most superpixels", "Most superpixels an image was split into.", kind="count"),
    # sanity check (Adebayo et al. 2018)
    _c("does_not_depend_on_model", "Ignores the model",
       "Whether the maps stay alike after the model's weights are randomised: a method whose maps do not depend "
       "on the model cannot explain it.", "lower", None, 0.5, "flag",
       yes="the maps stay alike after the model's weights are randomised",
       no="the maps change after the model's weights are randomised"),
    _c("spearman_full", "Rank correlation after randomising",
       "Rank correlation of |map| before and after randomising every layer; low is what a faithful method gives."),
    _c("ssim_full", "Structural similarity after randomising",
       "SSIM of the maps before and after randomising every layer; low is what a faithful method gives."),
    # counts
    _c("n_rows", "Rows used", "Rows of the data the method computed over.", kind="count"),
    _c("rows", "Rows averaged", "Rows whose values were averaged.", kind="count"),
    _c("baseline_score", "Model score", "The model's score on the rows used, before any feature is shuffled."),
    # explanation quality (studio.assess)
    _c("deletion_vs_random", "Deletion area minus random order",
       "The method's deletion area (the explained output as its top-ranked units are removed) minus the area of a "
       "random order on the same rows, as a share of the output's whole change from the full input to every unit "
       "removed; below 0 means its ranking finds what the output depends on faster than chance.", "lower", 0.0,
       0.05),
    _c("insertion_vs_random", "Insertion area minus random order",
       "The method's insertion area minus a random order's on the same rows, as a share of the output's whole "
       "change from no unit to every unit inserted; above 0 means inserting its top-ranked units first restores "
       "the output faster than chance.", "higher", 0.0, -0.05),
    _c("resilience_min", "Lowest resilience",
       "The lowest rank correlation between the clean attribution and the attribution of a perturbed input whose "
       "prediction did not change, over every attack and severity; near 1 means the explanation holds.",
       "higher", 0.5, 0.2),
)}

_PATTERNS = (
    (re.compile(r"^path_(\w+)$"), lambda m: _c(m.group(0), "SHAP algorithm",
                                               f"SHAP values were computed with shap's {m.group(1)} algorithm.",
                                               kind="text:" + m.group(1))),
    (re.compile(r"^spearman_after_(.+)$"), lambda m: _c(m.group(0), f"Rank correlation after randomising {m.group(1)}",
                                                        "Rank correlation of |map| with the original after "
                                                        f"randomising the weights up to {m.group(1)}.")),
    (re.compile(r"^ssim_after_(.+)$"), lambda m: _c(m.group(0), f"SSIM after randomising {m.group(1)}",
                                                    f"Structural similarity with the original map after randomising "
                                                    f"the weights up to {m.group(1)}.")),
)

SUPERSEDED = {"additivity_gap": "additivity_gap_relative", "local_gap": "local_gap_relative"}
"""Keys that are facts, not verdicts, when the key they map to is present (one verdict per property)."""


def definition(key: str) -> Check:
    """The :class:`Check` for ``key`` (an info check naming the key when nobody declared it)."""
    if key in CHECKS:
        return CHECKS[key]
    for pattern, make in _PATTERNS:
        m = pattern.match(key)
        if m:
            return make(m)
    return _c(key, key.replace("_", " ").capitalize(), "A number the method reports (no verdict declared).")


def format_value(value, kind: str = "number") -> str:
    """A value as a reviewer reads it: 2-3 significant figures, percent for shares, yes/no for flags."""
    if kind.startswith("text:"):  # the key itself carries the fact (path_tree: "tree")
        return kind[5:]
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "undefined"
    if kind == "flag":
        return "yes" if v >= 0.5 else "no"
    if kind == "count" and v == int(v):
        return f"{int(v):,}"
    if kind == "share":
        pct = 100 * v
        return f"{pct:.2g}%" if abs(pct) < 10 else f"{pct:.0f}%"
    if v == 0:
        return "0"
    if 1e-3 <= abs(v) < 1e4:
        return f"{v:.3g}"
    return f"{v:.2e}".replace("e-0", "e-").replace("e+0", "e")


def status_of(key: str, value) -> str:
    """``"pass"``, ``"warn"``, ``"fail"`` or ``"info"`` for ``value`` of check ``key``."""
    c = definition(key)
    if c.direction == "info":
        return "info"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "info"
    if math.isnan(v):
        return "info"
    worse = (lambda a, b: a > b) if c.direction == "lower" else (lambda a, b: a < b)
    if c.fail is not None and worse(v, c.fail):
        return "fail"
    if c.warn is not None and worse(v, c.warn):
        return "warn"
    return "pass"


def verdict(key: str, value) -> tuple[str, str]:
    """The verdict on one check and one sentence a reviewer reads.

    Returns
    -------
    (status, sentence)
        ``status`` one of :data:`STATUSES`; e.g. ``("fail", "Completeness gap is 11%, so the check fails
        (pass at or below 1%, fail above 5%, warn between). How far ...")``; a flag says what its value
        means (``"A rule stays under the precision asked, so the check fails (pass when every rule
        reaches the precision asked). ..."``).
    """
    c = definition(key)
    status = status_of(key, value)
    shown = format_value(value, c.kind)
    if status == "info":
        return status, f"{c.label}: {shown}. {c.meaning}"
    verb = {"pass": "passes", "warn": "gives a warning", "fail": "fails"}[status]
    said = c.statement(value) if c.kind == "flag" else ""
    head = said or f"{c.label} is {shown}"
    rule = "" if said and status == "pass" else f" ({c.threshold_text()})"
    return status, f"{head}, so the check {verb}{rule}. {c.meaning}"


@dataclass(frozen=True)
class Verdict:
    """One check of one result, judged.

    Attributes
    ----------
    key, label, status, value
        ``value`` is the number behind the verdict, unformatted.
    shown : str
        The value as written (:func:`format_value`).
    threshold : str
        The thresholds in words (empty for info).
    sentence : str
        :func:`verdict`'s sentence.
    meaning : str
    """

    key: str
    label: str
    status: str
    value: object
    shown: str
    threshold: str
    sentence: str
    meaning: str


def verdicts(checks: dict | None) -> list[Verdict]:
    """Every check of a result judged, worst first (fail, warn, pass, info), in the explainer's order within each.

    A key listed in :data:`SUPERSEDED` is a fact (info) when the key it maps to is present too.
    """
    out = []
    for key, value in (checks or {}).items():
        c = definition(key)
        status, sentence = verdict(key, value)
        if SUPERSEDED.get(key) in (checks or {}):
            status, sentence = "info", f"{c.label}: {format_value(value, c.kind)}. {c.meaning}"
        out.append(Verdict(key, c.label, status, value, format_value(value, c.kind),
                           "" if status == "info" else c.threshold_text(), sentence, c.meaning))
    return sorted(out, key=lambda v: STATUSES.index(v.status))


def worst(checks: dict | None) -> str:
    """The worst verdict among ``checks`` (``"info"`` when none is a verdict)."""
    found = {v.status for v in verdicts(checks)}
    return next((s for s in STATUSES if s in found), "info")


def summary(checks: dict | None) -> str:
    """One line: ``2 checks fail: Completeness gap 11% (fail), ...``, ``1 warning: ...`` or ``3 checks pass``;
    empty without verdicts."""
    vs = [v for v in verdicts(checks) if v.status != "info"]
    if not vs:
        return ""
    bad = [v for v in vs if v.status in ("fail", "warn")]
    if not bad:
        return "1 check passes" if len(vs) == 1 else f"{len(vs)} checks pass"
    parts = [f"{(definition(v.key).statement(v.value) if definition(v.key).kind == 'flag' else '') or f'{v.label} {v.shown}'}"
             f" ({v.status})" for v in bad]
    n_fail = sum(v.status == "fail" for v in bad)
    head = (("1 check fails" if n_fail == 1 else f"{n_fail} checks fail") if n_fail
            else ("1 warning" if len(bad) == 1 else f"{len(bad)} warnings"))
    return head + ": " + ", ".join(parts)
