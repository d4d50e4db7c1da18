"""Feature-effect curves: partial dependence, ICE and accumulated local effects.

One batched implementation serves every model (scikit-learn, torch, ONNX):
for each feature the perturbed copies of the sampled rows are stacked and
sent to ``model.output`` in one call (the adapter splits it into device
batches), never one call per grid point per row.

- PDP/ICE (Friedman 2001; Goldstein et al. 2015) equal
  ``sklearn.inspection.partial_dependence(method="brute")`` on the same grid.
- ALE (Apley & Zhu 2020) follows the reference ``ALEPlot`` algorithm: first
  order on quantile bins, second order on the product of two features'
  quantile bins (empty cells take their nearest non-empty neighbour's
  effect, lower-order effects removed), and categorical features with the
  categories ordered by the similarity of the other features' distributions
  (the paper's rule: one-dimensional classical scaling of summed
  Kolmogorov-Smirnov / total-variation distances).

All three use :func:`studio.explainers.tabular_utils.feature_grid`, so with
the default ``grid="quantile"`` the PDP grid of a feature is exactly its ALE
bin edges and the curves sit on one chart.

Grid rule (one for all three): a numeric feature's grid (PDP, ICE) and its
ALE bin edges (ALE's plotted range) are computed from the feature's observed
values in EVERY row of the data, never from the rows sampled (``max_rows``)
or drawn (ICE's ``rows``), so PDP, ICE and ALE of one feature span the same
range whatever their row counts. Categorical features' ALE orders the
categories seen in its sampled rows.

ICE draws one curve per row: the dataset rows asked (``rows`` of
:func:`studio.explain`, CLI ``--rows``), else a seeded sample of ``max_rows``.

Missing values. Grids span the OBSERVED values of a feature (NaN is never a
grid point). When the data has missing values in a numeric feature (the
model accepts them: the dataset check refuses models that fail on them),
the one-feature curve gains an explicit "missing" point, the model's output
with the feature set to NaN, in ``Curve.extra``:

- PDP / ICE: ``extra["missing"]`` (float) is the average output over the
  sampled rows with the feature missing; ICE also has
  ``extra["missing_individual"]`` (ndarray of shape (n_rows,)), each row's
  output with the feature missing (their mean is ``extra["missing"]``).
- ALE: rows with the feature missing take no part in the local effects; the
  centred curve is built from the observed rows, and ``extra["missing"]`` is
  the effect on the same centred scale of making a row's value missing:
  the mean over observed rows of ``ALE(x_j) + f(x with x_j = NaN) - f(x)``
  (``ALE(x_j)`` interpolated between the bin edges). ``extra["n_missing"]``
  counts the rows with the feature missing.

Categorical features get the same "missing" point (their grid holds the
observed categories only; categorical ALE's point is the mean over observed
rows of ``ALE(c_i) + f(x with x_j missing) - f(x)``, as for numeric ones).

Two-feature curves (PDP and ALE surfaces) are built from grids of observed
values; when either feature has missing values the curve also has
``extra["missing_axes"]`` (two bools: which feature has a "missing" entry)
and ``extra["with_missing"]``, the surface with a "missing" row / column in
front (index 0) on each such axis:

- PDP: the average output with the feature set to NaN at each grid value of
  the other (equals ``sklearn.inspection.partial_dependence`` with NaN in
  ``custom_values``), the corner with both missing;
- ALE: :func:`ale_missing_line`, the pure interaction of "missing" with the
  other feature from the rows where it is missing; the corner is 0.

``studio.charts.curves`` draws the missing point as a separate point
labelled "missing", and the missing row / column of a surface as a cell row
labelled "missing".
"""

from __future__ import annotations

import numpy as np

from studio.errors import StudioError
from studio.explainers.base import Cost, Explainer, output_calls
from studio.explainers.params import Param, ParamSpec
from studio.explainers.tabular_utils import (
    check_features,
    feature_grid,
    missing_share,
    output_scale,
    sample_rows,
    target_fn,
)
from studio.explanation import Curve, Explanation

# Cap on the cells (rows x features) of one stacked perturbation block.
_BLOCK_CELLS = 4_000_000


