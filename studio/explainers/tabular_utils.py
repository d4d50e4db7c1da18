"""Shared helpers for the tabular explainers (issue 3).

Everything here is model-agnostic and works through the adapter
(``model.output``), so scikit-learn, torch and ONNX models take one path:

- :class:`Codec` turns a table with categorical (object) columns into a
  float matrix of category codes and back, for libraries that need numbers
  (lime, anchor-exp, shap's maskers);
- :func:`target_fn` is the explained output ``model.output(x)[:, target]``;
- :func:`sample_rows` draws a seeded row sample;
- :func:`feature_grid` is the one grid PDP, ICE and ALE share.
"""

from __future__ import annotations

import numpy as np

from studio.errors import StudioError


class Codec:
    """Label-encode a table's categorical columns, and decode them again.

    Parameters
    ----------
    data : studio.data.Dataset
        A tabular dataset (already aligned to the model).

    Attributes
    ----------
    categorical_idx : list of int
        Column indices of the categorical features.
    categories : dict of int to ndarray
        For each categorical column, its categories in code order
        (sorted as text).
    """

    def __init__(self, data):
        self.feature_names = list(data.feature_names)
        cat = set(data.categorical or [])
        self.categorical_idx = [i for i, n in enumerate(self.feature_names) if n in cat]
        self.categories = {}
        for i in self.categorical_idx:
            col = data.x[:, i]
            values = {str(v): v for v in col}
            self.categories[i] = np.asarray([values[k] for k in sorted(values)], dtype=object)
        self.object_input = data.x.dtype == object

    @property
    def is_identity(self) -> bool:
        return not self.categorical_idx and not self.object_input

    def encode(self, x) -> np.ndarray:
        """Codes for the categorical columns, floats elsewhere.

        Parameters
        ----------
        x : ndarray of shape (n, n_features), object or float

        Returns
        -------
        ndarray of shape (n, n_features), float64
        """
        x = np.asarray(x)
        if self.is_identity:
            return np.asarray(x, dtype=np.float64)
        out = np.empty(x.shape, dtype=np.float64)
        cat = set(self.categorical_idx)
        for j in range(x.shape[1]):
            if j in cat:
                lookup = {str(v): k for k, v in enumerate(self.categories[j])}
                try:
                    out[:, j] = [lookup[str(v)] for v in x[:, j]]
                except KeyError as exc:
                    raise StudioError(
                        f"value {exc.args[0]!r} of feature {self.feature_names[j]!r} was not seen in the data"
                    ) from None
            else:
                out[:, j] = x[:, j].astype(np.float64)
        return out

    def decode(self, z) -> np.ndarray:
        """Inverse of :meth:`encode` (codes are rounded and clipped).

        Parameters
        ----------
        z : ndarray of shape (n, n_features), float

        Returns
        -------
        ndarray of shape (n, n_features)
            float64 when the data has no categorical column, else object.
        """
        z = np.asarray(z, dtype=np.float64)
        if self.is_identity:
            return z
        out = z.astype(object)
        for j in self.categorical_idx:
            cats = self.categories[j]
            codes = np.clip(np.rint(z[:, j]).astype(int), 0, len(cats) - 1)
            out[:, j] = cats[codes]
        return out

    def categorical_names(self) -> dict:
        """``{column: [category as text, ...]}`` (lime / anchor-exp form)."""
        return {j: [str(v) for v in self.categories[j]] for j in self.categorical_idx}


def target_index(model, target) -> int:
    """The output column explained: the class index, the output of a multi-output regressor, else 0."""
    return 0 if target is None else int(target)


def target_fn(model, target, codec: Codec | None = None):
    """The explained output as a function of a numeric batch.

    Parameters
    ----------
    model : studio.models.Model
    target : int or None
        Class index (classifiers) or output index (multi-output
        regression); None: column 0.
    codec : Codec, optional
        When given, the function takes encoded rows and decodes them first.

    Returns
    -------
    callable
        ``f(x)`` with ``x`` of shape (n, n_features) -> ndarray of shape (n,).
    """
    col = target_index(model, target)

    def f(x):
        x = np.asarray(x)
        if x.ndim == 1:
            x = x[None, :]
        if codec is not None:
            x = codec.decode(x)
        return model.output(x)[:, col]

    return f


def output_scale(model) -> str:
    """``"probability"`` for classifiers, ``"prediction"`` for regression."""
    return "probability" if model.is_classifier else "prediction"


def sample_size(n: int, max_rows: int | None) -> int:
    """Rows of :func:`sample_rows`'s sample of ``n`` rows, without drawing it (for cost models)."""
    return min(n, max_rows) if max_rows else n


