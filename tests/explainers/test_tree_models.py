"""Conformance for the models users bring: train, save with the library's own call, load, explain.

Each case: a held-out model trained here, saved by its own library (skops,
XGBoost, LightGBM, CatBoost), loaded through ``studio.load_model``, with a
CSV dataset loaded through ``studio.load_dataset``. The studio's predictions
equal the native library's (1e-9; 1e-5 where the library computes in
float32), and ``shap``, ``permutation_importance`` and ``pdp`` run; SHAP is
additive on the output it explains (the margin for the boosters' native
TreeSHAP, equal to the library's own contributions).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import studio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
import skops_estimators as se  # noqa: E402

FEATURES = ["alpha", "beta", "gamma", "delta"]


def _load(path):
    """In this process (the files are our own): the loaders and adapters are what is tested here;
    ``test_booster_through_the_sandbox`` takes the default, sandboxed path once."""
    return studio.load_model(path, sandbox="off")


def _numeric(kind: str, n: int = 240, seed: int = 0):
    """A numeric frame and a target: ``binary``, ``multiclass`` (3 classes) or ``regression``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES)))
    score = x[:, 0] + 0.8 * x[:, 1] * x[:, 2] - 0.5 * x[:, 3] + 0.2 * rng.normal(size=n)
    y = {"binary": (score > 0).astype(int), "multiclass": np.digitize(score, [-0.6, 0.6]),
         "regression": 10 * score + 3}[kind]
    return pd.DataFrame(x, columns=FEATURES), y


def _save_data(tmp_path, frame, y):
    out = frame.copy()
    out["outcome"] = y
    path = tmp_path / "data.csv"
    out.to_csv(path, index=False)
    return studio.load_dataset(path, label="outcome")


def _xgboost(kind, tmp_path, suffix):
    import xgboost as xgb

    frame, y = _numeric(kind)
    cls = xgb.XGBRegressor if kind == "regression" else xgb.XGBClassifier
    est = cls(n_estimators=15, max_depth=3, random_state=0).fit(frame, y)
    path = tmp_path / f"model.{suffix}"
    est.save_model(path)
    booster = est.get_booster()

    def native(x):
        import xgboost as xgb

        dm = xgb.DMatrix(x, feature_names=FEATURES)
        out = booster.predict(dm)
        return np.c_[1 - out, out] if kind == "binary" else out

    def margin(x):
        return booster.predict(xgb.DMatrix(x, feature_names=FEATURES), output_margin=True)

    return path, frame, y, native, margin, 1e-5  # XGBoost predicts in float32


def _lightgbm(kind, tmp_path, suffix="txt"):
    import lightgbm as lgb

    frame, y = _numeric(kind)
    cls = lgb.LGBMRegressor if kind == "regression" else lgb.LGBMClassifier
    est = cls(n_estimators=15, num_leaves=8, random_state=0, verbose=-1).fit(frame, y)
    path = tmp_path / f"model.{suffix}"
    est.booster_.save_model(path)
    booster = lgb.Booster(model_file=path)

    def native(x):
        out = booster.predict(x)
        return np.c_[1 - out, out] if kind == "binary" else out

    return path, frame, y, native, lambda x: booster.predict(x, raw_score=True), 1e-9


def _catboost(kind, tmp_path, suffix="cbm"):
    import catboost as cb

    frame, y = _numeric(kind)
    cls = cb.CatBoostRegressor if kind == "regression" else cb.CatBoostClassifier
    est = cls(iterations=15, depth=3, random_seed=0, verbose=0, thread_count=1, allow_writing_files=False).fit(frame, y)
    path = tmp_path / f"model.{suffix}"
    est.save_model(str(path))

    def native(x):
        return est.predict(x) if kind == "regression" else est.predict_proba(x)

    return path, frame, y, native, lambda x: est.predict(x, prediction_type="RawFormulaVal"), 1e-9


BOOSTERS = [
    ("xgboost", "binary", "json"), ("xgboost", "multiclass", "ubj"), ("xgboost", "regression", "json"),
    ("lightgbm", "binary", "txt"), ("lightgbm", "multiclass", "txt"), ("lightgbm", "regression", "lgb"),
    ("catboost", "binary", "cbm"), ("catboost", "multiclass", "cbm"), ("catboost", "regression", "cbm"),
]
MAKERS = {"xgboost": _xgboost, "lightgbm": _lightgbm, "catboost": _catboost}
PDP = {"features": ["alpha", "beta:gamma"], "grid_resolution": 5, "max_rows": 60}
ROWS = [0, 7, 42]


