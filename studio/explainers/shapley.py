"""SHAP values for tables (Lundberg & Lee 2017), on the fastest exact path the model allows.

Paths (``algorithm="auto"`` picks the first that fits):

- ``tree``: exact TreeSHAP (Lundberg et al. 2020).

  * scikit-learn tree ensembles, in order of preference:
    ``shap.TreeExplainer`` *interventional* with the background sample and
    ``model_output="probability"`` for classifiers (the same estimand as
    the permutation path: Shapley values of the probability with absent
    features drawn from the background); if shap refuses the model or its
    values miss additivity (shap 0.51's interventional code compares with
    float32 copies of the thresholds, which sent values tied with a
    threshold the other way: forests over rounded data, HistGradientBoosting,
    whose thresholds are quantiles of the data, with or without NaN; the
    studio recodes thresholds and rows by rank, see :func:`_exact_routing`,
    so this is a safety net), *path-dependent*
    TreeSHAP (``feature_perturbation="tree_path_dependent"``: absent
    features follow the training cover of each branch; no background), kept
    only if it is additive on the explained output (forests, whose leaves
    hold class fractions, explain the probability this way; gradient
    boosting explains log-odds and so misses); then the permutation path.
    Path-dependent TreeSHAP takes the fastest of three routes to the same
    values: XGBoost's multithreaded ``pred_contribs`` over scikit-learn
    forests and trees rewritten as an XGBoost model
    (:mod:`studio.explainers.forest_xgboost`) when the process has at least
    ``forest_xgboost.THREADS_PER_GROUP`` threads per output group
    (``checks["tree_path_dependent_xgboost"]``); else the studio's per-leaf
    look-up tables (:mod:`studio.explainers.fast_treeshap`, FastTreeSHAP v2
    in numpy, one thread, 3-6x faster than shap's C path from a few hundred
    rows and equal to its values to about 1e-15) on shap's parsed model,
    for any ensemble shap parses without categorical splits whose tables
    fit 256 MiB and whose row count pays for building them
    (``checks["tree_path_dependent_tables"]``; the tables are kept with the
    model for its next call); else shap's own C path. A ``Pipeline`` ending in a
    tree model after column-wise steps only (scalers, ``SimpleImputer``:
    :data:`_COLUMNWISE`) is on the tree path, its trees read on the
    transformed rows (each input column maps to one column of its own, so
    the Shapley values are the inputs'); one with a step that mixes or adds
    columns (one-hot encoding, PCA, missing-value indicators) takes the
    permutation path with that step named (``checks["tree_unsupported"]``).
    A multiclass boosted classifier goes straight to the permutation path
    with the reason (:func:`_tree_refusal`).
  * XGBoost, LightGBM and CatBoost models: the library's own exact
    path-dependent TreeSHAP (``pred_contribs`` / ``pred_contrib`` /
    ``get_feature_importance(type="ShapValues")``). It works on the raw
    margin, so **these values explain the margin**: log-odds for binary
    classifiers (the other class: the negated log-odds), the per-class
    softmax scores for multiclass ones, and the value before the inverse
    link for Poisson/Gamma/Tweedie regression. CatBoost models with
    ``cat_features`` take this path on tables with text columns too (a
    ``Pool`` carrying ``cat_features``; each categorical column is one
    feature). ``checks["explains_margin"]``
    is 1.0 then, and the additivity gap is measured on that margin. Use
    ``algorithm="permutation"`` to explain the probability instead.

- ``linear``: ``shap.LinearExplainer`` for scikit-learn linear regressors
  (a linear classifier's probability is not linear, so it takes the
  permutation path);
- ``gradient``: ``shap.GradientExplainer`` (expected gradients) on the torch
  model's probabilities, on the model's device;
- ``permutation``: ``shap.PermutationExplainer`` over the adapter with a
  sampled background (any model, categorical columns through
  :class:`~studio.explainers.tabular_utils.Codec`); ``kernel``:
  ``shap.KernelExplainer``, the same way.

Whatever the path, ``checks["additivity_gap"]`` is measured here against
the explained output (``model.output``, or the margin where
``explains_margin``): max over rows of ``|base + sum(values) - f(x)|``.
A tree route is kept when its gap passes the check shown for it
(:data:`EXACT_TOLERANCE`, the pass threshold of ``additivity_gap_relative``
in :mod:`studio.checks`): one threshold for keeping a route and for the
verdict a reviewer reads. What was used and why is recorded twice: as numbers
in ``checks`` (``path_<path>``, ``tree_path_dependent``,
``tree_interventional_additivity_gap`` or ``tree_interventional_unsupported``
for the reason, ``tree_path_dependent_additivity_gap`` when that missed too;
``tree_not_additive_gap``, the smallest relative gap, when the tree path ran
but no route added up, ``tree_unsupported`` when shap's TreeSHAP cannot
explain the model's output at all, e.g. a multiclass boosted classifier's
softmax, see :func:`_tree_refusal`) and as words in
``provenance["algorithm"]`` and ``provenance["algorithm_reason"]``.
Likewise ``auto`` keeps expected gradients only when their gap is under 1%
of the output scale (``checks["gradient_additivity_gap"]`` otherwise). An
explicit ``algorithm`` is never replaced by another path: ``tree`` may go
from interventional to path-dependent, and its gap is reported as measured.
``algorithm="tree_path_dependent"`` asks for path-dependent TreeSHAP of a
scikit-learn tree ensemble directly (what ``shap.TreeExplainer(model)`` and
explainerdashboard compute for forests: no background, absent features
follow the training cover, about 10-30x cheaper per row than interventional
with 100 background rows); it is refused where it would not be additive on
the explained output (boosted classifiers, whose trees hold log-odds).
"""