def sample_rows(n: int, max_rows: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded sample of at most ``max_rows`` of ``n`` rows (0: all)."""
    if sample_size(n, max_rows) == n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False))


def feature_index(data, name) -> int:
    """Column index of feature ``name`` (StudioError naming the features otherwise)."""
    names = list(data.feature_names)
    if name not in names:
        raise StudioError(
            f"feature {name!r} is not in the data; features are {', '.join(names[:10])}"
            f"{' ...' if len(names) > 10 else ''}"
        )
    return names.index(name)


def feature_grid(column, resolution: int, method: str = "quantile", categorical: bool = False) -> np.ndarray:
    """The grid of one feature, shared by PDP, ICE and ALE.

    Parameters
    ----------
    column : ndarray of shape (n,)
        The feature's values in the (sampled) data.
    resolution : int
        Wanted number of grid points (numeric features).
    method : {"quantile", "uniform"}
        ``"quantile"``: the unique empirical quantiles at
        ``linspace(0, 1, resolution)`` (inverted CDF, so every point is a data
        value; these are ALE's bin edges). ``"uniform"``: scikit-learn's
        default grid, ``resolution`` evenly spaced points between the 5th and
        95th percentiles (``sklearn.inspection.partial_dependence``).
    categorical : bool
        Categorical features: their categories, sorted as text.

    Returns
    -------
    ndarray of shape (n_grid,)
        Float for numeric features; object for categorical ones.
        Features with fewer unique values than ``resolution`` use those
        values (both methods, as scikit-learn does). Missing values (NaN)
        are left out: the grid spans the observed values only (the curve
        explainers add an explicit "missing" point, see
        :func:`missing_share`).

    Raises
    ------
    StudioError
        When the column holds no observed (non-missing) value.
    """
    column = np.asarray(column)
    if categorical:
        import pandas as pd

        values = {str(v): v for v in column[~pd.isna(column)]}
        if not values:
            raise StudioError("a feature has only missing values in the rows used; pick another feature or more rows")
        return np.asarray([values[k] for k in sorted(values)], dtype=object)
    column = column.astype(np.float64)
    column = column[~np.isnan(column)]
    if not len(column):
        raise StudioError("a feature has only missing values in the rows used; pick another feature or more rows")
    uniques = np.unique(column)
    if len(uniques) < resolution:
        return uniques
    if method == "uniform":
        from scipy.stats.mstats import mquantiles

        low, high = mquantiles(column, prob=(0.05, 0.95), axis=0)
        if np.isclose(low, high):
            raise StudioError("the 5th and 95th percentiles of a feature are equal; use the quantile grid")
        return np.linspace(low, high, resolution)
    return np.unique(np.quantile(column, np.linspace(0.0, 1.0, resolution), method="inverted_cdf"))


def missing_share(column) -> float:
    """Share of missing (NaN / None) values in one column, in [0, 1]."""
    column = np.asarray(column)
    if column.dtype == object:
        import pandas as pd

        return float(pd.isna(column).mean()) if len(column) else 0.0
    if column.dtype.kind not in "fc":
        return 0.0
    return float(np.isnan(column).mean()) if len(column) else 0.0


def missing_column(x, names):
    """The name of the first column of ``x`` (n, F) holding a missing value, or None when none does."""
    x = np.asarray(x)
    for j, name in enumerate(names):
        if missing_share(x[:, j]) > 0:
            return name
    return None


def check_features(data, features, n: int, default_count: int = 3) -> list:
    """Resolve the ``features`` parameter into a list of feature specs.

    Parameters
    ----------
    features : list of str
        Names; ``"a:b"`` (or ``"a*b"``) names a two-feature pair. Empty: the
        first ``default_count`` features.
    n : int
        1 or 2 when only one-feature or only pairs are allowed; 0 for both.

    Returns
    -------
    list of tuple of int
        Column indices, one tuple per requested curve.
    """
    if not features:
        return [(j,) for j in range(min(default_count, len(data.feature_names)))]
    out = []
    for spec in features:
        parts = [p.strip() for p in spec.replace("*", ":").split(":") if p.strip()]
        if len(parts) not in (1, 2) or (n and len(parts) != n):
            raise StudioError(f"feature {spec!r}: give one feature name or two joined by ':' (e.g. 'a:b')")
        idx = tuple(feature_index(data, p) for p in parts)
        if len(idx) == 2 and idx[0] == idx[1]:
            raise StudioError(f"feature pair {spec!r} names the same feature twice")
        out.append(idx)
    return out
