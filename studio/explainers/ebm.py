"""Explainable Boosting Machines (interpret): a glass box and a surrogate.

- ``ebm``: an EBM fitted to the data's labels, to compare the model against;
- ``ebm_surrogate``: an EBM fitted to the MODEL's predictions on a train
  split, with ``checks["fidelity"]`` = accuracy (classification) or R^2
  (regression) of the EBM against the model on the held-out rows.

Both return every term's shape function as a :class:`Curve` of kind
``"ebm"``: main effects (step functions: ``grid[0][k]`` is the left edge of
bin ``k``, the first edge the data minimum; categories for categorical
features) and the pairwise interactions the EBM found (2-D step functions).
Each curve's ``extra`` holds ``cuts`` (interpret's exact bin cut points per
feature; a value ``v`` falls in bin ``searchsorted(cuts, v, "right")``) and
the ``intercept``, so ``intercept + sum of terms`` reproduces the EBM's own
score (:func:`ebm_score`). Scale: the explained class's logit for
classifiers (for a binary EBM and class 0, the negated logit), the
prediction for regression.

Missing values: interpret fits a score for "missing" in every term (bin 0
of ``term_scores_``). When the data has missing values in a term's
feature(s), the curve keeps it: a main effect's ``extra["missing"]`` is the
score of the feature being missing (drawn by ``studio.charts.curves`` as a
point labelled "missing"), every such term's ``extra["missing_axes"]`` says
which of its features have missing values, and its ``extra["with_missing"]``
holds its scores with index 0 on each of those axes for "missing" (then the
bins of ``average``), which :func:`ebm_score` uses for rows with NaN and the
heatmap of an interaction draws as a "missing" row / column.
"""

from __future__ import annotations

import numpy as np

from studio.errors import StudioError
from studio.explainers.base import Cost, Explainer, output_calls
from studio.explainers.params import Param, ParamSpec
from studio.explainers.tabular_utils import sample_rows, sample_size
from studio.explanation import Curve, Explanation


def _params(extra=()):
    return ParamSpec(
        (
            Param("interactions", "int", 5, "Pairwise interaction terms the EBM may add.", low=0, high=100),
            Param("max_rounds", "int", 2000, "Boosting rounds (early stopping may end sooner).", low=1,
                  high=100000),
            Param("outer_bags", "int", 4, "Bagged fits averaged (more: smoother, slower).", low=1, high=64),
            Param("max_bins", "int", 256, "Bins per numeric feature for main effects.", low=3, high=4096),
            Param("max_rows", "int", 5000, "Rows sampled from the data (0: all).", low=0, fit_low=500,
                  fit_why="shape functions fitted on fewer rows follow the sample's noise"),
        )
        + tuple(extra)
        + (Param("seed", "int", 0, "Random seed.", low=0),)
    )


class _EbmExplainer(Explainer):
    version = "2"  # interactions keep interpret's "missing" row / column (issue 13)
    data_kind = "tabular"
    scope = "global"
    kind = "curve"
    libraries = ("interpret",)

    def cost(self, model, data, params, n_rows):
        """The fit (interpret's cyclic boosting, :func:`_fit`): own work terms (features and interactions) x
        outer bags x sqrt(rows) (boosting works on binned histograms, so rows weigh less than linearly: measured
        on the sample, 150 -> 569 rows took 1.4 times as long; rounds until early stopping are per data); the
        surrogate also calls the model once on the rows."""
        n = sample_size(len(data), params.get("max_rows"))
        own = np.sqrt(n) * (data.n_features + params.get("interactions", 5)) * params.get("outer_bags", 4)
        calls = output_calls(model, data, n) if self.name == "ebm_surrogate" else 0
        return Cost(calls=calls, rows=n if calls else 0, own=float(own), own_unit="sqrt(rows) x terms x bags")

    def probe_params(self, params, data, k):
        return dict(params, outer_bags=1, max_rows=min(len(data), 100 * 3 ** k)), 0

    def _fit(self, frame, y, classification, params):
        from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor

        cls = ExplainableBoostingClassifier if classification else ExplainableBoostingRegressor
        ebm = cls(interactions=params["interactions"], max_rounds=params["max_rounds"],
                  outer_bags=params["outer_bags"], max_bins=params["max_bins"], n_jobs=1,
                  random_state=params["seed"])
        try:
            ebm.fit(frame, y)
        except Exception as exc:  # interpret's messages are about its internals; say what to change
            raise StudioError(f"the EBM could not be fitted ({str(exc).splitlines()[0][:160]}); "
                              "check the data or lower interactions / max_bins") from None
        return ebm

    def _explanation(self, model, data, ebm, target_class, checks, frame):
        curves, intercept = ebm_curves(ebm, target_class, frame, data.feature_names, model.class_names)
        checks = dict(checks, intercept=float(intercept), n_terms=float(len(curves)))
        return Explanation(method=self.name, kind="curve", feature_names=list(data.feature_names),
                           output_names=model.output_names, curves=curves, checks=checks)


