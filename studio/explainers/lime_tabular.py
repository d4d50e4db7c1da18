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
``local_gap`` = max over rows of |surrogate prediction at the row - f(x)|; for regression also
``local_gap_relative`` = ``local_gap`` / std of the model's outputs on the sampled data rows (the verdict).

Missing values (NaN in a numeric column, for models that accept them): lime
computes its feature statistics with NaN-unaware numpy calls (scipy then
fails with "Domain error in arguments"), so such a column is handed to lime
as a categorical one whose categories are its quartile bins (lime's
``QuartileDiscretizer`` edges, from the observed values) plus "missing"
(:class:`MissingBins`). lime samples those categories at their observed
frequencies, so missing values are drawn at their observed rate; a drawn bin
becomes a value drawn uniformly from the data values in that bin, a drawn
"missing" becomes NaN. The feature's weight is that of "this row's bin" or,
for a row with the value missing, of "value missing". ``checks["missing_rate"]``
is the largest share of missing values among those columns. With
``discretize=False`` lime samples from a normal around the column's mean,
which has no missing values: the run is refused naming the column.
"""

from __future__ import annotations

import numpy as np

from studio.errors import StudioError
from studio.explainers.base import Cost, Explainer, output_calls
from studio.explainers.params import Param, ParamSpec
from studio.explainers.tabular_utils import Codec, sample_rows, sample_size, target_index
from studio.explanation import Explanation


class MissingBins:
    """Numeric columns with missing values as lime categories: quartile bins plus "missing".

    Parameters
    ----------
    train : ndarray of shape (n, n_features), float
        Encoded data rows lime takes its statistics from.
    columns : list of int
        The numeric columns that hold NaN.

    Attributes
    ----------
    edges : dict of int to ndarray
        Quartile edges of each column's observed values (lime's
        ``QuartileDiscretizer``); a value's bin is ``searchsorted(edges, v)``.
    pools : dict of int to list of ndarray
        Observed training values per bin (a drawn bin picks one uniformly).
    """

    def __init__(self, train, columns):
        self.columns = list(columns)
        self.edges, self.pools = {}, {}
        for j in self.columns:
            col = train[:, j]
            seen = col[~np.isnan(col)]
            edges = np.unique(np.percentile(seen, [25, 50, 75]))
            self.edges[j] = edges
            codes = np.searchsorted(edges, seen)
            self.pools[j] = [seen[codes == b] for b in range(len(edges) + 1)]

    def missing_code(self, j) -> int:
        return len(self.edges[j]) + 1

    def encode(self, x) -> np.ndarray:
        """``x`` with each such column replaced by its bin code (missing: the last code), shape as ``x``."""
        out = np.array(x, dtype=np.float64)
        for j in self.columns:
            col = out[:, j]
            gone = np.isnan(col)
            code = np.searchsorted(self.edges[j], np.where(gone, 0.0, col)).astype(np.float64)
            out[:, j] = np.where(gone, self.missing_code(j), code)
        return out

    def decode(self, z, rng) -> np.ndarray:
        """Codes back to values: a uniform draw from the bin's data values, or NaN for "missing"."""
        out = np.array(z, dtype=np.float64)
        for j in self.columns:
            codes = np.rint(out[:, j]).astype(int)
            values = np.full(len(out), np.nan)
            for b, pool in enumerate(self.pools[j]):
                at = codes == b
                if at.any() and len(pool):
                    values[at] = pool[rng.integers(0, len(pool), int(at.sum()))]
            out[:, j] = values
        return out

    def names(self, feature_names) -> dict:
        """``{column: [bin names..., "missing"]}`` for lime's display."""
        out = {}
        for j in self.columns:
            e = [f"{v:.4g}" for v in self.edges[j]]
            name = feature_names[j]
            bins = [f"{name} <= {e[0]}"] + [f"{a} < {name} <= {b}" for a, b in zip(e[:-1], e[1:])] + [f"{name} > {e[-1]}"]
            out[j] = bins + [f"{name} missing"]
        return out