from __future__ import annotations

import contextlib
import weakref

import numpy as np

from studio.checks import CHECKS
from studio.errors import StudioError
from studio.explainers.base import Cost, Explainer, batched, output_calls
from studio.explainers.params import Param, ParamSpec
from studio.explainers.tabular_utils import Codec, missing_column, sample_rows, target_index
from studio.explanation import Explanation

ALGORITHMS = ("auto", "tree", "linear", "gradient", "permutation", "kernel", "tree_path_dependent")
_TREE_MODULES = ("sklearn.ensemble._gb", "sklearn.ensemble._forest", "sklearn.tree._classes",
                 "sklearn.ensemble._hist_gradient_boosting.gradient_boosting")
# scikit-learn estimators built on ``sklearn.tree._tree.Tree``, which compares float32 inputs.
_FLOAT32_TREE_MODULES = ("sklearn.ensemble._gb", "sklearn.ensemble._forest", "sklearn.tree._classes")
# An exact path is kept when its measured gap passes the shown check (studio.checks: additivity_gap_relative
# passes at or below this share of the output scale): one threshold for keeping a route and for its verdict.
EXACT_TOLERANCE = CHECKS["additivity_gap_relative"].warn
# ``auto`` keeps expected gradients only when their measured gap is below this share of the scale.
SAMPLING_TOLERANCE = 1e-2


