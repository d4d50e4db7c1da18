"""Permutation importance (scikit-learn's), for any model and task."""

from __future__ import annotations

import numpy as np

from studio.errors import StudioError
from studio.explainers.base import Cost, Explainer, output_calls
from studio.explainers.params import Param, ParamSpec
from studio.explainers.tabular_utils import sample_size
from studio.explanation import Explanation, Importance

CLASSIFICATION_SCORERS = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc_ovr", "neg_log_loss")
REGRESSION_SCORERS = ("r2", "neg_mean_absolute_error", "neg_mean_squared_error")


class _Estimator:
    """Duck-typed scikit-learn estimator over the adapter (for ``permutation_importance``)."""

    _estimator_type = "classifier"

    def __init__(self, model, classes, on_call=None, column: int = 0):
        self.model = model
        self.column = column  # regression: the output scored (a multi-output regressor's target)
        self.classes_ = classes
        self._estimator_type = "classifier" if model.is_classifier else "regressor"
        self.on_call = on_call  # called before every model evaluation (progress, cancel, timeout)

    def _tick(self):
        if self.on_call is not None:
            self.on_call()

    def fit(self, x, y):  # pragma: no cover - required by the scorer protocol only
        return self

    def predict(self, x):
        self._tick()
        if self.model.is_classifier:
            return self.classes_[self.model.predict(np.asarray(x))]
        return self.model.output(np.asarray(x))[:, self.column]

    def predict_proba(self, x):
        self._tick()
        return self.model.predict_proba(np.asarray(x))

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, RegressorTags, Tags, TargetTags

        if self.model.is_classifier:
            return Tags(estimator_type="classifier", target_tags=TargetTags(required=True), classifier_tags=ClassifierTags())
        return Tags(estimator_type="regressor", target_tags=TargetTags(required=True), regressor_tags=RegressorTags())


class PermutationImportance(Explainer):
    """Drop in score when one feature's values are shuffled (Breiman 2001)."""

    name = "permutation_importance"
    data_kind = "tabular"
    scope = "global"
    kind = "importance"
    libraries = ("scikit-learn",)
    summary = "How much the model's score drops when a feature is shuffled (global)."
    params = ParamSpec(
        (
            Param("n_repeats", "int", 5, "Shuffles per feature; more gives a tighter spread.", low=1, high=100,
                  fit_low=2, fit_why="the spread of the importances needs two shuffles at least"),
            Param("scoring", "str", "auto", "Score to drop: auto picks accuracy (classifiers) or r2 (regression).",
                  choices=("auto",) + CLASSIFICATION_SCORERS + REGRESSION_SCORERS),
            Param("max_rows", "int", 5000, "Rows sampled from the data (0: all).", low=0, fit_low=200,
                  fit_why="on fewer rows one row moves the score by over half a point, as much as most features' "
                          "importance"),
            Param("seed", "int", 0, "Random seed.", low=0),
        )
    )

    def is_compatible(self, model, data):
        ok, reason = super().is_compatible(model, data)
        if not ok:
            return ok, reason
        if data is not None and data.y is None:
            return False, "needs labels; the dataset has no label column"
        return True, ""

    def cost(self, model, data, params, n_rows):
        """One scoring call on the sampled rows, one per feature and repeat (scikit-learn's
        ``permutation_importance``), and the baseline score for the checks; own work: a shuffled copy of the rows
        per call and scikit-learn's scoring around it (per call: the calibration is per model and data shape)."""
        n = sample_size(len(data), params.get("max_rows"))
        k = 2 + data.n_features * params.get("n_repeats", 5)
        return Cost(calls=output_calls(model, data, n, k), rows=k * n, own=k * (1 + n / 1000), own_unit="calls")

    def probe_params(self, params, data, k):
        return dict(params, n_repeats=k + 1, max_rows=min(len(data), params.get("max_rows") or len(data), 300)), 0

    def explain(self, model, data, params, ctx):
        from sklearn.inspection import permutation_importance

        scoring = params["scoring"]
        if scoring == "auto":
            scoring = "accuracy" if model.is_classifier else "r2"
        if model.is_classifier and scoring in REGRESSION_SCORERS or not model.is_classifier and scoring in CLASSIFICATION_SCORERS:
            task = model.task
            raise StudioError(f"scoring {scoring!r} does not suit a {task} model; choose one of "
                              f"{', '.join(CLASSIFICATION_SCORERS if model.is_classifier else REGRESSION_SCORERS)}")
        rng = np.random.default_rng(params["seed"])
        rows = np.arange(len(data))
        if params["max_rows"] and len(data) > params["max_rows"]:
            rows = np.sort(rng.choice(len(data), params["max_rows"], replace=False))
        x, y = data.x[rows], data.y[rows]
        classes = None
        if model.is_classifier and len(np.unique(np.asarray(y).astype(str))) < 2:
            raise StudioError(
                f"the label column holds only one class ({str(np.asarray(y)[0])!r}) in the rows used; permutation importance "
                "scores the model against the labels, so it needs at least two classes: load data with both"
            )
        if model.is_classifier:
            classes = _label_space(model, y)
        # one baseline call, then one call per feature and repeat
        expected = 1 + data.n_features * params["n_repeats"]
        calls = [0]

        def on_call():
            calls[0] += 1
            ctx.progress(min(calls[0] / expected, 1.0), f"permuting features ({calls[0]}/{expected} evaluations)")

        column = 0 if model.is_classifier or not ctx.targets or ctx.targets[0] is None else int(ctx.targets[0])
        estimator = _Estimator(model, classes, on_call, column)
        ctx.progress(0.0, "permuting features")
        result = permutation_importance(
            estimator, x, y, scoring=scoring, n_repeats=params["n_repeats"], random_state=params["seed"], n_jobs=1,
        )
        ctx.progress(1.0, "done")
        importances = [
            Importance(feature=f, mean=float(m), std=float(s))
            for f, m, s in zip(data.feature_names, result.importances_mean, result.importances_std)
        ]
        return Explanation(
            method=self.name, kind="importance", feature_names=list(data.feature_names),
            output_names=model.output_names, importances=importances,
            checks={"baseline_score": float(_baseline(estimator, x, y, scoring)), "n_rows": int(len(rows))},
        )


def _label_space(model, y):
    """The dataset label of each model class index, shape (n_classes,).

    Labels match the model's class names as text (``"0"`` ~ ``0``), or are
    the class indices themselves.
    """
    y = np.asarray(y)
    names = model.class_names or []
    present = set(np.unique(y.astype(str)))
    if names and present <= set(names):
        by_text = {str(v): v for v in np.unique(y)}
        return np.asarray([by_text.get(n, n) for n in names], dtype=y.dtype if y.dtype != object else object)
    if y.dtype.kind in "iu" and names and y.min() >= 0 and y.max() < len(names):
        return np.arange(len(names))
    raise StudioError(
        f"the labels in the data ({', '.join(sorted(present)[:6])}) do not match the model's classes "
        f"({', '.join(names[:6])}); fix the card's class_names or the label column"
    )


def _baseline(estimator, x, y, scoring):
    from sklearn.metrics import check_scoring

    return check_scoring(estimator, scoring=scoring)(estimator, x, y)