def _common_params(resolution_help: str):
    return (
        Param("features", "list", [], "Features to plot; 'a:b' for a two-feature pair. Empty: the first three."),
        Param("grid_resolution", "int", 20, resolution_help, low=2, high=200),
        Param("grid", "str", "quantile",
              "Grid points, from every row of the data: its quantiles (PDP, ICE and ALE share them) or "
              "scikit-learn's even grid over the 5-95th percentiles.",
              choices=("quantile", "uniform")),
        Param("max_rows", "int", 500, "Rows sampled from the data (0: all).", low=0, fit_low=100,
              fit_why="an average curve over fewer rows follows a few of them"),
        Param("seed", "int", 0, "Random seed for the row sample.", low=0),
    )


class _CurveExplainer(Explainer):
    """Shared plumbing of the curve explainers."""

    version = "2"  # two-feature surfaces with a "missing" row / column (issue 13)
    data_kind = "tabular"
    scope = "global"
    kind = "curve"
    pairs = 0  # 0: one features and pairs; 1: one feature only
    takes_rows = False  # True: rows given to studio.explain are the rows drawn (ICE), else a sample of max_rows

    def _setup(self, model, data, params, ctx):
        specs = check_features(data, params["features"], self.pairs)
        rows = ctx.rows if ctx.rows and self.takes_rows else sample_rows(len(data), params["max_rows"], params["seed"])
        x = data.x[rows]
        target = None if ctx.targets is None else ctx.targets[0]
        cat = set(data.categorical or [])
        is_cat = [n in cat for n in data.feature_names]
        return specs, x, target_fn(model, target), is_cat

    def _plan(self, data, params):
        """What a run evaluates, without the model: ``(specs, x, is_cat)`` for the cost model."""
        specs = check_features(data, params.get("features") or [], self.pairs)
        x = data.x[sample_rows(len(data), params.get("max_rows", 500), params.get("seed", 0))]
        cat = set(data.categorical or [])
        return specs, x, [n in cat for n in data.feature_names]

    def probe_params(self, params, data, k):
        return dict(params, max_rows=min(len(data), 100 * (k + 1))), 0

    def _grid(self, data, j, params, is_cat):
        """Feature ``j``'s grid over every row of ``data`` (the module's grid rule)."""
        return feature_grid(data.x[:, j], params["grid_resolution"], params["grid"], categorical=is_cat[j])

    def _result(self, model, data, curves, n_rows):
        return Explanation(
            method=self.name, kind="curve", feature_names=list(data.feature_names),
            output_names=model.output_names, curves=curves, checks={"n_rows": float(n_rows)},
        )


def _storable(grid) -> np.ndarray:
    """Category grids as text (the cache refuses object arrays); numeric grids unchanged."""
    grid = np.asarray(grid)
    return np.asarray([str(v) for v in grid]) if grid.dtype == object else grid


