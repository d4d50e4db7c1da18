"""Global summaries of a batch run, read from its Parquet partitions by DuckDB scans (never all rows in memory).

- :func:`importance`: mean |attribution| per feature (and the mean, signed)
  over every explained row: one aggregate scan;
- :func:`dependence`: a feature's value against its attribution for a
  deterministic sample of rows (the ``max_points`` rows whose hash of
  ``row_id`` and ``seed`` is smallest: a top-N scan, memory bounded by N);
- :func:`by_subset`: rows, mean output and mean |attribution| per group of
  a column (its values when it has few, else quantile bins).

Each opens an in-memory DuckDB connection limited to ``STUDIO_BATCH_MEMORY``
(default 1 GB) and reads only the partitions the manifest lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.errors import StudioError

MAX_GROUPS = 20
"""A column with at most this many distinct values is grouped by value; others are cut into quantile bins."""


def manifest(out) -> dict:
    """The manifest of a batch output folder (schema ``studio.batch/1``) with finished partitions, or StudioError."""
    from studio.batch.run import MANIFEST, load_manifest

    m = load_manifest(Path(out))
    if m is None:
        raise StudioError(f"{str(out)!r} has no {MANIFEST}; give the --out folder of a `python -m studio batch` run")
    if not m.get("partitions"):
        raise StudioError(f"{str(out)!r} holds no finished partitions yet")
    return m


@dataclass
class _Scan:
    con: object
    files: list
    features: list
    kind: str

    def sql(self, query: str, *params):
        return self.con.execute(query.replace("{parts}", "read_parquet($files)"), {"files": self.files, **dict(params)})


def _scan(out) -> _Scan:
    import os

    import duckdb

    m = manifest(out)
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit='{int(os.environ.get('STUDIO_BATCH_MEMORY') or 2**30)}B'")
    con.execute("SET threads=2")
    files = [str(Path(out) / p["file"]) for p in m["partitions"]]
    return _Scan(con, files, list(m.get("feature_names") or []), m.get("kind", "attribution"))


def _q(name: str) -> str:
    """A column name as a quoted SQL identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def _need_attributions(scan: _Scan) -> None:
    if scan.kind != "attribution" or not scan.features:
        raise StudioError("these results hold no per-feature attributions (a rule method, or images); "
                          "summaries need a tabular attribution method such as shap")


def importance(out):
    """Mean |attribution| and mean attribution per feature over all explained rows.

    Returns
    -------
    DataFrame with columns feature, mean_abs, mean, rows
        Sorted by ``mean_abs``, largest first.
    """
    import pandas as pd

    scan = _scan(out)
    _need_attributions(scan)
    cols = ", ".join(f"avg(abs({_q('attr:' + f)})), avg({_q('attr:' + f)})" for f in scan.features)
    row = scan.sql(f"SELECT count(*), {cols} FROM {{parts}}").fetchone()
    n = int(row[0])
    frame = pd.DataFrame({"feature": scan.features, "mean_abs": np.asarray(row[1::2], dtype=float),
                          "mean": np.asarray(row[2::2], dtype=float), "rows": n})
    return frame.sort_values("mean_abs", ascending=False, kind="stable").reset_index(drop=True)


def rows(out) -> int:
    """How many rows the listed partitions hold (from the Parquet footers)."""
    scan = _scan(out)
    return int(scan.sql("SELECT count(*) FROM {parts}").fetchone()[0])


def dependence(out, feature: str, max_points: int = 5000, seed: int = 0):
    """A feature's values and attributions on a deterministic sample of at most ``max_points`` rows.

    Returns
    -------
    points : DataFrame with columns row_id, value, attribution, output
        Sorted by ``row_id``.
    total : int
        Rows in the results (the chart states ``len(points)`` of ``total``).
    """
    scan = _scan(out)
    _need_attributions(scan)
    if feature not in scan.features:
        raise StudioError(f"feature {feature!r} is not in these results; features: {', '.join(scan.features[:10])}")
    total = int(scan.sql("SELECT count(*) FROM {parts}").fetchone()[0])
    points = scan.sql(
        f"SELECT row_id, {_q('value:' + feature)} AS value, {_q('attr:' + feature)} AS attribution, output "
        f"FROM {{parts}} ORDER BY hash(row_id + $seed), row_id LIMIT $n",
        ("seed", int(seed)), ("n", int(max_points))).df()
    return points.sort_values("row_id", kind="stable").reset_index(drop=True), total


