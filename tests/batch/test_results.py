"""Batch summaries read by DuckDB scans equal the same summaries computed with numpy on all rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from studio.batch import results
from studio.errors import StudioError
from tests.batch.conftest import FEATURES, ROWS


@pytest.fixture(scope="module")
def everything(two_workers):
    """All rows loaded with pandas: the reference the scans are checked against."""
    return pd.concat([pd.read_parquet(f) for f in two_workers.files], ignore_index=True)


def test_importance_is_the_mean_absolute_attribution(two_workers, everything):
    imp = results.importance(two_workers.out)
    values = everything[[f"attr:{f}" for f in FEATURES]].to_numpy()  # (ROWS, n_features)
    want = np.abs(values).mean(axis=0)
    got = imp.set_index("feature").loc[FEATURES]
    np.testing.assert_allclose(got["mean_abs"].to_numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(got["mean"].to_numpy(), values.mean(axis=0), rtol=1e-9, atol=1e-12)
    assert (imp["rows"] == ROWS).all() and list(imp["mean_abs"]) == sorted(imp["mean_abs"], reverse=True)
    exp = results.importance_explanation(two_workers.out)
    assert exp.kind == "importance" and [i.feature for i in exp.importances] == list(imp["feature"])


def test_dependence_is_a_fixed_sample_of_real_rows(two_workers, everything):
    points, total = results.dependence(two_workers.out, "debt", max_points=500, seed=3)
    assert total == ROWS and len(points) == 500 and points["row_id"].is_unique
    rows = everything.set_index("row_id").loc[points["row_id"]]
    assert np.array_equal(points["value"].to_numpy(), rows["value:debt"].to_numpy())
    assert np.array_equal(points["attribution"].to_numpy(), rows["attr:debt"].to_numpy())
    again, _ = results.dependence(two_workers.out, "debt", max_points=500, seed=3)
    other, _ = results.dependence(two_workers.out, "debt", max_points=500, seed=4)
    assert again.equals(points) and not other["row_id"].equals(points["row_id"])
    # spread over the whole range of rows, not the first partition
    assert points["row_id"].min() < ROWS // 10 and points["row_id"].max() > ROWS - ROWS // 10


def test_values_by_subset_match_numpy(two_workers, everything):
    groups, edges = results.by_subset(two_workers.out, "region")  # four distinct values: one group each
    assert edges is None
    for g in groups.itertuples():
        mine = everything[everything["value:region"].astype(str) == g.group]
        assert g.rows == len(mine)
        assert g.mean_output == pytest.approx(mine["output"].mean(), rel=1e-12)
    got = groups.set_index("group")[[f"mean_abs:{f}" for f in FEATURES]]
    want = everything.assign(group=everything["value:region"].astype(str)).groupby("group")[
        [f"attr:{f}" for f in FEATURES]].apply(lambda d: d.abs().mean())
    np.testing.assert_allclose(got.loc[want.index].to_numpy(), want.to_numpy(), rtol=1e-12)

    binned, edges = results.by_subset(two_workers.out, "income", bins=4)
    values = everything["value:income"].to_numpy()
    assert len(edges) == 3 and all(e in set(values) for e in edges)
    which = np.searchsorted(np.asarray(edges), values, side="left")  # (ROWS,) bin i holds (edge[i-1], edge[i]]
    assert binned["rows"].tolist() == np.bincount(which, minlength=4).tolist()
    assert all(abs(n - ROWS / 4) <= 1 for n in binned["rows"])
    attr = np.abs(everything["attr:income"].to_numpy())
    np.testing.assert_allclose(binned["mean_abs:income"].to_numpy(),
                               [attr[which == i].mean() for i in range(4)], rtol=1e-12)


def test_bad_folders_and_columns_are_refused(two_workers, tmp_path):
    with pytest.raises(StudioError, match="no manifest.json"):
        results.importance(tmp_path)
    with pytest.raises(StudioError, match="not in these results"):
        results.dependence(two_workers.out, "nope")
    with pytest.raises(StudioError, match="neither prediction"):
        results.by_subset(two_workers.out, 'x"; DROP TABLE t; --')
