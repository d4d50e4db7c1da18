"""XGBoost, LightGBM and CatBoost files: names from the file or the card; damaged or hostile files refused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import studio
from studio.errors import StudioError
from studio.models.loaders import detect_format, json_depth, ubjson_depth


def _load(source, **kw):
    """In this process: the loaders' own checks are what is tested (the sandbox worker runs the same code)."""
    return studio.load_model(source, sandbox="off", **kw)


def _frame(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    return x, (x["a"] + x["b"] > 0).astype(int).to_numpy()


@pytest.fixture(scope="module")
def xgb_files(tmp_path_factory):
    import xgboost as xgb

    folder = tmp_path_factory.mktemp("xgb")
    x, y = _frame()
    est = xgb.XGBClassifier(n_estimators=4, max_depth=2).fit(x, y)
    est.save_model(folder / "m.json")
    est.save_model(folder / "m.ubj")
    return folder


@pytest.fixture(scope="module")
def lgb_text():
    import lightgbm as lgb

    x, y = _frame()
    return lgb.LGBMClassifier(n_estimators=3, num_leaves=4, verbose=-1).fit(x.to_numpy(), y).booster_.model_to_string()


def test_names_from_the_file_or_the_card(tmp_path, xgb_files, lgb_text):
    model = _load(xgb_files / "m.json")
    assert model.feature_names == ["a", "b", "c"] and model.class_names == ["0", "1"]
    (tmp_path / "m.txt").write_text(lgb_text)  # LightGBM fitted on an array: generic names, no labels
    model = _load(tmp_path / "m.txt")
    assert model.feature_names is None and model.class_names == ["0", "1"]
    card = {"feature_names": ["x", "y", "z"], "class_names": ["no", "yes"], "task": "classification"}
    model = _load(tmp_path / "m.txt", card=card)
    assert model.feature_names == ["x", "y", "z"] and model.class_names == ["no", "yes"]
    with pytest.raises(StudioError, match="class names"):
        _load(tmp_path / "m.txt", card={"class_names": ["a", "b", "c"]})
    with pytest.raises(StudioError, match="regression"):
        _load(tmp_path / "m.txt", card={"task": "regression"})


def test_catboost_class_labels_from_the_file(tmp_path):
    import catboost as cb

    x, y = _frame()
    est = cb.CatBoostClassifier(iterations=3, depth=2, verbose=0, thread_count=1, allow_writing_files=False).fit(x, np.array(["no", "yes"])[y])
    est.save_model(str(tmp_path / "m.cbm"))
    model = _load(tmp_path / "m.cbm")
    assert model.class_names == ["no", "yes"] and model.feature_names == ["a", "b", "c"]
    np.testing.assert_allclose(model.predict_proba(x.to_numpy()), est.predict_proba(x), atol=1e-12)


def test_suffixes_are_named_in_the_message():
    with pytest.raises(StudioError, match=r"\.ubj.*\.lgb.*\.cbm.*XGBoost.*LightGBM.*CatBoost"):
        detect_format(b"x", "model.xgb")


def test_json_that_is_not_xgboost_is_refused(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(StudioError, match="not an XGBoost model"):
        _load(tmp_path / "m.json")


def test_deep_json_refused_before_parsing(tmp_path):
    deep = b"[" * 100_000 + b"]" * 100_000  # json.loads would recurse; the depth scan refuses first
    assert json_depth(deep) == 100_000 and json_depth(b'{"a": "[[[[", "b": [1]}') == 2
    (tmp_path / "m.json").write_bytes(deep)
    with pytest.raises(StudioError, match="nested deeper"):
        _load(tmp_path / "m.json")


def test_oversized_json_refused(tmp_path, xgb_files, monkeypatch):
    monkeypatch.setenv("STUDIO_MAX_JSON_BYTES", "100")
    with pytest.raises(StudioError, match="STUDIO_MAX_JSON_BYTES"):
        _load(xgb_files / "m.json")


def test_ubjson_walk(xgb_files):
    data = (xgb_files / "m.ubj").read_bytes()
    assert 2 < ubjson_depth(data) < 20
    for bad in (data[: len(data) // 2], data + b"{", b"[" * 200 + b"]" * 200):
        with pytest.raises(ValueError) if bad[:1] != b"[" else pytest.raises(StudioError, match="nested deeper"):
            if bad[:1] == b"[":
                _load(bad, name="m.ubj")
            else:
                ubjson_depth(bad)


@pytest.mark.parametrize("cut", [0.3, 0.7])
def test_truncated_files_refused(xgb_files, lgb_text, cut):
    ubj = (xgb_files / "m.ubj").read_bytes()
    js = (xgb_files / "m.json").read_bytes()
    for data, name in ((ubj, "m.ubj"), (js, "m.json"), (lgb_text.encode(), "m.txt")):
        with pytest.raises(StudioError):
            _load(data[: int(len(data) * cut)], name=name)


def test_xgboost_tree_index_out_of_range_refused(xgb_files):
    model = json.loads((xgb_files / "m.json").read_text())
    tree = model["learner"]["gradient_booster"]["model"]["trees"][0]
    tree["split_indices"][0] = 1000
    with pytest.raises(StudioError, match="split feature index out of range"):
        _load(json.dumps(model).encode(), name="m.json")
    tree["split_indices"][0] = 0
    tree["left_children"][0] = 10_000
    with pytest.raises(StudioError, match="child index out of range"):
        _load(json.dumps(model).encode(), name="m.json")
    tree["left_children"][0] = 1
    tree["parents"][1] = 83_886_080  # found by fuzzing the .ubj: XGBoost's own loader crashed on it
    with pytest.raises(StudioError, match="parent index out of range"):
        _load(json.dumps(model).encode(), name="m.json")
    tree["parents"][1] = 0
    model["learner"]["gradient_booster"]["model"]["iteration_indptr"][0] = -36
    with pytest.raises(StudioError, match="iteration index"):
        _load(json.dumps(model).encode(), name="m.json")


def test_lightgbm_tree_index_out_of_range_refused(lgb_text):
    lines = [line for line in lgb_text.splitlines() if not line.startswith("tree_sizes=")]  # sizes would not match
    resized = lgb_text.replace("split_gain=", "split_gain=0 ", 1)
    with pytest.raises(StudioError, match="tree_sizes disagree"):
        _load(resized.encode(), name="m.txt")
    i = next(k for k, line in enumerate(lines) if line.startswith("split_feature="))
    bad = lines.copy()
    bad[i] = "split_feature=" + " ".join(["77"] * len(lines[i].split("=")[1].split()))
    with pytest.raises(StudioError, match="split feature index out of range"):
        _load("\n".join(bad).encode(), name="m.txt")
    j = next(k for k, line in enumerate(lines) if line.startswith("left_child="))
    bad = lines.copy()
    bad[j] = "left_child=" + " ".join(["55"] * len(lines[j].split("=")[1].split()))
    with pytest.raises(StudioError, match="child index out of range"):
        _load("\n".join(bad).encode(), name="m.txt")


@pytest.mark.parametrize("data,name,fragment", [
    (b"CBM1" + bytes(range(256)) * 4, "m.cbm", "CatBoost could not read it"),
    (b"not a catboost model", "m.cbm", "no CBM1 header"),
    (b"\x00\x01binary", "m.txt", "does not start with 'tree'"),
    (b"tree\nversion=v4\n\xff\xfe", "m.txt", "not UTF-8"),
    (b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner", "m.ubj", "not valid UBJSON"),
])
def test_garbage_is_one_studio_error(data, name, fragment):
    with pytest.raises(StudioError, match=fragment):
        _load(data, name=name)


def test_xgboost_categorical_model_takes_the_category_codes(tmp_path):
    """A model trained with enable_categorical: the studio passes the codes as XGBoost's categorical features."""
    import xgboost as xgb

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300), "c": pd.Categorical(rng.integers(0, 4, 300))})
    y = ((frame["a"] > 0) ^ (frame["c"].cat.codes % 2 == 0)).astype(int)
    est = xgb.XGBClassifier(n_estimators=5, max_depth=3, enable_categorical=True).fit(frame, y)
    est.save_model(tmp_path / "cat.json")
    model = _load(tmp_path / "cat.json")
    x = np.c_[frame["a"].to_numpy(), frame["c"].cat.codes.to_numpy()]
    np.testing.assert_allclose(model.predict_proba(x), est.predict_proba(frame), rtol=0, atol=1e-6)
    values, base = model.tree_shap(x)
    np.testing.assert_allclose(base + values.sum(axis=1), model.margin(x), atol=1e-5)