def by_subset(out, column: str, bins: int = 4):
    """Rows, mean output and mean |attribution| per feature in each group of ``column``.

    Parameters
    ----------
    column : str
        ``"prediction"``, ``"target"``, or a feature name (its explained values).
    bins : int
        Quantile bins for a column with more than :data:`MAX_GROUPS` distinct
        values: edges at the exact ``k/bins`` quantiles (``quantile_disc``),
        group ``i`` holding values in ``(edge[i-1], edge[i]]`` (the first also
        takes the minimum).

    Returns
    -------
    groups : DataFrame with columns group, rows, mean_output, then one ``mean_abs:<feature>`` per feature
    edges : list of float or None
        The bin edges used (None when grouped by value).
    """
    import pandas as pd

    scan = _scan(out)
    _need_attributions(scan)
    source = column if column in ("prediction", "target") else "value:" + column
    if column not in ("prediction", "target") and column not in scan.features:
        raise StudioError(f"{column!r} is neither prediction, target nor a feature of these results")
    col = _q(source)
    distinct = int(scan.sql(f"SELECT count(DISTINCT {col}) FROM {{parts}}").fetchone()[0])
    means = ", ".join(f"avg(abs({_q('attr:' + f)})) AS {_q('mean_abs:' + f)}" for f in scan.features)
    edges = None
    if distinct <= MAX_GROUPS:
        key = f"CAST({col} AS VARCHAR)"
    else:
        qs = [k / bins for k in range(1, bins)]
        edges = [float(e) for e in scan.sql(f"SELECT quantile_disc({col}, $qs) FROM {{parts}}", ("qs", qs)).fetchone()[0]]
        edges = sorted(set(edges))
        case = " ".join(f"WHEN {col} <= {e!r} THEN {i}" for i, e in enumerate(edges))
        key = f"CASE {case} ELSE {len(edges)} END"
    frame = scan.sql(f"SELECT {key} AS grp, min({col}) AS lo, count(*) AS rows, avg(output) AS mean_output, {means} "
                     "FROM {parts} GROUP BY grp ORDER BY lo").df()
    if edges is not None:
        bounds = [None] + edges + [None]
        frame["grp"] = [_bin_label(bounds[int(g)], bounds[int(g) + 1]) for g in frame["grp"]]
    frame = frame.drop(columns=["lo"]).rename(columns={"grp": "group"})
    frame["rows"] = frame["rows"].astype(np.int64)
    return pd.DataFrame(frame), edges


def _bin_label(lo, hi) -> str:
    if lo is None:
        return f"<= {hi:.4g}"
    if hi is None:
        return f"> {lo:.4g}"
    return f"({lo:.4g}, {hi:.4g}]"


def importance_explanation(out):
    """:func:`importance` as an :class:`~studio.explanation.Explanation` of kind ``"importance"`` (for the charts).

    ``mean`` is the mean |attribution|; ``std`` is 0 (not computed).
    """
    from studio.explanation import Explanation, Importance

    m = manifest(out)
    imp = importance(out)
    exp = Explanation(method=f"mean |{m['method']}| (batch)", kind="importance",
                      feature_names=list(m.get("feature_names") or []), output_names=m.get("output_names"),
                      importances=[Importance(r.feature, float(r.mean_abs), 0.0) for r in imp.itertuples()],
                      checks={"rows": float(imp["rows"].iloc[0]) if len(imp) else 0.0})
    exp.model_id = (m.get("model") or {}).get("fingerprint") or ""
    exp.dataset_id = (m.get("data") or {}).get("sha256") or ""
    return exp