def _frame(data, rows):
    import pandas as pd

    if data.frame is not None:
        return data.frame.iloc[rows].reset_index(drop=True)
    return pd.DataFrame(data.x[rows], columns=list(data.feature_names))


class Ebm(_EbmExplainer):
    """A glass-box EBM fitted to the data's labels."""

    name = "ebm"
    summary = "A glass-box boosting model fitted to the labels: its shape functions, to compare with (global)."
    params = _params()

    def is_compatible(self, model, data):
        ok, reason = super().is_compatible(model, data)
        if ok and data is not None and data.y is None:
            return False, "needs labels; the dataset has no label column"
        return ok, reason

    def explain(self, model, data, params, ctx):
        rows = sample_rows(len(data), params["max_rows"], params["seed"])
        frame = _frame(data, rows)
        y = np.asarray(data.y)[rows]
        if model.is_classifier:
            from studio.explainers.importance import _label_space

            labels = _label_space(model, y)  # dataset label of each model class index
            lookup = {str(v): k for k, v in enumerate(labels)}
            y = np.asarray([lookup[str(v)] for v in y])
        else:
            y = y.astype(np.float64)
        ctx.progress(0.1, "fitting the EBM")
        ebm = self._fit(frame, y, model.is_classifier, params)
        target = None if ctx.targets is None else ctx.targets[0]
        return self._explanation(model, data, ebm, target, {"n_rows": float(len(rows))}, frame)


class EbmSurrogate(_EbmExplainer):
    """An EBM fitted to the model's own predictions, with its held-out fidelity."""

    name = "ebm_surrogate"
    summary = "A glass-box model fitted to the model's predictions; fidelity says how well it mimics (global)."
    params = _params((Param("holdout", "float", 0.3, "Share of rows held out to measure fidelity.",
                            low=0.05, high=0.9),))

    def explain(self, model, data, params, ctx):
        rows = sample_rows(len(data), params["max_rows"], params["seed"])
        rng = np.random.default_rng([params["seed"], 1])
        perm = rng.permutation(len(rows))
        n_hold = max(1, int(round(params["holdout"] * len(rows))))
        hold, train = np.sort(perm[:n_hold]), np.sort(perm[n_hold:])
        if len(train) < 10:
            raise StudioError(f"only {len(train)} rows to fit the surrogate on; use more rows or a smaller holdout")
        frame = _frame(data, rows)
        x = data.x[rows]
        if model.is_classifier:
            y = model.predict(x)
            if len(np.unique(y[train])) < 2:
                raise StudioError("the model predicts a single class on these rows; a surrogate needs two or more")
        else:  # the explained output (a multi-output regressor's target)
            y = model.output(x)[:, 0 if not ctx.targets or ctx.targets[0] is None else int(ctx.targets[0])]
        ctx.progress(0.1, "fitting the EBM to the model's predictions")
        ebm = self._fit(frame.iloc[train], y[train], model.is_classifier, params)
        pred = ebm.predict(frame.iloc[hold])
        if model.is_classifier:
            fidelity = float(np.mean(pred == y[hold]))
            train_fid = float(np.mean(ebm.predict(frame.iloc[train]) == y[train]))
        else:
            fidelity, train_fid = _r2(y[hold], pred), _r2(y[train], ebm.predict(frame.iloc[train]))
        target = None if ctx.targets is None else ctx.targets[0]
        checks = {"fidelity": fidelity, "fidelity_train": train_fid, "n_train": float(len(train)),
                  "n_holdout": float(len(hold))}
        return self._explanation(model, data, ebm, target, checks, frame)


def _r2(y, pred) -> float:
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    ss = np.sum((y - y.mean()) ** 2)
    return float(1 - np.sum((y - pred) ** 2) / ss) if ss > 0 else float(np.allclose(y, pred))


# ---- EBM -> curves ---------------------------------------------------------------------------------
def _class_selector(ebm, target, class_names=None):
    """(index into the last score axis or None, sign) for the explained class; StudioError naming the classes
    the EBM was fitted to when ``target`` is not one of them."""
    classes = getattr(ebm, "classes_", None)
    if classes is None or target is None:
        return None, 1.0
    classes = list(np.asarray(classes).tolist())
    if target not in classes:
        names = list(class_names or [])

        def name(c):
            if isinstance(c, int) and 0 <= c < len(names) and str(names[c]) != str(c):
                return f"{names[c]!r} ({c})"
            return str(c)

        raise StudioError(f"class {name(target)} does not occur in the labels the EBM was fitted to (the model's "
                          f"predictions on these rows: {', '.join(name(c) for c in classes)}); pick one of those "
                          "as the target")
    pos = classes.index(target)
    if len(classes) == 2:
        return None, 1.0 if pos == 1 else -1.0
    return pos, 1.0


