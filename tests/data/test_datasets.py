"""Datasets load from every accepted format, with labels and fingerprints."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest

import studio
from studio.errors import StudioError
from tests.conftest import SAMPLE_DATA


def test_csv_sample(table):
    assert table.kind == "tabular" and table.x.shape == (569, 30)
    assert table.label == "target" and table.y.tolist().count(1) == 357
    assert table.feature_names[0] == "mean radius"
    assert len(table.fingerprint) == 64


def test_parquet_equals_csv(tmp_path, table):
    frame = pd.read_csv(SAMPLE_DATA / "breast_cancer.csv")
    frame.to_parquet(tmp_path / "d.parquet")
    data = studio.load_dataset(tmp_path / "d.parquet")
    np.testing.assert_array_equal(data.x, table.x)
    assert data.fingerprint == table.fingerprint


def test_label_by_name_and_by_model_features(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2, 3], "b": [0.5, 0.1, 0.2], "outcome": [0, 1, 0]})
    frame.to_csv(tmp_path / "d.csv", index=False)
    assert studio.load_dataset(tmp_path / "d.csv", label="outcome").feature_names == ["a", "b"]
    assert studio.load_dataset(tmp_path / "d.csv", feature_names=["a", "b"]).label == "outcome"
    assert studio.load_dataset(tmp_path / "d.csv").label is None
    with pytest.raises(StudioError, match="label column 'nope'"):
        studio.load_dataset(tmp_path / "d.csv", label="nope")


def test_semicolon_csv_and_categoricals(tmp_path):
    (tmp_path / "d.csv").write_text("colour;size;label\nred;1.5;0\nblue;2.5;1\nred;0.5;1\n")
    data = studio.load_dataset(tmp_path / "d.csv")
    assert data.feature_names == ["colour", "size"] and data.categorical == ["colour"]
    assert data.x.dtype == object


def test_fingerprint_changes_with_content(tmp_path):
    pd.DataFrame({"a": [1.0, 2.0], "y": [0, 1]}).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame({"a": [1.0, 2.5], "y": [0, 1]}).to_csv(tmp_path / "b.csv", index=False)
    assert studio.load_dataset(tmp_path / "a.csv").fingerprint != studio.load_dataset(tmp_path / "b.csv").fingerprint


def test_zip_sample(digits):
    assert digits.kind == "image" and digits.x.shape == (360, 1, 32, 32)
    assert digits.x.dtype == np.float32 and 0 <= digits.x.min() and digits.x.max() <= 1
    assert digits.class_names == [str(i) for i in range(10)]


def _png(arr):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_image_folder_rgb(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "imgs" / cls / f"{i}.png").write_bytes(_png(rng.integers(0, 255, (8, 10, 3), dtype=np.uint8)))
    data = studio.load_dataset(tmp_path / "imgs")
    assert data.x.shape == (6, 3, 8, 10) and data.class_names == ["cat", "dog"]
    assert data.y.tolist() == [0, 0, 0, 1, 1, 1]


def test_zip_with_top_folder_and_mixed_sizes(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("set/a/1.png", _png(np.zeros((4, 4), np.uint8)))
        zf.writestr("set/b/1.png", _png(np.zeros((4, 4), np.uint8)))
    data = studio.load_dataset(buf.getvalue(), name="s.zip")
    assert data.class_names == ["a", "b"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/1.png", _png(np.zeros((4, 4), np.uint8)))
        zf.writestr("b/1.png", _png(np.zeros((5, 4), np.uint8)))
    with pytest.raises(StudioError, match="differ in size"):
        studio.load_dataset(buf.getvalue(), name="s.zip")


def test_zip_path_traversal_refused():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../evil/1.png", _png(np.zeros((4, 4), np.uint8)))
    with pytest.raises(StudioError, match="unsafe path"):
        studio.load_dataset(buf.getvalue(), name="s.zip")


def test_npz_table_and_images(tmp_path):
    np.savez(tmp_path / "t.npz", x=np.random.rand(10, 3), y=np.arange(10) % 2)
    data = studio.load_dataset(tmp_path / "t.npz")
    assert data.kind == "tabular" and data.x.shape == (10, 3) and data.y.tolist()[:2] == [0, 1]
    np.savez(tmp_path / "i.npz", x=np.zeros((4, 8, 8, 3), np.uint8), y=np.array([0, 1, 0, 1]))
    data = studio.load_dataset(tmp_path / "i.npz")
    assert data.kind == "image" and data.x.shape == (4, 3, 8, 8)
    np.savez(tmp_path / "n.npz", z=np.zeros(3))
    with pytest.raises(StudioError, match="no array named 'x'"):
        studio.load_dataset(tmp_path / "n.npz")


def test_alignment_reorders_columns_and_reports_mismatch(gbt, table, tmp_path):
    frame = pd.read_csv(SAMPLE_DATA / "breast_cancer.csv")
    shuffled = frame[list(reversed(frame.columns))]
    shuffled.to_csv(tmp_path / "r.csv", index=False)
    data = studio.load_dataset(tmp_path / "r.csv").aligned_to(gbt)
    np.testing.assert_array_equal(data.x, table.x)
    frame.drop(columns=["mean radius"]).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(StudioError, match="lacks feature"):
        studio.load_dataset(tmp_path / "m.csv").aligned_to(gbt)


@pytest.mark.parametrize(
    "content,message",
    [(b"", "empty"), (b"a,b,target\n", "no rows"), (b"a,b\n1,inf\n", "infinite")],
)
def test_broken_tables(content, message):
    with pytest.raises(StudioError, match=message):
        studio.load_dataset(content, name="d.csv")


@pytest.fixture(scope="module")
def wine_cultivar(tmp_path_factory):
    """(model, csv path): a held-out logistic regression on the wine data, whose label column is 'cultivar'."""
    import skops.io as sio
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    wine = load_wine(as_frame=True)
    frame = wine.frame.rename(columns={"target": "cultivar"})
    features = [c for c in frame.columns if c != "cultivar"]
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(frame[features], frame["cultivar"])
    folder = tmp_path_factory.mktemp("wine")
    # the label sits in the middle, where no "last column" rule would find it
    frame = frame[features[:5] + ["cultivar"] + features[5:]]
    frame.to_csv(folder / "wine.csv", index=False)
    sio.dump(est, folder / "wine.skops")
    return studio.load_model(folder / "wine.skops"), folder / "wine.csv"


def test_explain_finds_the_label_column_the_model_does_not_use_as_the_cli_does(wine_cultivar, capsys):
    """``studio.explain(model, studio.load_dataset(path))`` and ``--data path`` agree on the label (one rule)."""
    from studio.cli import main

    model, csv = wine_cultivar
    alone = studio.load_dataset(csv)
    assert alone.label is None and "cultivar" in alone.feature_names  # the table alone cannot tell
    aligned = alone.aligned_to(model)
    assert aligned.label == "cultivar" and aligned.feature_names == model.feature_names
    assert aligned.y.tolist() == pd.read_csv(csv)["cultivar"].tolist() and aligned.class_names == ["0", "1", "2"]
    exp = studio.explain(model, alone, "permutation_importance", params={"n_repeats": 2}, cache=False)
    assert [i.feature for i in exp.importances] and {i.feature for i in exp.importances} == set(model.feature_names)
    assert main(["explain", "--model", str(csv.with_name("wine.skops")), "--data", str(csv),
                 "--method", "permutation_importance", "--param", "n_repeats=2", "--no-cache"]) == 0
    cli = __import__("json").loads(capsys.readouterr().out)
    assert cli["dataset"]["id"] == exp.dataset_id
    assert {i["feature"]: i["mean"] for i in cli["importances"]} == pytest.approx({i.feature: i.mean for i in exp.importances})


def test_label_rule_needs_exactly_one_unused_column():
    from studio.data.tabular import label_column

    assert label_column(["a", "b", "y", "c"], ["a", "b", "c"]) == "y"
    assert label_column(["a", "b", "kind"], ["a", "b"]) == "kind"
    assert label_column(["a", "b", "kind", "note"], ["a", "b"]) is None
    assert label_column(["a", "kind"], ["a", "b"]) is None  # a feature is missing: no guess
    assert label_column(["a", "kind"], None) is None


def test_dataset_and_model_print_as_one_line(table, digits, gbt, cnn):
    for obj, words in (
        (table, ["'breast_cancer.csv'", "569 rows x 30 features", "label='target'"]),
        (digits, ["'digits.zip'", "360 images 1x32x32", "classes=10"]),
        (gbt, ["'tabular_gbt.skops'", "skops", "classification (2 classes)", "30 features"]),
        (cnn, ["'image_cnn.pt'", "torchscript", "10 classes", "1x32x32"]),
    ):
        text = repr(obj)
        assert "\n" not in text and len(text) < 200, text
        assert all(w in text for w in words), text
        assert str(obj) == text