@contextlib.contextmanager
def _numpy_seed(seed: int):
    """Seed numpy's global generator for libraries that use it, then restore it."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


# Pipeline steps that map each column to one column of its own (scalers, imputers), so a tree after them
# splits on functions of single input columns: Shapley values of the transformed columns are those of the inputs.
_COLUMNWISE = {"sklearn.preprocessing._data": ("StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler",
                                               "QuantileTransformer", "PowerTransformer"),
               "sklearn.impute._base": ("SimpleImputer",)}


def _columnwise(step) -> bool:
    """Whether a fitted pipeline step maps column j to column j alone (same width, no indicator columns)."""
    if step is None or step == "passthrough":
        return True
    if type(step).__name__ not in _COLUMNWISE.get(type(step).__module__, ()):
        return False
    if getattr(step, "add_indicator", False):
        return False
    n_in = getattr(step, "n_features_in_", None)
    try:
        return n_in is not None and len(step.get_feature_names_out()) == n_in  # an imputer may drop empty columns
    except Exception:  # noqa: BLE001  (no names out: not provably column-wise)
        return False


def _tree_parts(model):
    """(the scikit-learn tree estimator, the rows' preprocessing or None), or (None, reason) when the model is
    not a tree shap reads: a ``Pipeline`` ending in one after column-wise steps only (:data:`_COLUMNWISE`) gives
    its final estimator and the steps' ``transform``."""
    if model.format not in ("sklearn", "skops", "pickle"):
        return None, ""
    native = model.native
    if type(native).__module__ in _TREE_MODULES:
        return native, None
    if type(native).__name__ == "Pipeline" and type(native).__module__ == "sklearn.pipeline":
        final = native.steps[-1][1]
        if type(final).__module__ not in _TREE_MODULES:
            return None, ""
        mixing = [name for name, step in native.steps[:-1] if not _columnwise(step)]
        if mixing:
            return None, (f"the pipeline's step {mixing[0]!r} ({type(dict(native.steps)[mixing[0]]).__name__}) "
                          "mixes or adds columns, so TreeSHAP on the tree's columns would not explain the inputs")
        return final, native[:-1].transform
    return None, ""


def _tree_estimator(model):
    """The scikit-learn tree estimator TreeSHAP reads (a pipeline's final one), or None."""
    return _tree_parts(model)[0]


def _is_sklearn_tree(model) -> bool:
    return _tree_estimator(model) is not None


def _float32_tree(model) -> bool:
    """Whether the model is built on scikit-learn's ``Tree``, which compares float32 inputs."""
    return type(_tree_estimator(model)).__module__ in _FLOAT32_TREE_MODULES


def _as_tree_input(model, x) -> np.ndarray:
    """``x`` (n, F) as float64 holding the values the model's trees compare: after a pipeline's column-wise
    steps, and rounded to float32 for scikit-learn's ``Tree``."""
    prep = _tree_parts(model)[1]
    x = np.asarray(prep(x) if prep is not None else x, dtype=np.float64)
    return x.astype(np.float32).astype(np.float64) if _float32_tree(model) else x


def _float32_thresholds(thresholds: np.ndarray) -> np.ndarray:
    """Each threshold replaced by the largest float32 at or below it, as float64 (same shape).

    scikit-learn's ``Tree`` sends a float32 input ``v`` left when
    ``v <= t`` with ``t`` a float64 (often the midpoint of two float32
    values). shap 0.51's interventional TreeSHAP (``tree_shap_indep``)
    rounds ``t`` to the *nearest* float32 before comparing, so a value equal
    to that rounding goes left in shap and right in the model, and every row
    explained against that background row misses additivity (forests on
    data with few digits, like the wine table: 3e-4 to 7e-2 of probability;
    the values themselves are off by up to 2e-2). For float32 inputs,
    ``v <= t`` exactly when ``v <= floor32(t)``, and ``floor32(t)`` survives
    shap's rounding, so the model's splits are kept bit for bit.
    """
    t32 = np.asarray(thresholds, dtype=np.float64).astype(np.float32)
    above = t32.astype(np.float64) > thresholds
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32.astype(np.float64)


def _exact_routing(ensemble, *arrays):
    """Thresholds and rows recoded so that shap's interventional TreeSHAP routes every value as the model does.

    shap 0.51's interventional TreeSHAP (``tree_shap_indep`` in
    ``shap/cext/tree_shap.h``) copies each threshold into a C ``float``
    (``Node.thres``) and compares the float64 input with it, so a value
    between the model's float64 threshold ``t`` and ``float32(t)`` takes the
    other branch. scikit-learn's HistGradientBoosting places thresholds on
    quantiles of the training column (``np.percentile(..., method=
    "midpoint")``), which are often values of the data themselves: a row
    holding such a value goes left in the model (``x <= t``) and right in
    shap when ``float32(t) < t``, and every row explained against it misses
    additivity (2e-3 of log-odds, 3e-4 of probability on a 30-tree model);
    forests on rounded data meet it too. Only the order of values and
    thresholds matters to a tree, so each feature's thresholds are replaced
    by their rank among that feature's distinct thresholds (small integers,
    exact in float32) and each value ``x`` by the number of those thresholds
    below it: ``x <= t_j`` exactly when ``rank(x) <= j``. NaN stays NaN and
    follows ``children_default`` as before.

    Parameters
    ----------
    ensemble : shap ``TreeEnsemble``
        The parsed model (``explainer.model``); not modified.
    *arrays : ndarray of shape (n, F)
        Rows (explained rows, background), already as the model compares them (see :func:`_as_tree_input`).

    Returns
    -------
    thresholds : ndarray, the shape of ``ensemble.thresholds``
    coded : list of ndarray (n, F) float64
        Each array recoded; columns no split reads are kept.

    Ensembles with categorical splits are returned unchanged (their thresholds are category sets, not orders).
    """
    thresholds = np.asarray(ensemble.thresholds, dtype=np.float64)
    coded = [np.array(a, dtype=np.float64, copy=True) for a in arrays]
    if np.any(np.asarray(getattr(ensemble, "threshold_types", 0)) != 0):
        return thresholds, coded
    inner = np.asarray(ensemble.children_left) >= 0
    features = np.asarray(ensemble.features)
    out = thresholds.copy()
    for f in np.unique(features[inner]):
        split = inner & (features == f)
        distinct = np.unique(thresholds[split])
        out[split] = np.searchsorted(distinct, thresholds[split], side="left")
        for a in coded:
            col = a[:, f]
            known = ~np.isnan(col)
            col[known] = np.searchsorted(distinct, col[known], side="left")
    return out, coded


def _is_booster(model) -> bool:
    from studio.models.adapter import BoosterModel

    return isinstance(model, BoosterModel)


def _native_categorical(model) -> bool:
    """Whether the model's own TreeSHAP reads categorical columns (CatBoost with ``cat_features``)."""
    return _is_booster(model) and bool(getattr(model, "categorical_indices", None))


def _tree_refusal(model) -> str:
    """Why shap's TreeSHAP cannot explain this scikit-learn tree model's explained output, or "" when it can.

    A multiclass boosted classifier (``GradientBoostingClassifier``, ``HistGradientBoostingClassifier``) gives
    probabilities as a softmax over its per-class trees: shap 0.51's interventional TreeSHAP refuses it ("only
    supported for binary classification" / "not yet supported unless model_output='raw'", shap issue #1028),
    and path-dependent values add up to the per-class raw scores, not the probability.
    """
    if not _is_sklearn_tree(model) or not model.is_classifier:
        return ""
    est = _tree_estimator(model)
    module = type(est).__module__
    if module.startswith(("sklearn.ensemble._gb", "sklearn.ensemble._hist_gradient_boosting")) \
            and len(getattr(est, "classes_", ())) > 2:
        return ("shap's TreeSHAP cannot explain a multiclass boosted model's probabilities (a softmax over its "
                "per-class trees: interventional TreeSHAP refuses it, path-dependent values add up to the raw "
                "scores)")
    return ""


def _is_tree(model) -> bool:
    return _is_sklearn_tree(model) or _is_booster(model)


def _is_linear_regressor(model) -> bool:
    return (model.format in ("sklearn", "skops", "pickle") and not model.is_classifier
            and type(model.native).__module__.startswith("sklearn.linear_model"))


# Built look-up tables per fitted ensemble (weakly held: they go with the model).
_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _path_tables(native, ensemble, n_features: int):
    """The :class:`~studio.explainers.fast_treeshap.PathTables` of ``native`` (shap's parsed ``ensemble``), or
    None where they do not cover it (categorical splits, over the memory budget, ...: shap's path then)."""
    from studio.explainers import fast_treeshap

    digest = fast_treeshap.digest(ensemble)  # a refitted estimator is a new model
    try:
        cached = _TABLES.get(native)
    except TypeError:  # not weakly referable
        cached = None
    if cached is not None and cached[0] == (digest, n_features):
        return cached[1]
    try:
        tables = fast_treeshap.PathTables(ensemble, n_features)
    except fast_treeshap.Unsupported:
        return None
    with contextlib.suppress(TypeError):
        _TABLES[native] = ((digest, n_features), tables)
    return tables


# Path-dependent TreeSHAP work per fitted ensemble, for cost estimates (weakly held, like the tables).
_PD_WORK: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _path_dependent_work(native, n_features: int):
    """(tables or None, shap's work per row): what routes path-dependent TreeSHAP of ``native`` (parsed once)."""
    import shap

    try:
        cached = _PD_WORK.get(native)
    except TypeError:
        cached = None
    if cached is not None and cached[0] == n_features:
        return cached[1], cached[2]
    explainer = shap.TreeExplainer(native, feature_perturbation="tree_path_dependent")
    tables = _path_tables(native, explainer.model, n_features)
    if tables is not None:
        work = tables.shap_work_per_row
    else:  # shap's C path: the sum over leaves of d^2, d the distinct features on the leaf's path
        from studio.explainers import fast_treeshap

        try:
            work = fast_treeshap.PathTables(explainer.model, n_features, budget_bytes=2**62).shap_work_per_row
        except fast_treeshap.Unsupported:
            work = int(np.sum(explainer.model.num_nodes)) * int(explainer.model.max_depth) ** 2
    with contextlib.suppress(TypeError):
        _PD_WORK[native] = (n_features, tables, work)
    return tables, work


class TabularShap(Explainer):
    """SHAP values of the explained output for each row (local), on the best path available."""

    name = "shap"
    version = "2"  # 2: interventional TreeSHAP routed exactly (rank-coded thresholds): cached results change
    data_kind = "tabular"
    scope = "local"
    kind = "attribution"
    libraries = ("shap",)
    summary = "Shapley values: each feature's share of the gap between this row's output and the average (local)."
    params = ParamSpec(
        (
            Param("algorithm", "str", "auto", "SHAP path; auto picks tree, linear, gradient (torch) or permutation.",
                  choices=ALGORITHMS),
            Param("background", "int", 100, "Background rows sampled from the data (the 'average' input).",
                  low=1, high=5000),
            Param("max_evals", "int", 500, "Permutation/kernel paths: model evaluations per row "
                  "(permutation needs at least 2 x features + 1).", low=1, high=100000, fit_low=100,
                  fit_why="fewer evaluations leave most feature coalitions unsampled"),
            Param("nsamples", "int", 200, "Gradient path: samples per row.", low=1, high=100000, fit_low=50,
                  fit_why="expected gradients over fewer samples are mostly noise"),
            Param("seed", "int", 0, "Random seed (background sample and sampling paths).", low=0),
        )
    )

    def path(self, model, data, params) -> str:
        """The path ``algorithm`` resolves to for this model and data."""
        algo = params.get("algorithm", "auto")
        numeric = not data.categorical
        if algo == "auto":
            if _is_tree(model) and (numeric or _native_categorical(model)):
                return "tree"
            if _is_linear_regressor(model) and numeric:
                return "linear"
            if getattr(model, "differentiable", False) and numeric:
                return "gradient"
            return "permutation"
        if algo == "tree" and not numeric and _native_categorical(model):
            return algo
        if algo in ("tree", "linear", "gradient") and not numeric:
            raise StudioError(f"algorithm {algo!r} needs numeric features; use 'permutation' for categorical data")
        if algo == "tree_path_dependent":
            if not numeric or not _is_sklearn_tree(model):
                raise StudioError("algorithm 'tree_path_dependent' is for scikit-learn tree ensembles on numeric "
                                  "features; use 'auto' or 'permutation'")
            return "tree"
        if algo == "tree" and not _is_tree(model):
            raise StudioError("algorithm 'tree' is for scikit-learn tree ensembles and XGBoost, LightGBM or CatBoost "
                              "models; use 'auto' or 'permutation'")
        if algo == "linear" and not _is_linear_regressor(model):
            raise StudioError("algorithm 'linear' is for scikit-learn linear regressors; use 'auto' or 'permutation'")
        if algo == "gradient" and not getattr(model, "differentiable", False):
            raise StudioError("algorithm 'gradient' needs a torch model; use 'auto' or 'permutation'")
        return algo

    def route(self, model, data, params, n_rows) -> str:
        """The route a run over ``n_rows`` rows is expected to take, as its ``checks`` record it.

        One of ``"native"`` (a booster library's TreeSHAP), ``"tree_interventional"``, ``"tree_path_dependent"``
        (shap's C path), ``"tree_path_dependent_tables"``, ``"tree_path_dependent_xgboost"``, ``"linear"``,
        ``"gradient"``, ``"permutation"`` or ``"kernel"``. Follows the run's own choices (:func:`_tree_refusal`,
        ``PathTables.worthwhile``, ``forest_xgboost.worthwhile``); a route that misses additivity at run time
        (not expected after :func:`_exact_routing`) is not foreseen.
        """
        path = self.path(model, data, params)
        if path != "tree":
            return path
        if _is_booster(model):
            return "native"
        if params.get("algorithm", "auto") == "auto" and _tree_refusal(model):
            return "permutation"
        if params.get("algorithm", "auto") != "tree_path_dependent":
            return "tree_interventional"
        from studio.explainers import forest_xgboost

        if _float32_tree(model) and forest_xgboost.worthwhile(_tree_estimator(model)):
            return "tree_path_dependent_xgboost"
        tables, _ = _path_dependent_work(_tree_estimator(model), data.n_features)
        if tables is not None and tables.worthwhile(n_rows):
            return "tree_path_dependent_tables"
        return "tree_path_dependent"

    def cost(self, model, data, params, n_rows):
        """f(x) on the rows (one call), then the route the run takes (:meth:`route`): interventional tree (no
        model calls; own work rows x background rows, trees and leaves being constant per model), path-dependent
        tree (shap's C path: rows x the sum over leaves of d^2; the look-up tables: their build plus rows x
        look-ups, weighted by ``fast_treeshap``'s measured relative costs, so both are in shap-path units and
        the tables come out 3-6x cheaper from a few hundred rows), a multiclass boosted classifier under
        ``auto`` (the permutation path's cost, as it goes there), a booster's native TreeSHAP (rows), linear (rows x
        background), gradient (shap's batches of 50 samples of each row, forward+backward, and one pass over the
        background, for each output; ``auto`` falls back to permutation when it misses additivity), permutation/kernel (about ``max_evals`` masked copies of the background per row; shap
        batches them, so the call count is an upper bound)."""
        route = self.route(model, data, params, n_rows)
        path = "permutation" if route == "permutation" else self.path(model, data, params)
        bg = min(params.get("background", 100), len(data))
        fx = Cost(calls=output_calls(model, data, n_rows), rows=n_rows)
        if route in ("native", "tree_interventional"):
            unit = n_rows if route == "native" else n_rows * bg
            return fx + Cost(own=unit, own_unit="rows x background rows")
        if route.startswith("tree_path_dependent"):  # in units of shap's C path (fast_treeshap's relative costs)
            from studio.explainers import fast_treeshap

            tables, work = _path_dependent_work(_tree_estimator(model), data.n_features)
            own = fast_treeshap.SHAP_COST * n_rows * work
            if route == "tree_path_dependent_tables":
                built = tables._groups is not None
                own = (0.0 if built else fast_treeshap.BUILD_COST * tables.table_bytes / 8) \
                    + fast_treeshap.LOOKUP_COST * n_rows * tables.lookups_per_row
            return fx + Cost(own=own, own_unit="path-dependent TreeSHAP work (shap's C path units)")
        if path == "linear":
            return fx + Cost(own=n_rows * bg, own_unit="rows x background rows")
        if path == "gradient":  # shap runs each output's gradients apart; its set-up passes the background
            ns, k = params.get("nsamples", 200), max(1, model.n_outputs_or(2))
            return fx + Cost(calls=1, rows=bg, grad_calls=1 + n_rows * k * batched(ns, 50),
                             grad_rows=bg + n_rows * k * ns, own=n_rows * k * ns, own_unit="samples x outputs")
        evals = params.get("max_evals", 500)
        if path == "permutation":  # shap calls the model once per permutation of 2F + 1 masks (delta masking)
            masks = 2 * data.n_features + 1
            perms = n_rows * max(1, evals // masks)
            return fx + Cost(calls=output_calls(model, data, masks * bg, perms), rows=perms * masks * bg,
                             own=n_rows * evals, own_unit="masked samples", bound=True)
        return fx + Cost(calls=output_calls(model, data, evals * bg, n_rows), rows=n_rows * evals * bg,
                         own=n_rows * evals, own_unit="masked samples", bound=True)

    def probe_params(self, params, data, k):
        p = dict(params)
        p["max_evals"] = max(2 * data.n_features + 1, min(p.get("max_evals", 500), 64))
        p["nsamples"] = min(p.get("nsamples", 200), 50)
        return p, k + 1

    def explain(self, model, data, params, ctx):
        path = self.path(model, data, params)
        codec = Codec(data)
        x = data.x[ctx.rows]
        bg = data.x[sample_rows(len(data), params["background"], params["seed"])]
        cols = [target_index(model, t) for t in (ctx.targets or [None] * len(ctx.rows))]
        out = model.output(x)  # (n, n_outputs)
        rows = np.arange(len(x))
        fx = out[rows, cols]  # (n,)
        self._n_out = out.shape[1]
        checks, algorithm, reason = {}, path, ""
        ctx.progress(0.0, f"shap ({path})")

        def gap_of(values, base, f):
            return float(np.max(np.abs(base + values.sum(axis=1) - f)))

        scale = max(1.0, float(np.max(np.abs(fx))))
        values = base = None
        not_tree = _tree_parts(model)[1]
        if path == "permutation" and params["algorithm"] == "auto" and isinstance(not_tree, str) and not_tree:
            checks["tree_unsupported"] = 1.0  # a pipeline ending in a tree: say why its trees are not read
            reason = not_tree + "; the permutation path (exact efficiency) used instead"
        if path == "tree" and _is_booster(model):
            values, base, fx = self._native_tree(model, x, cols)
            scale = max(1.0, float(np.max(np.abs(fx))))
            algorithm = f"{model.library} native TreeSHAP (path-dependent, exact)"
            reason = f"{model.library}'s own exact TreeSHAP"
            if model.explains_margin:
                checks["explains_margin"] = 1.0
                reason += "; it explains the raw margin (log-odds or scores before the link), not the probability"
        elif path == "tree" and params["algorithm"] == "tree_path_dependent":
            try:
                values, base = self._tree_path_dependent(model, x, cols, fx, EXACT_TOLERANCE * scale)
            except _Fallback as exc:
                raise StudioError(f"shap's path-dependent TreeSHAP cannot explain this model: {str(exc)[:150]}; "
                                  "use 'auto' or 'permutation'") from None
            gap = gap_of(values, base, fx)
            if gap > EXACT_TOLERANCE * scale:
                raise StudioError(f"path-dependent TreeSHAP misses additivity on this model by {gap:.3g} (its trees "
                                  "hold log-odds, not the explained probability); use 'auto' or 'permutation'")
            algorithm, reason = "tree_path_dependent", "path-dependent TreeSHAP asked for (exact, no background)"
            checks["tree_path_dependent"] = 1.0
            reason += self._route_note(checks)
        elif path == "tree" and params["algorithm"] == "auto" and _tree_refusal(model):
            checks["tree_unsupported"] = 1.0
            reason = _tree_refusal(model) + "; the permutation path (exact efficiency) used instead"
            path = algorithm = "permutation"
        elif path == "tree":
            missed_gaps = []
            try:
                values, base = self._tree(model, x, bg, cols, fx, EXACT_TOLERANCE * scale)
                gap = gap_of(values, base, fx)
                if gap <= EXACT_TOLERANCE * scale:
                    algorithm, reason = "tree_interventional", "interventional TreeSHAP is additive on this model"
                else:
                    raise _Missed(gap)
            except _Missed as missed:
                checks["tree_interventional_additivity_gap"] = missed.gap
                missed_gaps.append(missed.gap)
                reason = f"interventional TreeSHAP missed additivity by {missed.gap:.3g}"
                values = None
            except _Fallback as exc:
                checks["tree_interventional_unsupported"] = 1.0
                reason = f"shap's interventional TreeSHAP does not support this model ({str(exc)[:120]})"
            if values is None:
                try:
                    values, base = self._tree_path_dependent(model, x, cols, fx, EXACT_TOLERANCE * scale)
                    gap = gap_of(values, base, fx)
                    if gap <= EXACT_TOLERANCE * scale or params["algorithm"] == "tree":
                        algorithm = "tree_path_dependent"
                        checks["tree_path_dependent"] = 1.0
                        reason += "; path-dependent TreeSHAP (exact, no background) used instead"
                        reason += self._route_note(checks)
                    else:
                        checks["tree_path_dependent_additivity_gap"] = gap
                        missed_gaps.append(gap)
                        reason += f"; path-dependent TreeSHAP missed it by {gap:.3g} (it explains the trees' raw output)"
                        values = None
                except _Fallback as exc:
                    if params["algorithm"] == "tree":
                        raise StudioError(f"shap's tree path cannot explain this model: {str(exc)[:150]}; "
                                          "use 'auto' or 'permutation'") from None
                    checks["tree_path_dependent_unsupported"] = 1.0
                    reason += "; path-dependent TreeSHAP does not support it either"
            if values is None:
                path = algorithm = "permutation"
                if missed_gaps:  # the tree path ran: its values did not add up
                    checks["tree_not_additive_gap"] = min(missed_gaps) / scale
                    reason += (f"; tree path not additive: gap {min(missed_gaps) / scale:.3g} of the output scale "
                               f"(kept at most {EXACT_TOLERANCE:g})")
                else:  # shap read neither way
                    checks["tree_unsupported"] = 1.0
                reason += "; the permutation path (exact efficiency) used instead"
        gone = missing_column(np.concatenate([x, bg]), data.feature_names) if path == "gradient" else None
        if gone is not None:  # expected gradients interpolate between rows: a missing value has no path
            if params["algorithm"] == "gradient":
                raise StudioError(f"algorithm 'gradient' cannot explain data with missing values (column {gone!r} "
                                  "has some in the rows or the background); use 'auto' or 'permutation'")
            path = algorithm = "permutation"
            reason = (f"column {gone!r} has missing values, which expected gradients cannot interpolate through; "
                      "the permutation path (the model reads the missing values itself) used instead")
        if values is None:
            values, base = self._run(path, model, codec, x, bg, cols, params, ctx)
        gap = gap_of(values, base, fx)
        limit = {"gradient": SAMPLING_TOLERANCE}.get(path)
        if params["algorithm"] == "auto" and limit is not None and gap > limit * scale:
            checks[path + "_additivity_gap"] = gap
            reason = f"expected gradients missed additivity by {gap:.3g}; the permutation path used instead"
            path = algorithm = "permutation"
            values, base = self._run(path, model, codec, x, bg, cols, params, ctx)
            gap = gap_of(values, base, fx)
        checks.update({"additivity_gap": gap, "additivity_gap_relative": gap / scale, "path_" + path: 1.0})
        if algorithm != "tree_path_dependent" and "native TreeSHAP" not in algorithm:  # those read no background
            checks["background_rows"] = float(len(bg))
        ctx.progress(1.0, "done")
        exp = Explanation(
            method=self.name, kind="attribution", feature_names=list(data.feature_names),
            output_names=model.output_names, values=values, base_values=base,
            data=None if data.categorical else np.asarray(x, dtype=np.float64), checks=checks,
        )
        exp.provenance = {"algorithm": algorithm, "algorithm_reason": reason.lstrip("; ") or algorithm}
        return exp

    # ---- the paths ---------------------------------------------------------------------------------
    def _run(self, path, model, codec, x, bg, cols, params, ctx):
        """Values (n, F) and base values (n,) of the explained column of each row."""
        import shap  # noqa: F401  (heavy: imported on use)

        if path == "tree":
            return self._tree(model, x, bg, cols)
        if path == "linear":
            return self._linear(model, x, bg, cols)
        if path == "gradient":
            return self._gradient(model, x, bg, cols, params)
        return self._sampling(path, model, codec, x, bg, cols, params, ctx)

    @staticmethod
    def _pick(values, base, cols, n_out):
        """Select each row's column from shap's (n, F) / (n, F, K) output."""
        values, base = np.asarray(values, dtype=np.float64), np.asarray(base, dtype=np.float64)
        n = values.shape[0]
        if values.ndim == 2:  # one output: class 1 of a binary model, or a regression
            base = np.broadcast_to(base.reshape(-1), (n,)) if base.size in (1, n) else base
            if n_out == 2:
                sign = np.where(np.asarray(cols) == 1, 1.0, -1.0)
                return values * sign[:, None], np.where(sign > 0, base, 1.0 - base)
            return values, np.asarray(base, dtype=np.float64).reshape(n)
        base = base.reshape(-1, values.shape[2]) if base.ndim else np.tile(base, (n, values.shape[2]))
        if base.shape[0] == 1:
            base = np.repeat(base, n, axis=0)
        idx = np.arange(n)
        return values[idx, :, cols], base[idx, cols]

    def _tree(self, model, x, bg, cols, fx=None, tolerance=None):
        """Interventional TreeSHAP values (n, F) and base values (n,) of each row's column.

        With ``fx`` and ``tolerance``, the first row is explained alone first
        and, if it misses additivity, :class:`_Missed` is raised before the
        other rows are computed: shap 0.51's misses on scikit-learn forests
        shift every row alike, so one row finds them at 1/n of the cost.
        """
        import shap

        kw = {"model_output": "probability"} if model.is_classifier else {}
        x, bg = _as_tree_input(model, x), _as_tree_input(model, bg)
        try:
            explainer = shap.TreeExplainer(_tree_estimator(model), data=bg,
                                           feature_perturbation="interventional", **kw)
            # shap compares with float32 thresholds: recode so every value takes the model's branch
            explainer.model.thresholds, (x, explainer.data) = _exact_routing(explainer.model, x, bg)
            explainer.data_missing = np.isnan(explainer.data)
            if fx is None or len(x) < 2:
                sv = explainer(x, check_additivity=False)
                return self._pick(sv.values, sv.base_values, cols, self._n_out)
            first = explainer(x[:1], check_additivity=False)
            v0, b0 = self._pick(first.values, first.base_values, cols[:1], self._n_out)
            gap = float(np.max(np.abs(b0 + v0.sum(axis=1) - fx[:1])))
            if gap > tolerance:
                raise _Missed(gap)
            rest = explainer(x[1:], check_additivity=False)
        except _Missed:
            raise
        except Exception as exc:  # shap does not support this ensemble/output: permutation is exact too
            raise _Fallback(str(exc)) from None
        v1, b1 = self._pick(rest.values, rest.base_values, cols[1:], self._n_out)
        return np.concatenate([v0, v1]), np.concatenate([b0, b1])

    def _tree_path_dependent(self, model, x, cols, fx=None, tolerance=None):
        """Path-dependent TreeSHAP of the trees' raw output (the probability, for forests).

        Three routes to the same values, fastest first: XGBoost's
        multithreaded TreeSHAP (:mod:`studio.explainers.forest_xgboost`) for
        scikit-learn forests and trees where the machine has the threads for
        it (sets ``self._pd_route = "xgboost"``); the studio's per-leaf look-up
        tables (:mod:`studio.explainers.fast_treeshap`, FastTreeSHAP v2, one
        thread, equal to shap's values to about 1e-15) on shap's parsed model
        when they fit their memory budget and the row count pays for building
        them (``"tables"``); shap's own C path otherwise (``"shap"``). With
        ``fx`` and ``tolerance``, a faster route whose values miss additivity
        is dropped for the next one.
        """
        import shap

        from studio.explainers import forest_xgboost

        def additive(values, base):
            return fx is None or float(np.max(np.abs(base + values.sum(axis=1) - fx))) <= tolerance

        self._pd_route = "shap"
        est = _tree_estimator(model)
        if _float32_tree(model) and forest_xgboost.worthwhile(est):
            try:
                values, base = self._pick(*forest_xgboost.tree_shap(est, _as_tree_input(model, x)), cols,
                                          self._n_out)
            except Exception:  # noqa: BLE001  (an unforeseen tree layout: the routes below are exact too)
                values = None
            if values is not None and additive(values, base):
                self._pd_route = "xgboost"
                return values, base
        try:
            explainer = shap.TreeExplainer(est, feature_perturbation="tree_path_dependent")
        except Exception as exc:
            raise _Fallback(str(exc)) from None
        xin = _as_tree_input(model, x)
        tables = _path_tables(est, explainer.model, xin.shape[1])
        if tables is not None and tables.worthwhile(len(xin)):
            try:
                values, base = tables.shap_values(xin)  # (n, F, K), (K,)
            except MemoryError:  # tables within budget, but not within this process's memory limit: shap's path
                values = None
            if values is not None:
                if values.shape[2] == 1:  # shap's layout for one output
                    values, base = values[:, :, 0], base[0]
                values, base = self._pick(values, base, cols, self._n_out)
                if additive(values, base):
                    self._pd_route = "tables"
                    return values, base
        try:
            sv = explainer(xin, check_additivity=False)
        except Exception as exc:
            raise _Fallback(str(exc)) from None
        return self._pick(sv.values, sv.base_values, cols, self._n_out)

    def _route_note(self, checks) -> str:
        """Record in ``checks`` which route computed the last path-dependent values; the words for the reason."""
        route = getattr(self, "_pd_route", "shap")
        if route == "xgboost":
            checks["tree_path_dependent_xgboost"] = 1.0
            return " (computed by XGBoost's multithreaded TreeSHAP on the trees rewritten as an XGBoost model)"
        if route == "tables":
            checks["tree_path_dependent_tables"] = 1.0
            return " (computed by the studio's per-leaf look-up tables, FastTreeSHAP v2, on shap's parsed model)"
        return ""

    @staticmethod
    def _native_tree(model, x, cols):
        """The booster library's exact TreeSHAP of the margin, each row's column, and that margin.

        Returns
        -------
        values : ndarray of shape (n, F)
        base : ndarray of shape (n,)
        margin : ndarray of shape (n,), the explained output
        """
        values, base = model.tree_shap(x)  # (n, F, K), (n, K)
        margin = model.margin(x)  # (n, K)
        idx = np.arange(len(x))
        cols = np.asarray(cols)
        return values[idx, :, cols], base[idx, cols], margin[idx, cols]

    def _linear(self, model, x, bg, cols):
        import shap

        explainer = shap.LinearExplainer(model.native, shap.maskers.Independent(np.asarray(bg, np.float64),
                                                                                   max_samples=len(bg)))
        sv = explainer(np.asarray(x, dtype=np.float64))
        # shap's linear base is coef . mean(bg) + intercept = mean prediction over the background
        return self._pick(sv.values, sv.base_values, cols, self._n_out)

    def _gradient(self, model, x, bg, cols, params):
        import shap
        import torch

        net = model.torch_module("probabilities")
        device = model.device
        to = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32), device=device)
        explainer = shap.GradientExplainer(net, to(bg))
        with _numpy_seed(params["seed"]):
            raw = explainer.shap_values(to(x), nsamples=params["nsamples"], rseed=params["seed"])
        values = np.asarray(raw, dtype=np.float64)  # (n, F, K) in shap 0.51
        if isinstance(raw, list):
            values = np.stack([np.asarray(r, dtype=np.float64) for r in raw], axis=-1)
        with torch.no_grad():
            base = net(to(bg)).double().mean(dim=0).cpu().numpy()  # (K,)
        cols = np.asarray(cols)
        return values[np.arange(len(x)), :, cols], base[cols]

    def _sampling(self, path, model, codec, x, bg, cols, params, ctx):
        import shap

        n_feat = x.shape[1]
        xe, bge = codec.encode(x), codec.encode(bg)

        def f(z):
            return model.output(codec.decode(z))

        values = np.empty((len(x), n_feat))
        base = np.empty(len(x))
        if path == "permutation":
            need = 2 * n_feat + 1
            if params["max_evals"] < need:
                raise StudioError(f"max_evals must be at least 2 x features + 1 = {need} for the permutation path")
            explainer = shap.PermutationExplainer(f, shap.maskers.Independent(bge, max_samples=len(bge)),
                                                  seed=params["seed"])
        else:
            explainer = shap.KernelExplainer(f, bge)
        for i in range(len(x)):  # one row at a time: progress and cancel stay responsive
            ctx.progress(i / len(x), f"shap row {i + 1}/{len(x)}")
            if path == "permutation":
                sv = explainer(xe[i : i + 1], max_evals=params["max_evals"], silent=True)
                v, b = np.asarray(sv.values)[0], np.asarray(sv.base_values)[0]
            else:
                with _numpy_seed(params["seed"] + i):
                    raw = explainer.shap_values(xe[i : i + 1], nsamples=params["max_evals"], silent=True)
                v = np.asarray(raw)[0]
                b = np.asarray(explainer.expected_value)
            values[i] = v[:, cols[i]] if v.ndim == 2 else v
            base[i] = b[cols[i]] if np.ndim(b) else b
        return values, base