def ebm_curves(ebm, target, frame, feature_names, class_names=None):
    """Every term of a fitted EBM as a curve for class ``target``.

    Returns
    -------
    curves : list of Curve
    intercept : float
    """
    col, sign = _class_selector(ebm, target, class_names)
    intercept = np.asarray(ebm.intercept_, dtype=np.float64).reshape(-1)
    intercept = float(sign * (intercept[col] if col is not None else intercept[0]))
    scale = "prediction" if getattr(ebm, "classes_", None) is None else "logit"
    curves = []
    for term, feats in enumerate(ebm.term_features_):
        scores = np.asarray(ebm.term_scores_[term], dtype=np.float64)
        if col is not None:
            scores = scores[..., col]
        scores = sign * scores
        grids, cuts, cats = [], [], []
        for f in feats:
            levels = ebm.bins_[f]
            bins = levels[min(len(feats), len(levels)) - 1]
            if isinstance(bins, dict):  # categorical: {category: bin index}
                names = sorted(bins, key=bins.get)
                grids.append(np.asarray([str(n) for n in names]))  # text: the cache refuses object arrays
                cuts.append({str(k): int(v) for k, v in bins.items()})
                cats.append(True)
            else:
                bins = np.asarray(bins, dtype=np.float64)
                lowest = float(np.nanmin(frame[feature_names[f]].to_numpy(dtype=np.float64)))
                grids.append(np.concatenate([[min(lowest, bins[0]) if len(bins) else lowest], bins]))
                cuts.append(bins)
                cats.append(False)
        # interpret's bins on each axis: 0 "missing", 1..len(grid) the grid's bins (numeric bins, or
        # categories numbered 1..K), then "unknown"; the curve is the grid's bins
        inner = scores[tuple(slice(1, 1 + len(g)) for g in grids)]
        names = tuple(feature_names[f] for f in feats)
        extra = {"scale": scale, "intercept": intercept, "term": ebm.term_names_[term],
                 "cuts": [c if isinstance(c, dict) else c.tolist() for c in cuts],
                 "categorical_features": cats}
        axes = [bool(frame[feature_names[f]].isna().any()) for f in feats]
        if any(axes):
            extra["missing_axes"] = axes
            extra["with_missing"] = scores[tuple(slice(0 if m else 1, 1 + len(g)) for g, m in zip(grids, axes))]
            if len(feats) == 1:
                extra["missing"] = float(scores[0])
        curves.append(Curve(
            feature=names[0] if len(names) == 1 else names, kind="ebm", grid=grids, average=inner,
            categorical=any(cats), extra=extra,
        ))
    return curves, intercept


def ebm_score(exp: Explanation, x) -> np.ndarray:
    """The EBM's score rebuilt from an explanation's curves: intercept + sum of terms.

    Parameters
    ----------
    exp : Explanation
        From ``ebm`` or ``ebm_surrogate``.
    x : ndarray of shape (n, n_features)
        Rows in the explanation's feature order.

    Returns
    -------
    ndarray of shape (n,)
    """
    x = np.asarray(x)
    names = list(exp.feature_names)
    total = np.zeros(len(x))
    intercept = 0.0
    for curve in exp.curves:
        intercept = curve.extra["intercept"]
        index, gone = [], []
        for name, cuts in zip(curve.features, curve.extra["cuts"]):
            col = x[:, names.index(name)]
            if isinstance(cuts, dict):
                miss = np.asarray([v is None or isinstance(v, float) and np.isnan(v) for v in col], dtype=bool)
                index.append(np.asarray([-1 if m else cuts[str(v)] - 1 for v, m in zip(col, miss)]))
            else:
                col = col.astype(np.float64)
                miss = np.isnan(col)
                index.append(np.searchsorted(np.asarray(cuts, dtype=np.float64), col, side="right"))
            gone.append(miss)
        if "with_missing" in curve.extra:  # index 0 on each axis in missing_axes is "missing"
            axes = curve.extra.get("missing_axes", [True] * len(index))
            index = [np.where(m, 0, i + 1) if ax else i for i, m, ax in zip(index, gone, axes)]
            total += np.asarray(curve.extra["with_missing"])[tuple(index)]
        else:
            total += np.asarray(curve.average)[tuple(index)]
    return intercept + total