def _missing_columns(data, codec) -> list:
    """Numeric (not categorical) columns of ``data`` with at least one NaN."""
    x = codec.encode(data.x)
    cat = set(codec.categorical_idx)
    return [j for j in range(x.shape[1]) if j not in cat and np.isnan(x[:, j]).any()]


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
            Param("num_samples", "int", 2000, "Perturbed samples per row.", low=20, high=200000, fit_low=500,
                  fit_why="the local linear model fitted on fewer samples has mostly noise for weights"),
            Param("discretize", "bool", True, "Quartile indicators for numeric features (lime's default)."),
            Param("kernel_width", "float", 0.0, "Proximity kernel width; 0: lime's default 0.75 x sqrt(features).",
                  low=0.0),
            Param("max_rows", "int", 2000, "Data rows lime takes its feature statistics from (0: all).", low=0,
                  fit_low=200, fit_why="quartiles from fewer rows move with the sample"),
            Param("seed", "int", 0, "Random seed.", low=0),
        )
    )

    def cost(self, model, data, params, n_rows):
        """f(x) on the rows (one call), then one call of ``num_samples`` perturbed rows per row; own work: lime's
        sampling, distances and weighted ridge fit, per sample and feature."""
        ns = params.get("num_samples", 2000)
        cost = Cost(calls=output_calls(model, data, n_rows) + output_calls(model, data, ns, n_rows),
                    rows=n_rows * (1 + ns), own=n_rows * ns * data.n_features, own_unit="samples x features")
        if not model.is_classifier and n_rows:  # the spread behind local_gap_relative: f on the sampled rows
            m = sample_size(len(data), params["max_rows"])
            cost = cost + Cost(calls=output_calls(model, data, m), rows=m)
        return cost

    def probe_params(self, params, data, k):
        return dict(params, num_samples=min(params.get("num_samples", 2000), 500)), k + 1

    def lime_explainer(self, model, data, params, codec: Codec, missing: MissingBins | None = None, train=None):
        """The configured ``LimeTabularExplainer`` (public, for tests and comparisons).

        ``missing``: the :class:`MissingBins` of the columns with NaN (their codes are lime categories).
        ``train``: the encoded seeded sample of ``data``'s rows lime takes its statistics from, when the caller
        has drawn it already.
        """
        from lime.lime_tabular import LimeTabularExplainer

        if train is None:
            train = codec.encode(data.x[sample_rows(len(data), params["max_rows"], params["seed"])])
        categorical, names = list(codec.categorical_idx), codec.categorical_names()
        if missing is not None and missing.columns:
            train = missing.encode(train)
            categorical = sorted(categorical + missing.columns)
            names.update(missing.names(list(data.feature_names)))
        return LimeTabularExplainer(
            train, mode="classification" if model.is_classifier else "regression",
            feature_names=list(data.feature_names), categorical_features=categorical,
            categorical_names=names, discretize_continuous=params["discretize"],
            kernel_width=params["kernel_width"] or None, random_state=params["seed"],
        )

    def explain(self, model, data, params, ctx):
        codec = Codec(data)
        gaps = _missing_columns(data, codec)
        if gaps and not params["discretize"]:
            raise StudioError(
                f"column {data.feature_names[gaps[0]]!r} has missing values, which lime samples only with "
                "discretize=True (a 'missing' bin drawn at its observed rate); set discretize to true"
            )
        sample = data.x[sample_rows(len(data), params["max_rows"], params["seed"])]
        train = codec.encode(sample)
        missing = MissingBins(train, gaps) if gaps else None
        explainer = self.lime_explainer(model, data, params, codec, missing, train)
        n_feat = data.n_features
        x = data.x[ctx.rows]
        fx = model.output(x)
        targets = ctx.targets or [None] * len(ctx.rows)
        values = np.zeros((len(x), n_feat))
        base = np.zeros(len(x))
        scores, local_gap = [], []
        encoded = codec.encode(x)
        if missing is not None:
            lime_rows = missing.encode(encoded)
        else:
            lime_rows = encoded
        for i, t in enumerate(targets):
            ctx.progress(i / len(x), f"lime row {i + 1}/{len(x)}")
            rng = np.random.default_rng([params["seed"], i])

            def predict(z, i=i, rng=rng, t=t):
                z = np.asarray(z, dtype=np.float64)
                if missing is not None:
                    is_row = np.array_equal(z[0], lime_rows[i])  # lime's first sample is the row itself
                    z = missing.decode(z, rng)
                    if is_row:
                        z[0] = encoded[i]
                out = model.output(codec.decode(z))
                return out if model.is_classifier else out[:, target_index(model, t)]

            label = target_index(model, t) if model.is_classifier else 1  # lime keeps regression weights under 1
            exp = explainer.explain_instance(lime_rows[i], predict, labels=(label,), num_features=n_feat,
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
        if not model.is_classifier:
            # a regression target's units are arbitrary: judge the gap against the spread of the model's outputs
            spread = np.std(model.output(sample), axis=0)
            spread = np.atleast_1d(spread)[[target_index(model, t) for t in targets]]
            checks["local_gap_relative"] = float(np.max(np.asarray(local_gap) / np.where(spread > 0, spread, 1.0)))
        if gaps:
            checks["missing_rate"] = float(max(np.isnan(train[:, j]).mean() for j in gaps))
        return Explanation(
            method=self.name, kind="attribution", feature_names=list(data.feature_names),
            output_names=model.output_names, values=values, base_values=base,
            data=None if data.categorical else np.asarray(x, dtype=np.float64), checks=checks,
        )