def _explain_all(model, data, shap_params=None):
    shap_exp = studio.explain(model, data, "shap", rows=ROWS, params=shap_params or {"background": 30}, cache=False)
    pi = studio.explain(model, data, "permutation_importance", params={"n_repeats": 2, "max_rows": 120}, cache=False)
    pdp = studio.explain(model, data, "pdp", params=PDP, cache=False)
    assert shap_exp.values.shape == (len(ROWS), len(data.feature_names)) and np.all(np.isfinite(shap_exp.values))
    assert [i.feature for i in pi.importances] and all(np.isfinite(i.mean) for i in pi.importances)
    assert len(pdp.curves) == 2 and all(np.all(np.isfinite(c.average.astype(float))) for c in pdp.curves)
    return shap_exp


@pytest.mark.parametrize("library,kind,suffix", BOOSTERS, ids=[f"{a}-{b}-{c}" for a, b, c in BOOSTERS])
def test_booster_loads_predicts_and_explains(tmp_path, library, kind, suffix):
    path, frame, y, native, margin, tol = MAKERS[library](kind, tmp_path, suffix)
    model = _load(path)
    data = _save_data(tmp_path, frame, y)
    assert model.format == library and model.feature_names == FEATURES
    assert model.task == ("regression" if kind == "regression" else "classification")
    want = np.asarray(native(frame.to_numpy()), dtype=np.float64)
    want = want[:, None] if want.ndim == 1 else want
    np.testing.assert_allclose(model.output(data.x), want, rtol=0, atol=tol)
    if kind != "regression":
        assert model.class_names == [str(c) for c in range(want.shape[1])]
        assert np.allclose(model.output(data.x).sum(axis=1), 1.0)

    exp = _explain_all(model, data)
    assert exp.checks["path_tree"] == 1.0 and library in exp.provenance["algorithm"].lower()
    # additive on the margin it explains (to float32 precision for XGBoost), checked from the library itself
    m = np.asarray(margin(frame.to_numpy()[ROWS]), dtype=np.float64)
    m = m[:, None] if m.ndim == 1 else m
    if kind == "binary":
        m = np.c_[-m[:, 0], m[:, 0]]
    explained = m[np.arange(len(ROWS)), exp.target if exp.target is not None else [0] * len(ROWS)]
    gap = np.abs(exp.base_values + exp.values.sum(axis=1) - explained)
    scale = max(1.0, np.abs(explained).max())
    assert np.all(gap <= 1e-6 * scale) and exp.checks["additivity_gap"] <= 1e-6 * scale
    assert exp.checks.get("explains_margin", 0.0) == (0.0 if kind == "regression" else 1.0)


