"""The data overview: statistics on every row, and the flags."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import skew

from studio.data import Dataset
from studio.data.profile import profile, samples_per_class


def _table(frame, y=None):
    return Dataset(kind="tabular", x=frame.to_numpy(dtype=object), y=y, feature_names=list(frame.columns),
                   frame=frame, categorical=[c for c in frame.columns if frame[c].dtype == object])


def test_table_statistics_match_pandas_and_scipy(table):
    p = profile(table)
    f = p.features.set_index("feature")
    for name in table.feature_names[:10]:
        col = table.frame[name]
        assert f.loc[name, "count"] == col.notna().sum()
        assert f.loc[name, "distinct"] == col.nunique()
        assert f.loc[name, "min"] == col.min() and f.loc[name, "max"] == col.max()
        np.testing.assert_allclose(f.loc[name, "mean"], col.mean(), rtol=1e-12)
        np.testing.assert_allclose(f.loc[name, "skew"], skew(col.to_numpy()), rtol=1e-9)
    assert p.classes["count"].sum() == len(table)
    flagged = {fl.subject for fl in p.flags if fl.kind == "skew"}
    expect = {n for n in table.feature_names if abs(skew(table.frame[n].to_numpy())) > 2}
    assert flagged == expect and expect


def test_flags_missing_constant_imbalance():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=100), "const": np.ones(100), "cat": ["x", "y"] * 50})
    frame.loc[[3, 7], "a"] = np.nan
    y = np.array([0] * 95 + [1] * 5)
    p = profile(_table(frame, y))
    kinds = {(fl.kind, fl.subject) for fl in p.flags}
    assert ("missing", "a") in kinds and ("constant", "const") in kinds and ("imbalance", "label") in kinds
    f = p.features.set_index("feature")
    assert f.loc["a", "missing"] == 2 and f.loc["a", "count"] == 98
    assert f.loc["cat", "type"] == "categorical" and f.loc["cat", "distinct"] == 2
    balanced = profile(_table(frame, np.array([0, 1] * 50)))
    assert not [fl for fl in balanced.flags if fl.kind == "imbalance"]


def test_image_profile_and_samples(digits):
    p = profile(digits)
    assert list(p.features["channel"]) == [0]
    np.testing.assert_allclose(p.features["mean"][0], digits.x.mean(), rtol=1e-6)
    assert p.features["height"][0] == 32
    assert p.classes["count"].sum() == len(digits)
    grid = samples_per_class(digits, k=3)
    assert len(grid) == 10
    for cls, rows in grid.items():
        assert len(rows) == 3
        assert all(digits.class_names[digits.y[r]] == cls for r in rows)