class _Fallback(Exception):
    """The tree path cannot explain this model; use the permutation path."""


class _Missed(Exception):
    """Interventional TreeSHAP missed additivity by ``gap`` (on the first row or on all of them)."""

    def __init__(self, gap: float):
        super().__init__(f"missed additivity by {gap:.3g}")
        self.gap = gap


def shap_summary(exp: Explanation) -> dict:
    """The global view of a ``shap`` explanation over many rows.

    Run ``shap`` on many rows (e.g. ``rows=range(200)``), then summarise:

    Returns
    -------
    dict
        ``feature_names`` (list of F), ``mean_abs`` ndarray (F,) the mean
        |SHAP| per feature, ``order`` ndarray (F,) feature indices by
        decreasing mean |SHAP|, and the beeswarm data: ``values`` (n, F) and
        ``data`` (n, F) or None (feature values for colouring).
    """
    if exp.kind != "attribution" or exp.values is None or np.ndim(exp.values) != 2:
        raise StudioError("shap_summary needs a tabular attribution (rows x features)")
    values = np.asarray(exp.values, dtype=np.float64)
    mean_abs = np.abs(values).mean(axis=0)
    return {"feature_names": list(exp.feature_names), "mean_abs": mean_abs,
            "order": np.argsort(-mean_abs, kind="stable"), "values": values, "data": exp.data}