def test_booster_shap_equals_the_libraries_own_contributions(tmp_path):
    """The values are the library's own TreeSHAP (LightGBM's pred_contrib), per explained class."""
    import lightgbm as lgb

    path, frame, y, _, _, _ = _lightgbm("multiclass", tmp_path)
    model, data = _load(path), _save_data(tmp_path, frame, y)
    exp = studio.explain(model, data, "shap", rows=ROWS, target=2, cache=False)
    raw = lgb.Booster(model_file=path).predict(frame.to_numpy()[ROWS], pred_contrib=True).reshape(len(ROWS), 3, -1)
    np.testing.assert_allclose(exp.values, raw[:, 2, :-1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(exp.base_values, raw[:, 2, -1], rtol=0, atol=1e-12)


def test_pipeline_with_string_columns_through_the_whole_path(tmp_path):
    """One-hot on two string columns + imputer/scaler on numbers + forest, saved with skops, explained."""
    import skops.io as sio

    frame, y = se.user_pipeline_table(160)
    pipe = se.user_pipeline(15).fit(frame, y)
    sio.dump(pipe, tmp_path / "pipe.skops")
    model = _load(tmp_path / "pipe.skops")
    data = _save_data(tmp_path, frame, y)
    assert data.categorical and data.x.dtype == object  # the strings stay strings
    np.testing.assert_allclose(model.output(data.x), pipe.predict_proba(frame), rtol=0, atol=1e-9)
    shap_exp = studio.explain(model, data, "shap", rows=ROWS, params={"background": 20, "max_evals": 11},
                              cache=False)
    pi = studio.explain(model, data, "permutation_importance", params={"n_repeats": 2, "max_rows": 120}, cache=False)
    pdp = studio.explain(model, data, "pdp", params={"features": ["colour", "x1"], "grid_resolution": 5,
                                                       "max_rows": 60}, cache=False)
    assert shap_exp.checks["path_permutation"] == 1.0 and shap_exp.checks["additivity_gap"] < 1e-9
    assert {i.feature for i in pi.importances} == set(frame.columns)
    assert pdp.curves[0].categorical and list(pdp.curves[0].grid[0]) == sorted(set(frame["colour"]))


def test_knn_via_skops_predicts_and_explains(tmp_path):
    import skops.io as sio
    from sklearn.neighbors import KNeighborsClassifier

    frame, y = _numeric("multiclass")
    knn = KNeighborsClassifier(n_neighbors=7, algorithm="kd_tree").fit(frame, y)
    sio.dump(knn, tmp_path / "knn.skops")
    model = _load(tmp_path / "knn.skops")
    data = _save_data(tmp_path, frame, y)
    np.testing.assert_allclose(model.output(data.x), knn.predict_proba(frame), rtol=0, atol=1e-9)
    exp = _explain_all(model, data, {"background": 20, "max_evals": 9})
    assert exp.checks["path_permutation"] == 1.0 and exp.checks["additivity_gap"] < 1e-9


def test_booster_through_the_sandbox(tmp_path):
    """The default load runs the model in a worker: the same outputs and native TreeSHAP come back."""
    path, frame, y, native, _, _ = _lightgbm("multiclass", tmp_path)
    model = studio.load_model(path)
    data = _save_data(tmp_path, frame, y)
    assert model.format == "lightgbm" and model.class_names == ["0", "1", "2"] and model.n_features == 4
    np.testing.assert_allclose(model.output(data.x), native(frame.to_numpy()), rtol=0, atol=1e-9)
    exp = studio.explain(model, data, "shap", rows=ROWS, cache=False)
    assert exp.provenance["algorithm"].startswith("LightGBM native TreeSHAP") and exp.checks["explains_margin"] == 1.0


def _catboost_categorical(kind, tmp_path):
    """CatBoost on two string columns (one with a missing value, as CatBoost asks: the string "nan") and two
    numbers, ``cat_features`` given by name, saved with CatBoost's own ``save_model``."""
    import catboost as cb

    rng = np.random.default_rng(3)
    n = 200
    frame = pd.DataFrame({"colour": rng.choice(["red", "green", "blue"], n), "alpha": rng.normal(size=n),
                          "shape": rng.choice(["round", "square", "flat", "nan"], n), "beta": rng.normal(size=n)})
    score = (frame["colour"] == "red") * 1.5 - (frame["shape"] == "flat") + frame["alpha"] + 0.3 * rng.normal(size=n)
    y = {"binary": (score > 0.4).astype(int), "regression": 10 * score + 3}[kind]
    cls = cb.CatBoostRegressor if kind == "regression" else cb.CatBoostClassifier
    est = cls(iterations=20, depth=3, random_seed=0, verbose=0, thread_count=1, allow_writing_files=False)
    est.fit(frame, y, cat_features=["colour", "shape"])
    path = tmp_path / "model.cbm"
    est.save_model(str(path))
    return est, path, frame, y


@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_catboost_with_categorical_features(tmp_path, kind):
    """Strings go to CatBoost as categories: the studio's outputs and SHAP values equal CatBoost's own on a Pool
    with cat_features; permutation importance and PDP (a categorical curve) run on the same columns."""
    import catboost as cb

    est, path, frame, y = _catboost_categorical(kind, tmp_path)
    model = _load(path)
    data = _save_data(tmp_path, frame.replace({"shape": {"nan": np.nan}}), y)  # the CSV's empty cell: missing
    assert data.categorical == ["colour", "shape"] and model.feature_names == list(frame.columns)
    want = est.predict(frame) if kind == "regression" else est.predict_proba(frame)
    want = want[:, None] if want.ndim == 1 else want
    np.testing.assert_allclose(model.output(data.x), want, rtol=0, atol=1e-9)
    exp = studio.explain(model, data, "shap", rows=ROWS, cache=False)
    assert exp.checks["path_tree"] == 1.0 and exp.provenance["algorithm"].startswith("CatBoost native TreeSHAP")
    raw = est.get_feature_importance(data=cb.Pool(frame.iloc[ROWS], cat_features=[0, 2]), type="ShapValues")
    sign = np.where(np.asarray(exp.target) == 1, 1.0, -1.0) if kind == "binary" else np.ones(len(ROWS))
    np.testing.assert_allclose(exp.values, raw[:, :-1] * sign[:, None], rtol=0, atol=1e-12)
    np.testing.assert_allclose(exp.base_values, raw[:, -1] * sign, rtol=0, atol=1e-12)
    assert exp.checks["additivity_gap"] < 1e-9
    pi = studio.explain(model, data, "permutation_importance", params={"n_repeats": 2, "max_rows": 120}, cache=False)
    assert {i.feature for i in pi.importances} == set(frame.columns)
    assert max(pi.importances, key=lambda i: i.mean).feature in ("colour", "alpha")
    pdp = studio.explain(model, data, "pdp", params={"features": ["colour"], "max_rows": len(frame)}, cache=False)
    curve = pdp.curves[0]
    assert curve.categorical and list(curve.grid[0]) == ["blue", "green", "red"]
    direct = [np.mean(est.predict(frame.assign(colour=c)) if kind == "regression"
                      else est.predict_proba(frame.assign(colour=c))[:, 1]) for c in ("blue", "green", "red")]
    np.testing.assert_allclose(np.asarray(curve.average, dtype=float).reshape(-1)[-3:], direct, rtol=0, atol=1e-9)
