"""Exact path-dependent TreeSHAP by per-leaf lookup tables (FastTreeSHAP v2), vectorised in numpy.

Path-dependent TreeSHAP (Lundberg et al. 2020, "From local explanations to
global understanding with explainable AI for trees", Algorithm 2; shap's
``feature_perturbation="tree_path_dependent"``) gives feature ``i`` of row
``x`` the sum over leaves ``l`` whose root-to-leaf path splits on ``i``::

    phi_i(x) = sum_l v_l (o_i - z_i) sum_{S in U_l - {i}} w(|S|) prod_{j in S} o_j prod_{j in U_l - S - {i}} z_j

with ``U_l`` the ``d`` distinct features split on along the path, ``w(s) =
s! (d - s - 1)! / d!``, ``z_j`` the product of the training-cover fractions
``cover(child) / cover(parent)`` at the path's splits on ``j``, ``o_j`` 1
when ``x`` takes every one of those splits the path's way, else 0, and
``v_l`` the leaf's value. The row enters only through the ``d`` bits
``o_j``, so each leaf gets a table of ``2^d x d`` numbers (the sum without
``v_l``) and a row costs one mask, ``d`` look-ups and a scatter-add per leaf:
O(T L D) per row instead of O(T L D^2) (Yang 2022, "Fast TreeSHAP:
Accelerating SHAP Value Computation for Trees", arXiv:2109.09847,
FastTreeSHAP v2).

The tables are built without enumerating subsets: ``w(s)`` is the Beta
integral ``int_0^1 t^s (1 - t)^(d - 1 - s) dt``, so the inner sum equals
``int_0^1 prod_{j != i} (z_j (1 - t) + o_j t) dt``, a polynomial of degree
``d - 1`` in ``t`` that Gauss-Legendre quadrature with ``ceil(d / 2)`` nodes
integrates exactly (the identity behind Yu et al. 2022, "Linear TreeShap",
NeurIPS). Every term is positive, so there is no cancellation: the values
equal shap's C implementation to about 1e-15.

It works on shap's own parsed model (``shap.TreeExplainer(model).model``,
a ``TreeEnsemble``: ``children_left/right/default``, ``features``,
``thresholds``, ``values``, ``node_sample_weight``, ``base_offset``,
``input_dtype``), so the reading of the model (class fractions divided by
the number of trees for forests, learning rate and initial estimate for
gradient boosting, ``x <= threshold`` on inputs cast to the model's input
dtype, a missing value following ``children_default``) is shap's, and the
result has the layout of ``TreeExplainer.shap_values`` with shap's expected
value (the sum of the trees' root values plus ``base_offset``).

Refused (:class:`Unsupported`, the caller keeps shap's own path):
categorical splits, a node without training weight (shap divides by it),
a path with more than :data:`MAX_PATH_FEATURES` distinct features, or
tables over :data:`TABLE_BUDGET_BYTES` (deep, unlimited-depth forests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_PATH_FEATURES = 14
"""Most distinct features on one root-to-leaf path (each leaf's table has 2^d rows; masks are uint16)."""
TABLE_BUDGET_BYTES = 256 * 2**20
"""Most bytes all leaves' tables may take together (float64, sum over leaves of 2^d * d * 8)."""
CHUNK_ELEMENTS = 1 << 21
"""Rows are explained in chunks of about this many (leaf, feature, row) look-ups (a 16 MiB float64 block)."""
_BUILD_ELEMENTS = 1 << 21
"""Leaves' tables are built in chunks of about this many numbers."""

# Relative costs for routing (measured on the project's 2-core machine, 50 trees of depth 8, 20 features,
# 1,000-3,000 rows): building costs about 25 ns per table number, a row about 12 ns per (leaf, feature) look-up,
# and shap's C path about 6 ns per unit of the sum over leaves of d^2 per row.
BUILD_COST = 4.0
LOOKUP_COST = 2.0
SHAP_COST = 1.0


class Unsupported(Exception):
    """The ensemble is outside what the tables cover exactly or within budget; use shap's own path."""


@dataclass
class _Level:
    """One depth of every tree at once, in the order the masks are kept."""

    leaf_pos: np.ndarray  # (a,) positions of this depth's leaves in the depth's node order
    leaf_ids: np.ndarray  # (a,) their leaf indices (grouped by d)
    inner_pos: np.ndarray | None  # (b,) positions of the internal nodes, None when every node is internal
    feature: np.ndarray  # (b,) split feature
    threshold: np.ndarray  # (b,) float64, x <= threshold goes left
    default_left: np.ndarray  # (b,) bool, where a missing value goes
    bit_left: np.ndarray  # (b, 1) uint16, the mask bit of the split's feature
    new_left: np.ndarray  # (b, 1) uint16, that bit when the feature is new on the path, else 0
    bit_right: np.ndarray
    new_right: np.ndarray


@dataclass
class _Group:
    """The leaves with ``d`` distinct path features: their tables and where their look-ups go."""

    d: int
    start: int  # leaves start:stop in the grouped leaf order
    stop: int
    offsets: np.ndarray  # (L, d, 1) int64: start of each (leaf, slot) row of 2^d in ``table``
    table: np.ndarray  # (L * d * 2^d,) float64, without the leaf value
    scatter: object  # scipy.sparse CSR (F * K, L * d): leaf value into (feature, output)


def _quadrature(d: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [-1, 1] exact for the degree ``d - 1`` polynomials of a leaf with ``d``
    path features (``ceil(d / 2)`` nodes)."""
    return np.polynomial.legendre.leggauss((d + 1) // 2)


def _leaf_table(z: np.ndarray) -> np.ndarray:
    """The look-up tables of leaves with ``d`` path features.

    Parameters
    ----------
    z : ndarray of shape (L, d)
        Each leaf's zero fractions (product of cover fractions per distinct path feature), all > 0.

    Returns
    -------
    ndarray of shape (L, d, 2^d)
        ``[l, u, M]``: feature ``u``'s share of the leaf's value when the row satisfies the path's splits on
        exactly the features in bit mask ``M``: ``(o_u - z_u) int_0^1 prod_{j != u} a_j(t) dt`` with
        ``a_j(t) = z_j (1 - t) + o_j t``, by Gauss-Legendre quadrature with ``ceil(d / 2)`` nodes (exact).
    """
    n_leaves, d = z.shape
    nodes, weights = _quadrature(d)
    t, weights = (nodes + 1.0) / 2.0, weights / 2.0  # on [0, 1]
    a0 = z[:, None, :] * (1.0 - t)[None, :, None]  # (L, Q, d): a_j(t) when o_j = 0
    a1 = a0 + t[None, :, None]  # o_j = 1
    prod = np.empty((n_leaves, len(t), 1 << d))  # (L, Q, 2^d): prod_j a_j(t_q) for each mask
    prod[..., 0] = 1.0
    for u in range(d):  # bit u of the mask is slot u
        h = 1 << u
        np.multiply(prod[..., :h], a1[..., u:u + 1], out=prod[..., h:2 * h])
        prod[..., :h] *= a0[..., u:u + 1]
    # dividing out slot u's own factor (a0: only masks without bit u are used): (L, d, Q) @ (L, Q, 2^d)
    inner = np.matmul(np.transpose(weights[None, :, None] / a0, (0, 2, 1)), prod)  # (L, d, 2^d)
    out = np.empty_like(inner)
    for u in range(d):
        h = 1 << u
        without = inner[:, u, :].reshape(n_leaves, -1, 2, h)[:, :, :1, :]  # masks with bit u clear
        coef = np.stack([-z[:, u], 1.0 - z[:, u]], axis=1)[:, None, :, None]  # (o_u - z_u) for bit 0 / 1
        out[:, u, :] = (without * coef).reshape(n_leaves, 1 << d)
    return out


def digest(ensemble) -> str:
    """A digest of what the tables are built from (structure, thresholds, covers, values, offset)."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for name in ("children_left", "children_right", "children_default", "features", "thresholds",
                 "threshold_types", "node_sample_weight", "values", "base_offset"):
        h.update(np.ascontiguousarray(np.asarray(getattr(ensemble, name))).tobytes())
    h.update(repr((getattr(ensemble, "tree_limit", None), str(np.dtype(getattr(ensemble, "input_dtype", np.float64))),
                   getattr(ensemble, "model_output", "raw"))).encode())
    return h.hexdigest()


class PathTables:
    """Path-dependent TreeSHAP of one parsed tree ensemble, by per-leaf look-up tables.

    Parameters
    ----------
    ensemble : shap ``TreeEnsemble``
        ``shap.TreeExplainer(model, feature_perturbation="tree_path_dependent").model``.
    n_features : int
        Columns of the rows to explain.
    budget_bytes : int
        Most bytes the tables may take (:data:`TABLE_BUDGET_BYTES`).

    Raises
    ------
    Unsupported
        Categorical splits, a node without training weight, a path with more than :data:`MAX_PATH_FEATURES`
        distinct features, tables over ``budget_bytes``, or an output shap's path-dependent algorithm does
        not explain (``model_output`` other than ``"raw"``).

    Attributes
    ----------
    table_bytes : int
        What the tables take (built on the first :meth:`shap_values`).
    lookups_per_row : int
        (leaf, feature) look-ups per row: the row-time work.
    shap_work_per_row : int
        Sum over leaves of d^2: the order of shap's own per-row work, for routing.
    """

    def __init__(self, ensemble, n_features: int, budget_bytes: int = TABLE_BUDGET_BYTES):
        if getattr(ensemble, "model_output", "raw") != "raw":
            raise Unsupported(f"shap explains model_output {ensemble.model_output!r} only interventionally")
        if np.any(np.asarray(ensemble.threshold_types) != 0):
            raise Unsupported("categorical splits")
        n_trees = ensemble.children_left.shape[0]
        if getattr(ensemble, "tree_limit", None) is not None:
            n_trees = min(n_trees, int(ensemble.tree_limit))
        left = np.asarray(ensemble.children_left[:n_trees], dtype=np.int64)
        right = np.asarray(ensemble.children_right[:n_trees], dtype=np.int64)
        default = np.asarray(ensemble.children_default[:n_trees], dtype=np.int64)
        feature = np.asarray(ensemble.features[:n_trees], dtype=np.int64)
        threshold = np.asarray(ensemble.thresholds[:n_trees], dtype=np.float64)
        cover = np.asarray(ensemble.node_sample_weight[:n_trees], dtype=np.float64)
        values = np.asarray(ensemble.values[:n_trees], dtype=np.float64)  # (T, N, K)
        self.n_features, self.n_outputs = int(n_features), values.shape[2]
        self.input_dtype = getattr(ensemble, "input_dtype", np.float64)
        self.base = values[:, 0, :].sum(axis=0) + np.asarray(ensemble.base_offset, dtype=np.float64).reshape(-1)
        self._plan(left, right, default, feature, threshold, cover, values, budget_bytes)
        self._groups: list[_Group] | None = None

    def worthwhile(self, n_rows: int) -> bool:
        """Whether building the tables and looking ``n_rows`` rows up is expected to beat shap's C path.

        ``BUILD_COST * entries + LOOKUP_COST * n * lookups < SHAP_COST * n * sum(d^2)`` (:data:`BUILD_COST`;
        no build cost once built): a handful of rows is quicker on shap's path.
        """
        build = 0.0 if self._groups is not None else BUILD_COST * self.table_bytes / 8
        return build + LOOKUP_COST * n_rows * self.lookups_per_row < SHAP_COST * n_rows * self.shap_work_per_row

    # ---- structure ------------------------------------------------------------------------------------
    def _plan(self, left, right, default, feature, threshold, cover, values, budget_bytes) -> None:
        """Walk every tree breadth first at once: mask bits per split, distinct features and z per leaf."""
        n_trees, width = left.shape
        flat = lambda a: a.reshape(-1)
        cl, cr, cd, fe, th, cv = map(flat, (left, right, default, feature, threshold, cover))
        split = fe[cl >= 0]
        if np.any(split < 0) or np.any(split >= self.n_features):
            raise Unsupported("a split on a feature outside the rows' columns")
        slots = MAX_PATH_FEATURES
        nodes = np.arange(n_trees, dtype=np.int64) * width
        path_feature = np.full((n_trees, slots), -1, dtype=np.int64)  # distinct features, in order of appearance
        path_z = np.ones((n_trees, slots))
        path_d = np.zeros(n_trees, dtype=np.int64)
        levels, leaf_nodes, leaf_d, leaf_feature, leaf_z, count = [], [], [], [], [], 0
        while nodes.size:
            tree = nodes // width
            inner = cl[nodes] >= 0
            leaf_pos = np.flatnonzero(~inner)
            leaf_nodes.append(nodes[leaf_pos])
            leaf_d.append(path_d[leaf_pos])
            leaf_feature.append(path_feature[leaf_pos])
            leaf_z.append(path_z[leaf_pos])
            leaf_ids = np.arange(count, count + leaf_pos.size)
            count += leaf_pos.size
            inner_pos = np.flatnonzero(inner)
            if not inner_pos.size:
                levels.append(_Level(leaf_pos, leaf_ids, inner_pos, *(np.empty(0),) * 7))
                break
            parent = nodes[inner_pos]
            f = fe[parent]
            lch, rch = tree[inner_pos] * width + cl[parent], tree[inner_pos] * width + cr[parent]
            if np.any(cv[parent] <= 0) or np.any(cv[lch] <= 0) or np.any(cv[rch] <= 0):
                raise Unsupported("a node without training weight")
            pf, pz, pd = path_feature[inner_pos], path_z[inner_pos], path_d[inner_pos]
            match = pf == f[:, None]
            seen = match.any(axis=1)
            slot = np.where(seen, match.argmax(axis=1), pd)
            if np.any(slot >= slots):
                raise Unsupported(f"a path splits on more than {MAX_PATH_FEATURES} distinct features")
            rows = np.arange(len(parent))
            pf = pf.copy()
            pf[rows, slot] = f
            zl, zr = pz.copy(), pz.copy()
            zl[rows, slot] *= cv[lch] / cv[parent]
            zr[rows, slot] *= cv[rch] / cv[parent]
            bit = (np.int64(1) << slot).astype(np.uint16)[:, None]
            new = np.where(seen[:, None], np.uint16(0), bit)
            levels.append(_Level(leaf_pos, leaf_ids, None if inner_pos.size == nodes.size else inner_pos, f,
                                 th[parent], cd[parent] == cl[parent], bit, new, bit, new))
            nodes = np.concatenate([lch, rch])
            path_feature, path_z = np.concatenate([pf, pf]), np.concatenate([zl, zr])
            path_d = np.concatenate([pd + ~seen, pd + ~seen])
        leaf_nodes, leaf_d = np.concatenate(leaf_nodes), np.concatenate(leaf_d)
        order = np.argsort(leaf_d, kind="stable")  # leaves grouped by d
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        for level in levels:
            level.leaf_ids = rank[level.leaf_ids]
        self._levels, self._n_leaves = levels, len(leaf_nodes)
        d_sorted = leaf_d[order]
        self.table_bytes = int(np.sum((np.int64(1) << d_sorted) * d_sorted) * 8)
        if self.table_bytes > budget_bytes:
            raise Unsupported(f"its tables would take {self.table_bytes / 2**20:.0f} MiB, over the "
                              f"{budget_bytes / 2**20:.0f} MiB budget")
        self.lookups_per_row = int(d_sorted.sum())
        self.shap_work_per_row = int(np.sum(d_sorted.astype(np.int64) ** 2))
        self._leaf_d = d_sorted
        self._leaf_feature = np.concatenate(leaf_feature)[order]
        self._leaf_z = np.concatenate(leaf_z)[order]
        flat_values = values.reshape(-1, values.shape[2])
        self._leaf_value = flat_values[leaf_nodes[order]]  # (L, K)

    def _build(self) -> list[_Group]:
        """Every leaf's table, grouped by d (leaves with d = 0 add nothing)."""
        import scipy.sparse

        k, groups = self.n_outputs, []
        bounds = np.flatnonzero(np.diff(self._leaf_d)) + 1
        for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(self._leaf_d)]):
            d = int(self._leaf_d[start]) if stop > start else 0
            if d == 0:
                continue
            n = stop - start
            z, feats, vals = self._leaf_z[start:stop, :d], self._leaf_feature[start:stop, :d], self._leaf_value[start:stop]
            step = max(1, _BUILD_ELEMENTS // ((1 << d) * d * ((d + 1) // 2)))
            table = np.empty(n * d << d)
            for a in range(0, n, step):
                b = min(n, a + step)
                table[(a * d) << d:(b * d) << d] = _leaf_table(z[a:b]).reshape(-1)
            offsets = ((np.arange(n, dtype=np.int64)[:, None] * d + np.arange(d)[None, :]) << d)[:, :, None]
            rows = (feats[:, :, None] * k + np.arange(k)[None, None, :]).reshape(-1)  # (L, d, K)
            cols = np.repeat(np.arange(n * d), k)
            data = np.broadcast_to(vals[:, None, :], (n, d, k)).reshape(-1)
            scatter = scipy.sparse.csr_matrix((data, (rows, cols)), shape=(self.n_features * k, n * d))
            groups.append(_Group(d, int(start), int(stop), offsets, table, scatter))
        return groups

    # ---- rows -----------------------------------------------------------------------------------------
    def _masks(self, xt: np.ndarray, missing: bool) -> np.ndarray:
        """Each leaf's mask of satisfied path features for rows ``xt`` (F, m): (n_leaves, m) uint16."""
        m = xt.shape[1]
        masks = np.empty((self._n_leaves, m), dtype=np.uint16)
        roots = self._levels[0]
        level_mask = np.zeros((len(roots.leaf_pos) + len(roots.feature), m), dtype=np.uint16)
        for level in self._levels:
            if level.leaf_pos.size:
                masks[level.leaf_ids] = level_mask[level.leaf_pos]
            if not level.feature.size:
                break
            parent = level_mask if level.inner_pos is None else level_mask[level.inner_pos]
            xv = xt[level.feature]  # (b, m)
            go_left = xv <= level.threshold[:, None]
            if missing:
                go_left = np.where(np.isnan(xv), level.default_left[:, None], go_left)
            cleared = parent & ~level.bit_left
            left = np.where(go_left, parent | level.new_left, cleared)
            right = np.where(go_left, cleared, parent | level.new_right)
            level_mask = np.concatenate([left, right])
        return masks

    def shap_values(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Path-dependent SHAP values of rows ``x``, as ``shap.TreeExplainer(...).shap_values`` gives them.

        Parameters
        ----------
        x : array_like of shape (n, F)
            Rows; cast to the ensemble's input dtype first (float32 for scikit-learn trees), as shap does.
            NaN is a missing value.

        Returns
        -------
        values : ndarray of shape (n, F, K)
            float64; ``values[r, :, k].sum() + base[k]`` is output ``k`` of the ensemble on row ``r``.
        base : ndarray of shape (K,)
            shap's expected value: the trees' root values summed, plus the ensemble's base offset.
        """
        if self._groups is None:
            self._groups = self._build()
        x = np.asarray(np.asarray(x).astype(self.input_dtype), dtype=np.float64)
        n, k, f = x.shape[0], self.n_outputs, self.n_features
        if x.ndim != 2 or x.shape[1] != f:
            raise ValueError(f"rows of {f} features expected, got shape {x.shape}")
        missing = bool(np.isnan(x).any())
        values = np.empty((n, f, k))
        step = int(min(max(n, 1), max(8, CHUNK_ELEMENTS // max(self.lookups_per_row, 1))))
        widest = max((g.offsets.size for g in self._groups), default=0) * step
        idx_buf, look_buf = np.empty(widest, dtype=np.intp), np.empty(widest)
        for a in range(0, n, step):
            xt = np.ascontiguousarray(x[a:a + step].T)  # (F, m)
            m = xt.shape[1]
            masks = self._masks(xt, missing)
            out = np.zeros((f * k, m))
            for g in self._groups:
                size = g.offsets.size * m
                idx = idx_buf[:size].reshape(g.stop - g.start, g.d, m)
                np.add(masks[g.start:g.stop, None, :], g.offsets, out=idx)  # (L, d, m), in range by construction
                looked_up = g.table.take(idx, mode="clip", out=look_buf[:size].reshape(idx.shape))
                out += g.scatter @ looked_up.reshape(-1, m)  # (F * K, m)
            values[a:a + m] = out.reshape(f, k, m).transpose(2, 0, 1)
        return values, self.base.copy()
