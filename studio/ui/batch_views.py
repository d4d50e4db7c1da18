"""The Global page's "Batch results" section: summaries of a ``python -m studio batch`` output folder.

Everything is read by DuckDB scans of the folder's Parquet partitions
(:mod:`studio.batch.results`); no page holds all rows. Folders are accepted
only beneath ``STUDIO_BATCH_ROOT`` (default: the server's working folder), so
a shared server does not read arbitrary paths.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from studio.errors import StudioError

MAX_POINTS = 5000
"""Rows drawn in the dependence plot (a fixed sample; the chart title says how many of how many)."""


def batch_root() -> Path:
    return Path(os.environ.get("STUDIO_BATCH_ROOT") or os.getcwd()).resolve()


def resolve_folder(text: str) -> Path:
    """``text`` as a batch output folder beneath :func:`batch_root`, or StudioError."""
    root = batch_root()
    path = (root / text.strip()).resolve()
    if path != root and root not in path.parents:
        raise StudioError(f"batch folders are read only beneath {str(root)!r} (STUDIO_BATCH_ROOT); give a path inside it")
    if not (path / "manifest.json").is_file():
        raise StudioError(f"{text.strip()!r} has no manifest.json; give the --out folder of a `python -m studio batch` run")
    return path


@st.cache_data(show_spinner=False, max_entries=16)
def _summaries(folder: str, stamp: float):
    from studio.batch import results

    return results.manifest(folder), results.importance_explanation(folder)


@st.cache_data(show_spinner=False, max_entries=64)
def _dependence(folder: str, stamp: float, feature: str):
    from studio.batch import results

    return results.dependence(folder, feature, max_points=MAX_POINTS)


@st.cache_data(show_spinner=False, max_entries=64)
def _subsets(folder: str, stamp: float, column: str, bins: int):
    from studio.batch import results

    return results.by_subset(folder, column, bins=bins)


def render_batch_section() -> None:
    """Folder input, then mean |attribution|, a dependence plot and values by subset."""
    from studio import charts
    from studio.charts.batch import dependence_chart, subset_chart

    st.divider()
    st.subheader("Batch results")
    st.caption("Summaries of a `python -m studio batch` run over a whole dataset, read from its Parquet files "
               f"with DuckDB (folders beneath {batch_root()}).")
    text = st.text_input("Batch output folder", key="batch-folder", placeholder="results/")
    if not text.strip():
        return
    try:
        folder = resolve_folder(text)
        stamp = (folder / "manifest.json").stat().st_mtime
        manifest, importance = _summaries(str(folder), stamp)
    except StudioError as exc:
        st.error(str(exc))
        return
    rows = int(importance.checks.get("rows", 0))
    done = len(manifest["partitions"])
    state = "complete" if manifest.get("complete") else "incomplete: run the same command again to finish it"
    st.markdown(f"**{manifest['method']}** on {rows:,} rows of `{Path(manifest['data']['path']).name}` with "
                f"`{manifest['model']['name']}` ({done} partitions, {state}).")
    if manifest.get("kind") != "attribution" or not manifest.get("feature_names"):
        st.info("These results hold no per-feature attributions; summaries need a tabular attribution method such as shap.")
        return
    st.altair_chart(charts.importance_bars(importance, unit=f"mean |{manifest['method']} value| over {rows:,} rows"),
                    width="stretch")
    features = list(manifest["feature_names"])
    c1, c2 = st.columns(2)
    with c1:
        feature = st.selectbox("Dependence of", features, key="batch-feature")
        points, total = _dependence(str(folder), stamp, feature)
        st.altair_chart(dependence_chart(points, feature, total, manifest["method"]), width="stretch")
        st.caption(f"{len(points):,} of {total:,} rows, a fixed sample (the rows with the smallest hash of their id).")
    with c2:
        column = st.selectbox("Values by subset of", ["prediction", "target"] + features, key="batch-subset")
        bins = st.number_input("Bins (columns with many values)", 2, 10, 4, key="batch-bins")
        try:
            groups, edges = _subsets(str(folder), stamp, column, int(bins))
        except StudioError as exc:
            st.error(str(exc))
            return
        st.altair_chart(subset_chart(groups, column, features), width="stretch")
        table = groups[["group", "rows", "mean_output"]].rename(columns={"mean_output": "mean output (explained class)"})
        st.dataframe(table, hide_index=True, width="stretch")
        if edges is not None:
            st.caption(f"{column} cut at its exact quantiles: {', '.join(f'{e:.4g}' for e in edges)}.")