def stacked_outputs(f, x, columns, values) -> np.ndarray:
    """The model on every row with ``columns`` set to each value tuple.

    Parameters
    ----------
    f : callable
        Explained output, ``(m, n_features) -> (m,)``.
    x : ndarray of shape (n, n_features)
    columns : tuple of int
    values : ndarray of shape (n_points, len(columns))

    Returns
    -------
    ndarray of shape (n_points, n)
        ``out[k, i] = f(x[i] with x[i, columns] = values[k])``.
    """
    n, n_feat = x.shape
    n_points = len(values)
    per_block = max(1, _BLOCK_CELLS // max(1, n * n_feat))
    out = np.empty((n_points, n))
    buffer = np.empty((min(per_block, n_points), n, n_feat), dtype=x.dtype)  # reused for every chunk
    for start in range(0, n_points, per_block):
        chunk = values[start : start + per_block]
        block = buffer[: len(chunk)]  # (k, n, F)
        block[:] = x[None]
        for c, col in enumerate(columns):
            block[:, :, col] = np.asarray(chunk[:, c], dtype=x.dtype)[:, None]
        out[start : start + len(chunk)] = f(block.reshape(-1, n_feat)).reshape(len(chunk), n)
    return out


def _with_missing_value(grid) -> np.ndarray:
    """``grid`` with a missing value (NaN, or None for categories) in front: the "missing" entry of a surface."""
    grid = np.asarray(grid)
    if grid.dtype == object:
        return np.concatenate([np.asarray([np.nan], dtype=object), grid])
    return np.concatenate([[np.nan], grid.astype(float)])


def _value_table(*grids) -> np.ndarray:
    """All combinations of the grids, first grid slowest: shape (prod(len), len(grids))."""
    mesh = np.meshgrid(*grids, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def partial_dependence(f, x, columns, grids, individual: bool = False):
    """Brute-force partial dependence (and ICE) of ``f``.

    Parameters
    ----------
    f : callable
    x : ndarray of shape (n, n_features)
    columns : tuple of int (one or two)
    grids : list of ndarray, one per column
    individual : bool
        Also return the ICE curves.

    Returns
    -------
    average : ndarray of shape (n_grid,) or (n_grid_0, n_grid_1)
    ice : ndarray of shape (n, n_grid) or (n, n_grid_0, n_grid_1), or None
    """
    values = _value_table(*[np.asarray(g, dtype=object if np.asarray(g).dtype == object else float) for g in grids])
    out = stacked_outputs(f, x, columns, values)  # (n_points, n)
    shape = tuple(len(g) for g in grids)
    average = out.mean(axis=1).reshape(shape)
    ice = out.T.reshape((x.shape[0],) + shape) if individual else None
    return average, ice


class PartialDependence(_CurveExplainer):
    """Partial dependence (one feature or a pair), averaged over sampled rows."""

    name = "pdp"
    summary = "Average model output as one or two features sweep a grid (global)."
    params = ParamSpec(_common_params("Grid points per feature."))

    def cost(self, model, data, params, n_rows):
        """Per feature (or pair): every sampled row at every grid point, stacked in blocks of at most
        ``_BLOCK_CELLS`` cells, each block one ``model.output`` call; one more pass at NaN for a feature with
        missing values. Own work: filling the blocks (rows x features)."""
        specs, x, is_cat = self._plan(data, params)
        n, n_feat = x.shape
        n = n_rows if self.takes_rows and n_rows else n  # ICE draws the rows asked
        per_block = max(1, _BLOCK_CELLS // max(1, n * n_feat))
        total = Cost(own_unit="rows x features")
        for cols in specs:
            extra_point = [len(cols) == 2 and missing_share(data.x[:, j]) > 0 for j in cols]  # a "missing" entry
            points = int(np.prod([len(self._grid(data, j, params, is_cat)) + m for j, m in zip(cols, extra_point)]))
            for start in range(0, points, per_block):
                m = min(per_block, points - start) * n
                total = total + Cost(calls=output_calls(model, data, m), rows=m, own=m * n_feat)
            if len(cols) == 1 and not is_cat[cols[0]] and missing_share(data.x[:, cols[0]]) > 0:
                total = total + Cost(calls=output_calls(model, data, n), rows=n, own=n * n_feat)
        return total

    def explain(self, model, data, params, ctx):
        specs, x, f, is_cat = self._setup(model, data, params, ctx)
        curves = []
        for k, cols in enumerate(specs):
            ctx.progress(k / len(specs), f"partial dependence {k + 1}/{len(specs)}")
            grids = [self._grid(data, j, params, is_cat) for j in cols]
            names = tuple(data.feature_names[j] for j in cols)
            extra = {"scale": output_scale(model), "categorical_features": [is_cat[j] for j in cols]}
            if len(cols) == 2:
                axes = [missing_share(data.x[:, j]) > 0 for j in cols]
                if any(axes):  # one pass over the grids with NaN first on each axis that has a missing entry
                    wide = [_with_missing_value(g) if m else g for g, m in zip(grids, axes)]
                    surface, _ = partial_dependence(f, x, cols, wide)  # (n0 + m0, n1 + m1)
                    if np.all(np.isfinite(surface)):
                        extra["missing_axes"] = axes
                        extra["with_missing"] = surface
                        curves.append(Curve(feature=names, kind=self.name, grid=[_storable(g) for g in grids],
                                            average=surface[int(axes[0]):, int(axes[1]):],
                                            categorical=any(is_cat[j] for j in cols), extra=extra))
                        continue
            average, ice = partial_dependence(f, x, cols, grids, individual=self.name == "ice")
            if len(cols) == 1 and missing_share(data.x[:, cols[0]]) > 0:  # numeric or categorical
                at_missing = stacked_outputs(f, x, cols, np.asarray([[np.nan]]))[0]  # (n,)
                if np.all(np.isfinite(at_missing)):
                    extra["missing"] = float(at_missing.mean())
                    if self.name == "ice":
                        extra["missing_individual"] = at_missing
            curves.append(Curve(
                feature=names[0] if len(names) == 1 else names, kind=self.name, grid=[_storable(g) for g in grids],
                average=average,
                individual=ice, categorical=any(is_cat[j] for j in cols),
                extra=extra,
            ))
        ctx.progress(1.0, "done")
        return self._result(model, data, curves, len(x))


class IndividualConditionalExpectation(PartialDependence):
    """ICE: one curve per sampled row (one feature), with their average (the PDP)."""

    name = "ice"
    pairs = 1
    takes_rows = True
    summary = "Model output of each sampled row as one feature sweeps a grid (global)."
    params = ParamSpec(_common_params("Grid points per feature.")[:3]
                       + (Param("max_rows", "int", 100, "Rows sampled from the data when no rows are given, one curve "
                                "each (0: all).", low=0, fit_low=20, fit_why="fewer curves do not show how rows differ"),
                          Param("seed", "int", 0, "Random seed for the row sample.", low=0)))


# ---- ALE --------------------------------------------------------------------------------------------
def _bin_index(column, edges) -> np.ndarray:
    """Bin of each value: k for edges[k] < v <= edges[k+1]; the lowest edge goes to bin 0."""
    return np.clip(np.searchsorted(edges, column, side="left") - 1, 0, len(edges) - 2)


def ale_1d(f, x, j, edges):
    """First-order ALE of numeric feature ``j`` at the bin ``edges`` (ALEPlot's algorithm).

    Parameters
    ----------
    f : callable
    x : ndarray of shape (n, n_features)
    j : int
    edges : ndarray of shape (K + 1,)
        Increasing bin edges (the first is the feature's minimum).

    Returns
    -------
    ale : ndarray of shape (K + 1,)
        The centred effect at each edge (weighted mean over the data is 0).
    counts : ndarray of shape (K,)
        Rows per bin.
    """
    edges = np.asarray(edges, dtype=float)
    if len(edges) < 2:
        return np.zeros(len(edges)), np.zeros(0, dtype=int)
    mean, counts = bin_effects(f, x, j, edges)
    return _accumulate(mean, counts), counts


def bin_effects(f, x, j, edges):
    """ALE's local effects of numeric feature ``j``: per bin, the mean of ``f(upper edge) - f(lower edge)``.

    Parameters
    ----------
    f : callable
    x : ndarray of shape (n, n_features)
        Rows with feature ``j`` observed (other features may be missing).
    j : int
    edges : ndarray of shape (K + 1,)

    Returns
    -------
    mean : ndarray of shape (K,)
        0 in empty bins.
    counts : ndarray of shape (K,)
        Rows per bin.
    """
    edges = np.asarray(edges, dtype=float)
    k = len(edges) - 1
    if not len(x):
        return np.zeros(k), np.zeros(k, dtype=int)
    b = _bin_index(x[:, j].astype(float), edges)
    lo, hi = x.copy(), x.copy()
    lo[:, j], hi[:, j] = edges[b], edges[b + 1]
    out = f(np.concatenate([lo, hi]))
    delta = out[len(x):] - out[: len(x)]
    counts = np.bincount(b, minlength=k)
    return np.bincount(b, weights=delta, minlength=k) / np.maximum(counts, 1), counts


def _accumulate(mean, counts) -> np.ndarray:
    """Local effects (K,) summed into the curve at the K + 1 edges, centred with the bin ``counts`` as weights."""
    ale = np.concatenate([[0.0], np.cumsum(mean)])
    if counts.sum() > 0:
        ale -= np.sum((ale[:-1] + ale[1:]) / 2 * counts) / counts.sum()
    return ale


def _observed(x, cols) -> np.ndarray:
    """Rows of ``x`` whose values of every numeric column in ``cols`` are observed (not NaN), shape (n,)."""
    seen = np.ones(len(x), dtype=bool)
    for j in cols:
        col = x[:, j]
        if col.dtype == object:
            import pandas as pd

            seen &= ~np.asarray(pd.isna(col), dtype=bool)
        elif col.dtype.kind == "f":
            seen &= ~np.isnan(col)
    return seen


def ale_missing(f, x, j, edges, ale) -> float:
    """ALE's "missing" point: the centred effect of making feature ``j`` missing.

    Mean over the rows of ``ALE(x_ij) + f(x_i with x_ij = NaN) - f(x_i)``,
    with ``ALE`` interpolated linearly between the bin ``edges`` (as
    ALEPlot draws it), so the point sits on the curve's centred scale.

    Parameters
    ----------
    f : callable
    x : ndarray of shape (n, n_features)
        Rows with feature ``j`` observed.
    j : int
    edges : ndarray of shape (K + 1,)
    ale : ndarray of shape (K + 1,)

    Returns
    -------
    float
    """
    at_value = np.interp(x[:, j].astype(float), np.asarray(edges, dtype=float), np.asarray(ale, dtype=float))
    return _missing_effect(f, x, j, at_value)


def _missing_effect(f, x, j, at_value) -> float:
    """Mean over the rows of ``at_value + f(x with feature j missing) - f(x)``; ``at_value`` of shape (n,)."""
    gone = x.copy()
    gone[:, j] = np.nan
    out = f(np.concatenate([x, gone]))
    return float(np.mean(np.asarray(at_value, dtype=float) + out[len(x):] - out[: len(x)]))


def ale_missing_line(f, x_seen, x_gone, j, edges) -> np.ndarray:
    """A two-feature ALE's "missing" row: how feature ``j``'s effect changes where the other feature is missing.

    The pure interaction between "the other feature is missing" and feature
    ``j``, built as ALE builds every effect, from the rows that are really
    there: in each bin of ``j``, the local effect of ``j`` (:func:`bin_effects`)
    on the rows where the other feature is missing, minus its local effect on
    the rows where both are observed; bins without such rows take their
    nearest non-empty bin's difference (as ALEPlot fills empty cells); summed
    along ``edges`` and centred over the rows where the other feature is
    missing (so the main effect of being missing stays in the one-feature
    curve's "missing" point).

    Parameters
    ----------
    f : callable
    x_seen : ndarray of shape (n_seen, n_features)
        Rows with both features observed (the surface's rows).
    x_gone : ndarray of shape (n_gone, n_features)
        Rows with the other feature missing and ``j`` observed.
    j : int
    edges : ndarray of shape (K + 1,)
        Feature ``j``'s bin edges on the surface.

    Returns
    -------
    ndarray of shape (K + 1,)
        Zero when no row has the other feature missing and ``j`` observed.
    """
    edges = np.asarray(edges, dtype=float)
    main, _ = bin_effects(f, x_seen, j, edges)
    there, counts = bin_effects(f, x_gone, j, edges)
    if len(edges) < 2 or counts.sum() == 0:
        return np.zeros(len(edges))
    diff = there - main  # (K,)
    full = np.flatnonzero(counts > 0)
    centre = (edges[:-1] + edges[1:]) / 2
    for k in np.flatnonzero(counts == 0):
        diff[k] = diff[full[np.argmin(np.abs(centre[full] - centre[k]))]]
    return _accumulate(diff, counts)


def ale_2d(f, x, j1, j2, edges1, edges2):
    """Second-order ALE (the pure interaction) of numeric features ``j1``, ``j2``.

    Returns
    -------
    ale : ndarray of shape (K1 + 1, K2 + 1)
        Effect at the grid of edges, with both first-order effects removed
        and centred over the data.
    counts : ndarray of shape (K1, K2)
        Rows per cell.
    """
    e1, e2 = np.asarray(edges1, float), np.asarray(edges2, float)
    k1, k2 = len(e1) - 1, len(e2) - 1
    if k1 < 1 or k2 < 1:
        return np.zeros((len(e1), len(e2))), np.zeros((max(k1, 0), max(k2, 0)), dtype=int)
    b1, b2 = _bin_index(x[:, j1].astype(float), e1), _bin_index(x[:, j2].astype(float), e2)
    corners = []
    for d1, d2 in ((0, 0), (0, 1), (1, 0), (1, 1)):
        c = x.copy()
        c[:, j1], c[:, j2] = e1[b1 + d1], e2[b2 + d2]
        corners.append(c)
    out = f(np.concatenate(corners)).reshape(4, len(x))
    delta = (out[3] - out[2]) - (out[1] - out[0])
    cell = b1 * k2 + b2
    counts = np.bincount(cell, minlength=k1 * k2).reshape(k1, k2)
    mean = (np.bincount(cell, weights=delta, minlength=k1 * k2).reshape(k1, k2)) / np.maximum(counts, 1)
    empty = counts == 0
    if empty.any():  # nearest non-empty cell by range-scaled cell centres (as ALEPlot)
        c1 = (e1[:-1] + e1[1:]) / 2 / max(e1[-1] - e1[0], 1e-300)
        c2 = (e2[:-1] + e2[1:]) / 2 / max(e2[-1] - e2[0], 1e-300)
        full = np.argwhere(~empty)
        for a, b in np.argwhere(empty):
            d = (c1[full[:, 0]] - c1[a]) ** 2 + (c2[full[:, 1]] - c2[b]) ** 2
            mean[a, b] = mean[tuple(full[np.argmin(d)])]
    fj = np.zeros((k1 + 1, k2 + 1))
    fj[1:, 1:] = np.cumsum(np.cumsum(mean, axis=0), axis=1)
    w = counts
    # remove the first-order effect of feature 1 ...
    d1 = fj[1:, :] - fj[:-1, :]  # (K1, K2+1)
    ave1 = np.sum(w * (d1[:, :-1] + d1[:, 1:]) / 2, axis=1) / np.maximum(w.sum(axis=1), 1)
    f1 = np.concatenate([[0.0], np.cumsum(ave1)])
    # ... and of feature 2
    d2 = fj[:, 1:] - fj[:, :-1]  # (K1+1, K2)
    ave2 = np.sum(w * (d2[:-1, :] + d2[1:, :]) / 2, axis=0) / np.maximum(w.sum(axis=0), 1)
    f2 = np.concatenate([[0.0], np.cumsum(ave2)])
    fj = fj - f1[:, None] - f2[None, :]
    f0 = np.sum(w * (fj[:-1, :-1] + fj[:-1, 1:] + fj[1:, :-1] + fj[1:, 1:]) / 4) / w.sum()
    return fj - f0, counts


def _ale_2d_with_missing(f, x, cols, edges, ale, axes) -> np.ndarray:
    """The ALE surface with a "missing" row / column in front on each axis in ``axes``.

    Returns
    -------
    ndarray of shape (K1 + 1 + m0, K2 + 1 + m1)
        ``m = axes``; the "missing" row of feature ``cols[0]`` runs along
        ``cols[1]``'s edges (:func:`ale_missing_line`) and the other way
        round; the corner (both missing) is 0: a single cell keeps no
        interaction once its main effects are removed.
    """
    m0, m1 = int(axes[0]), int(axes[1])
    out = np.zeros((ale.shape[0] + m0, ale.shape[1] + m1))
    out[m0:, m1:] = ale
    seen = _observed(x, cols)
    for axis in (0, 1):
        if not axes[axis]:
            continue
        gone_col, other = cols[axis], cols[1 - axis]
        gone = ~_observed(x, [gone_col]) & _observed(x, [other])
        line = ale_missing_line(f, x[seen], x[gone], other, edges[1 - axis])
        if axis == 0:
            out[0, m1:] = line
        else:
            out[m0:, 0] = line
    return out


def category_order(x, j, categories, is_cat) -> np.ndarray:
    """Order of ``categories`` of feature ``j`` by the similarity of the other features.

    Apley & Zhu (2020, section 5.2): the distance between two categories is
    the sum over the other features of the Kolmogorov-Smirnov distance
    (numeric) or total-variation distance (categorical) between that
    feature's distribution in the two categories; the categories are ordered
    along the first axis of a classical multidimensional scaling of those
    distances.

    Returns
    -------
    ndarray of int
        Permutation of ``range(len(categories))``.
    """
    k = len(categories)
    if k <= 2:
        return np.arange(k)
    keys = np.asarray([str(v) for v in x[:, j]])
    groups = [keys == str(c) for c in categories]
    dist = np.zeros((k, k))
    for other in range(x.shape[1]):
        if other == j:
            continue
        col = x[:, other]
        if is_cat[other]:
            col = np.asarray([str(v) for v in col])
            levels = np.unique(col)
            p = np.stack([(col[g][:, None] == levels[None]).mean(axis=0) if g.any() else np.zeros(len(levels))
                          for g in groups])
            dist += 0.5 * np.abs(p[:, None, :] - p[None, :, :]).sum(axis=2)
        else:
            col = col.astype(float)
            points = np.unique(col)
            cdf = np.stack([np.searchsorted(np.sort(col[g]), points, side="right") / max(g.sum(), 1) for g in groups])
            dist += np.abs(cdf[:, None, :] - cdf[None, :, :]).max(axis=2)
    centre = np.eye(k) - np.ones((k, k)) / k
    b = -0.5 * centre @ (dist ** 2) @ centre
    vals, vecs = np.linalg.eigh(b)
    axis = vecs[:, -1]
    if axis[np.argmax(np.abs(axis))] < 0:
        axis = -axis
    return np.argsort(axis, kind="stable")


def ale_categorical(f, x, j, categories, order):
    """First-order ALE of categorical feature ``j`` over ``categories[order]``.

    Between neighbouring categories ``c_k``, ``c_{k+1}`` (in ``order``) the
    local effect averages ``f(c_{k+1}) - f(c_k)`` over the rows of both
    categories (rows of ``c_k`` moved up, rows of ``c_{k+1}`` moved down).
    Accumulated and centred with the category counts as weights.

    Returns
    -------
    ale : ndarray of shape (K,)
        In ``order``.
    counts : ndarray of shape (K,)
    """
    cats = np.asarray(categories, dtype=object)[order]
    keys = np.asarray([str(v) for v in x[:, j]])
    pos = np.full(len(x), -1)
    for k, c in enumerate(cats):
        pos[keys == str(c)] = k
    counts = np.bincount(pos[pos >= 0], minlength=len(cats))
    up_rows = np.nonzero((pos >= 0) & (pos < len(cats) - 1))[0]
    down_rows = np.nonzero(pos > 0)[0]
    base_rows = np.concatenate([up_rows, down_rows])
    moved = x[base_rows].copy()
    moved[: len(up_rows), j] = cats[pos[up_rows] + 1]
    moved[len(up_rows):, j] = cats[pos[down_rows] - 1]
    out = f(np.concatenate([x[base_rows], moved]))
    orig, new = out[: len(base_rows)], out[len(base_rows):]
    # effect across the boundary k|k+1, always as f(c_{k+1}) - f(c_k)
    d_up = new[: len(up_rows)] - orig[: len(up_rows)]
    d_down = orig[len(up_rows):] - new[len(up_rows):]
    kk = len(cats) - 1
    sums = np.bincount(pos[up_rows], weights=d_up, minlength=kk)[:kk] + np.bincount(
        pos[down_rows] - 1, weights=d_down, minlength=kk)[:kk]
    n_pair = counts[:-1] + counts[1:]
    ale = np.concatenate([[0.0], np.cumsum(sums / np.maximum(n_pair, 1))])
    ale -= np.sum(ale * counts) / counts.sum()
    return ale, counts


class AccumulatedLocalEffects(_CurveExplainer):
    """ALE (Apley & Zhu 2020): first order, two-feature second order, categorical."""

    name = "ale"
    summary = "Accumulated local effects: feature effects that stay honest under correlated features (global)."
    params = ParamSpec(
        _common_params("Bin edges per numeric feature (bins = edges - 1), at data quantiles.")[:2]
        + (Param("max_rows", "int", 1000, "Rows sampled from the data (0: all).", low=0, fit_low=200,
                 fit_why="ALE's bins hold only a few rows each below that"),
           Param("seed", "int", 0, "Random seed for the row sample.", low=0))
    )

    def cost(self, model, data, params, n_rows):
        """Per feature, one call on each observed row at its bin's two edges (2 n rows); four corners (4 n) per
        pair; a categorical feature moves rows to both neighbouring categories (about 2 n, ``bound``); one more
        call (2 n) for the "missing" point. Own work: building the moved copies (rows x features)."""
        specs, x, is_cat = self._plan(data, dict(params, max_rows=params.get("max_rows", 1000)))
        n_feat = x.shape[1]
        total = Cost(own_unit="rows x features")
        for cols in specs:
            seen = int(_observed(x, cols).sum())
            if len(cols) == 2:
                m, bound = 4 * seen, False
            elif is_cat[cols[0]]:
                m, bound = 2 * len(x), True
            else:
                m, bound = 2 * seen, False
            total = total + Cost(calls=output_calls(model, data, m), rows=m, own=m * n_feat, bound=bound)
            for j in cols:  # the "missing" point (one feature: 2 calls per observed row) or row (a pair: at most 2 n)
                if missing_share(data.x[:, j]) > 0:
                    m = 2 * (seen if len(cols) == 1 else len(x))
                    total = total + Cost(calls=output_calls(model, data, m), rows=m, own=m * n_feat,
                                         bound=len(cols) == 2)
        return total

    def explain(self, model, data, params, ctx):
        specs, x, f, is_cat = self._setup(model, data, params, ctx)
        curves = []
        scale = output_scale(model)
        for k, cols in enumerate(specs):
            ctx.progress(k / len(specs), f"accumulated local effects {k + 1}/{len(specs)}")
            names = tuple(data.feature_names[j] for j in cols)
            if len(cols) == 2:
                if is_cat[cols[0]] or is_cat[cols[1]]:
                    raise StudioError(f"two-feature ALE needs two numeric features; {':'.join(names)} has a categorical one")
                seen = _observed(x, cols)
                e1 = feature_grid(data.x[:, cols[0]], params["grid_resolution"], "quantile")  # the grid rule
                e2 = feature_grid(data.x[:, cols[1]], params["grid_resolution"], "quantile")
                ale, counts = ale_2d(f, x[seen], cols[0], cols[1], e1, e2)
                extra = {"scale": scale, "counts": counts, "order": 2}
                axes = [missing_share(data.x[:, j]) > 0 for j in cols]
                if any(axes):
                    extra.update(missing_axes=axes, with_missing=_ale_2d_with_missing(f, x, cols, (e1, e2), ale, axes))
                curves.append(Curve(feature=names, kind="ale", grid=[e1, e2], average=ale, extra=extra))
                continue
            j = cols[0]
            if is_cat[j]:
                cats = feature_grid(x[:, j], 0, categorical=True)
                order = category_order(x, j, cats, is_cat)
                ale, counts = ale_categorical(f, x, j, cats, order)
                extra = {"scale": scale, "counts": counts, "order": 1}
                if missing_share(data.x[:, j]) > 0:
                    seen = _observed(x, cols)
                    where = {str(c): k for k, c in enumerate(cats[order])}
                    at_value = ale[[where[str(v)] for v in x[seen, j]]]  # each observed row's ALE at its category
                    extra["missing"] = _missing_effect(f, x[seen], j, at_value)
                    extra["n_missing"] = int(np.sum(~seen))
                curves.append(Curve(feature=names[0], kind="ale", grid=[_storable(cats[order])], average=ale,
                                    categorical=True, extra=extra))
            else:
                seen = _observed(x, cols)
                edges = feature_grid(data.x[:, j], params["grid_resolution"], "quantile")  # the grid rule
                ale, counts = ale_1d(f, x[seen], j, edges)
                extra = {"scale": scale, "counts": counts, "order": 1}
                if missing_share(data.x[:, j]) > 0:
                    extra["missing"] = ale_missing(f, x[seen], j, edges, ale)
                    extra["n_missing"] = int(np.sum(~seen))
                curves.append(Curve(feature=names[0], kind="ale", grid=[edges], average=ale, extra=extra))
        ctx.progress(1.0, "done")
        return self._result(model, data, curves, len(x))
