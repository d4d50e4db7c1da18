"""Large tables (studio.data.large): DuckDB's answers over the file equal pandas' on the same table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from studio.charts.data import histogram_frame
from studio.data import large as lt
from studio.data.profile import profile_table
from studio.data.tabular import table_dataset
from studio.errors import StudioError
from studio.evaluation import Condition, apply_conditions

ROWS = 30_000
ODD = 'x"; DROP TABLE t; --'  # a column name that would end a statement if pasted into SQL


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A 30k-row Parquet table with missing values, skew, integers, text, an odd column name and a label."""
    rng = np.random.default_rng(7)
    b = rng.normal(3, 2, ROWS)
    b[rng.random(ROWS) < 0.1] = np.nan
    frame = pd.DataFrame({
        "a": rng.normal(size=ROWS),
        "b": b,
        "c": rng.integers(-5, 50, ROWS),
        "d": rng.exponential(2.0, ROWS),
        "e": rng.choice(["red", "green", "blue", "it's"], ROWS),
        ODD: rng.normal(10, 1, ROWS),
        "target": rng.integers(0, 2, ROWS),
    })
    path = tmp_path_factory.mktemp("large") / "mid.parquet"
    frame.to_parquet(path, index=False)
    return frame, lt.LargeTable(path, path.name, "test")


def test_summary_equals_pandas(table):
    frame, t = table
    summary = t.summary().set_index("feature")
    expected = profile_table(table_dataset(frame, label="target")).features.set_index("feature")
    for name, row in expected.iterrows():
        got = summary.loc[name]
        assert (got["count"], got["missing"]) == (row["count"], row["missing"]), name
        assert got["type"] == row["type"]
        if row["type"] == "numeric":
            assert got["mean"] == pytest.approx(row["mean"], rel=1e-12, abs=1e-12), name
            assert (got["min"], got["max"]) == (row["min"], row["max"]), name
            assert got["skew"] == pytest.approx(row["skew"], rel=1e-9, abs=1e-12), name
            values = frame[name].dropna().to_numpy(dtype=float)
            assert list(t.quartiles(name)) == pytest.approx(
                np.percentile(values, [25, 50, 75]), rel=1e-12, abs=1e-12), name
        assert abs(got["distinct"] - row["distinct"]) <= max(2, 0.05 * row["distinct"]), name  # HyperLogLog


def test_histograms_and_label_counts_equal_pandas(table):
    frame, t = table
    for name in ["a", "b", "c", "d", "e", ODD]:
        got, numeric = t.histogram(name, 20)
        want, want_numeric = histogram_frame(frame[name], 20)
        assert numeric == want_numeric
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False)
        assert t.distributions(20)[name] == [int(n) for n in want["count"]]
    from studio.data.profile import class_counts

    pd.testing.assert_frame_equal(t.class_counts("target"), class_counts(frame["target"].to_numpy()),
                                  check_dtype=False)


CONDITIONS = [
    [Condition("a", ">", "0.5")],
    [Condition("b", "!=", "3")],  # missing cells match != as pandas' NaN != 3
    [Condition("b", "<=", 3.0), Condition("c", ">=", "10")],
    [Condition("c", "in", "1, 2,3.0")],
    [Condition("e", "==", "it's")],
    [Condition("e", "!=", "red"), Condition("target", "==", "1")],
    [Condition("e", "in", "red,blue")],
    [Condition(ODD, "<", "9.5")],
    [Condition("e", "==", "'; DROP VIEW t; --")],  # a value that would end a statement: data, matching nothing
]


@pytest.mark.parametrize("conds", CONDITIONS, ids=lambda c: " AND ".join(x.text() for x in c)[:40])
def test_counts_equal_pandas(table, conds):
    frame, t = table
    assert t.count(conds) == int(apply_conditions(frame, conds).sum())
    assert np.array_equal(lt.condition_mask(frame, conds), apply_conditions(frame, conds))


def test_members_meet_the_conditions_and_are_repeatable(table):
    frame, t = table
    conds = [Condition("a", ">", "1"), Condition("e", "==", "green")]
    members = t.members(conds, k=50)
    assert len(members) == 50
    assert apply_conditions(members, conds).all()
    pd.testing.assert_frame_equal(members, frame.loc[members.index], check_dtype=False)  # index = file row
    pd.testing.assert_frame_equal(members, t.members(conds, k=50))


def test_injection_looking_text_is_data(table):
    _, t = table
    assert lt.quote(ODD) == '"x""; DROP TABLE t; --"'
    assert t.count([Condition("e", "==", "x' OR '1'='1")]) == 0
    with pytest.raises(StudioError, match="is numeric"):
        t.count([Condition("a", ">", "0 OR 1=1")])
    with pytest.raises(StudioError, match="no column"):
        t.count([Condition("a) OR (1=1", ">", "0")])
    assert t.count([]) == ROWS  # the view is still there


def test_load_dataset_opens_a_large_table_with_a_stated_sample(table, monkeypatch, tmp_path):
    import studio

    frame, t = table
    monkeypatch.setenv("STUDIO_LARGE_ROWS", "10000")
    monkeypatch.setenv("STUDIO_SAMPLE_ROWS", "2000")
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path))
    assert studio.load_dataset(t.path).large is None  # not asked: read whole, as before
    data = studio.load_dataset(t.path.read_bytes(), name="mid.parquet", label="target", large_tables=True)
    assert data.large.n_rows == ROWS and len(data) == 2000
    rows = np.sort(np.random.default_rng(0).choice(ROWS, 2000, replace=False))
    pd.testing.assert_frame_equal(data.frame, frame.drop(columns="target").iloc[rows].reset_index(drop=True),
                                  check_dtype=False)
    assert np.array_equal(data.y, frame["target"].to_numpy()[rows])
    assert "uniform sample of 2,000 of 30,000 rows" in data.notes[-1]
    assert len(list((tmp_path / "tables").glob("*.parquet"))) == 1  # the upload is written once
    again = studio.load_dataset(t.path.read_bytes(), name="mid.parquet", label="target", large_tables=True)
    assert again.fingerprint == data.fingerprint
    csv = studio.load_dataset(frame.to_csv(index=False).encode(), name="mid.csv", label="target", large_tables=True)
    assert csv.large.n_rows == ROWS and csv.large.count([Condition("a", ">", "0.5")]) == int((frame["a"] > 0.5).sum())


def test_subset_conditions_on_the_file(table):
    from studio.data.large import file_conditions

    frame, t = table
    data = table_dataset(frame.head(500), label="target")
    pred = pd.DataFrame({"row": range(500), "label": np.where(frame["target"].head(500) == 1, "yes", "no"),
                         "prediction": "yes", "correct": True})
    conds = file_conditions([Condition("label", "==", "yes"), Condition("a (feature)", ">", "0")], data, pred)
    assert conds == [Condition("target", "in", ["1"]), Condition("a", ">", "0")]
    assert t.count(conds) == int(((frame["target"] == 1) & (frame["a"] > 0)).sum())
    assert file_conditions([Condition("correct", "==", "True")], data, pred) is None


def test_row_limit_of_large_tables(table, monkeypatch):
    _, t = table
    monkeypatch.setenv("STUDIO_LARGE_MAX_ROWS", "1000")
    with pytest.raises(StudioError, match="has 30000 rows, over the limit of 1000 for large tables.*STUDIO_LARGE_MAX_ROWS"):
        lt.open_table(None, t.path, t.name)
