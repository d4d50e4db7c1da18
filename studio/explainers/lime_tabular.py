"""LIME for tables (Ribeiro et al. 2016): lime's ``LimeTabularExplainer`` over the adapter.

Categorical columns are label-encoded (:class:`~studio.explainers.tabular_utils.Codec`)
and passed to lime as ``categorical_features`` with their category names, so
lime samples them as categories; the model always sees the decoded values.
With ``discretize=True`` (lime's default) numeric features are quartile
indicators, and a feature's value is the weight of "this row's bin" (for a
categorical feature: "this row's category").

``values[i, j]`` is lime's weight for feature ``j`` on the explained class
(or the prediction for regression), in dataset feature order, positive =
pushes that output up, as SHAP. ``base_values`` is the surrogate's
intercept. ``checks``: ``score`` (the smallest R^2 of the weighted local
surrogate over the rows; lime's ``score``), ``score_mean``, and
``local_gap`` = max over rows of |surrogate prediction at the row - f(x)|.
"""

from __future__ import annotations

import numpy as np

from studio.explainers.base import Explainer
from studio.explainers.params import Param, ParamSpec
from studio.explainers.tabular_utils import Codec, sample_rows, target_index
from studio.explanation import Explanation


class TabularLime(Explainer):
    """Weights of a locally weighted linear surrogate around each row (local)."""

    name = "lime"
    data_kind = "tabular"
    scope = "local"
    kind = "attribution"
    libraries = ("lime",)
    summary = "LIME: a weighted linear model fitted to perturbations around the row (local)."
    params = ParamSpec(
        (
            Param("num_samples", "int", 2000, "Perturbed samples per row.", low=20, high=200000),
            Param("discretize", "bool", True, "Quartile indicators for numeric features (lime's default)."),
            Param("kernel_width", "float", 0.0, "Proximity kernel width; 0: lime's default 0.75 x sqrt(features).",
                  low=0.0),
            Param("max_rows", "int", 2000, "Data rows lime takes its feature statistics from (0: all).", low=0),
            Param("seed", "int", 0, "Random seed.", low=0),
        )
    )

    def estimate_evaluations(self, model, data, params, n_rows):
        return n_rows * params.get("num_samples", 2000)

    def lime_explainer(self, model, data, params, codec: Codec):
        """The configured ``LimeTabularExplainer`` (public, for tests and comparisons)."""
        from lime.lime_tabular import LimeTabularExplainer

        train = codec.encode(data.x[sample_rows(len(data), params["max_rows"], params["seed"])])
        return LimeTabularExplainer(
            train, mode="classification" if model.is_classifier else "regression",
            feature_names=list(data.feature_names), categorical_features=codec.categorical_idx,
            categorical_names=codec.categorical_names(), discretize_continuous=params["discretize"],
            kernel_width=params["kernel_width"] or None, random_state=params["seed"],
        )

    def explain(self, model, data, params, ctx):
        codec = Codec(data)
        explainer = self.lime_explainer(model, data, params, codec)
        n_feat = data.n_features

        def predict(z):
            out = model.output(codec.decode(z))
            return out if model.is_classifier else out[:, 0]

        x = data.x[ctx.rows]
        fx = model.output(x)
        targets = ctx.targets or [None] * len(ctx.rows)
        values = np.zeros((len(x), n_feat))
        base = np.zeros(len(x))
        scores, local_gap = [], []
        encoded = codec.encode(x)
        for i, t in enumerate(targets):
            ctx.progress(i / len(x), f"lime row {i + 1}/{len(x)}")
            label = target_index(model, t) if model.is_classifier else 1  # lime keeps regression weights under 1
            exp = explainer.explain_instance(encoded[i], predict, labels=(label,), num_features=n_feat,
                                             num_samples=params["num_samples"])
            for j, w in exp.local_exp[label]:
                values[i, j] = w
            base[i] = float(exp.intercept[label])
            scores.append(float(exp.score))
            local = float(np.ravel(exp.local_pred)[0])
            local_gap.append(abs(local - fx[i, target_index(model, t)]))
        ctx.progress(1.0, "done")
        checks = {"score": float(np.min(scores)), "score_mean": float(np.mean(scores)),
                  "local_gap": float(np.max(local_gap))}
        return Explanation(
            method=self.name, kind="attribution", feature_names=list(data.feature_names),
            output_names=model.output_names, values=values, base_values=base,
            data=None if data.categorical else np.asarray(x, dtype=np.float64), checks=checks,
        )
