"""Issue 13, kind 1: missing values (NaN in a numeric column, a model that accepts NaN).

Models: scikit-learn's HistGradientBoosting (trained here, saved with skops,
loaded by the studio), and for known answers a function model whose output
at a missing value is a chosen constant. Each test states the right value
from the direct library (scikit-learn, interpret, lime) or a known answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import studio
from studio.data.tabular import table_dataset
from studio.errors import StudioError
from studio.explainers import registry

MISSING_EFFECT = 5.0  # the function model's output when "a" is missing, plus b


def _load(*args, **kwargs):
    """``studio.load_model`` in this process (the tests read adapter internals; the files are our own)."""
    return studio.load_model(*args, sandbox="off", **kwargs)


def _frame(n=400, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.0, 1.0, n)
    b = rng.normal(0.0, 1.0, n)
    c = rng.normal(0.0, 1.0, n)
    gone = rng.random(n) < 0.2
    y = np.where(gone, 1, a > 0.5).astype(int)  # a missing value means class 1: missingness has an effect
    a = a.copy()
    a[gone] = np.nan
    return pd.DataFrame({"a": a, "b": b, "c": c, "target": y})


@pytest.fixture(scope="module")
def frame():
    return _frame()


@pytest.fixture(scope="module")
def hgb(tmp_path_factory, frame):
    """(studio model, the estimator, dataset): a HistGradientBoostingClassifier saved with skops."""
    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingClassifier

    est = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(frame[["a", "b", "c"]], frame["target"])
    path = tmp_path_factory.mktemp("hgb") / "hgb.skops"
    sio.dump(est, path)
    return _load(path), est, table_dataset(frame, name="nan.csv", label="target")


@pytest.fixture(scope="module")
def hgb_regressor(tmp_path_factory, frame):
    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingRegressor

    y = np.where(np.isnan(frame["a"]), 3.0, 2.0 * frame["a"].fillna(0)) + frame["b"]
    est = HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(frame[["a", "b", "c"]], y)
    path = tmp_path_factory.mktemp("hgbr") / "hgbr.skops"
    sio.dump(est, path)
    data = table_dataset(frame.assign(target=y), name="nanr.csv", label="target")
    return _load(path), est, data


class MissingAware:
    """f = 2a + b, and MISSING_EFFECT + b where a is missing (a known answer for every curve)."""

    n_features_in_ = 3

    def fit(self, x, y=None):
        return self

    def predict(self, x):
        x = np.asarray(x, dtype=np.float64)
        return np.where(np.isnan(x[:, 0]), MISSING_EFFECT, 2.0 * np.nan_to_num(x[:, 0])) + x[:, 1]


@pytest.fixture(scope="module")
def function_model(frame):
    model = studio.wrap_model(MissingAware(), card={"task": "regression", "feature_names": ["a", "b", "c"]})
    return model, table_dataset(frame, name="nan.csv", label="target")


def _rows_with_and_without(frame):
    gone = np.flatnonzero(frame["a"].isna().to_numpy())
    seen = np.flatnonzero(frame["a"].notna().to_numpy())
    return [int(gone[0]), int(seen[0])]


# ---- PDP / ICE ------------------------------------------------------------------------------
def test_pdp_grid_spans_observed_values_with_a_missing_point(hgb, frame):
    """The right curve: 20 grid points over the observed values; sklearn's brute PDP at them and at NaN."""
    from sklearn.inspection import partial_dependence

    model, est, data = hgb
    exp = studio.explain(model, data, "pdp", params={"features": ["a"], "max_rows": 0}, cache=False)
    curve = exp.curves[0]
    grid = np.asarray(curve.grid[0], dtype=float)
    seen = frame["a"].dropna().to_numpy()
    assert len(grid) == 20 and np.all(np.isfinite(grid))
    np.testing.assert_array_equal(grid, np.unique(np.quantile(seen, np.linspace(0, 1, 20), method="inverted_cdf")))
    x = frame[["a", "b", "c"]]
    want = partial_dependence(est, x, [0], custom_values={0: np.append(grid, np.nan)}, method="brute")
    np.testing.assert_allclose(curve.average, want["average"][0][:-1], atol=1e-12)
    np.testing.assert_allclose(curve.extra["missing"], want["average"][0][-1], atol=1e-12)
    # the model gives "missing" its own effect (class 1), far above the curve's low end
    assert curve.extra["missing"] > curve.average[:5].max() + 0.5


def test_ice_missing_point_is_each_rows_output_at_nan(hgb, frame):
    model, est, data = hgb
    exp = studio.explain(model, data, "ice", params={"features": ["a"], "max_rows": 50}, cache=False)
    curve = exp.curves[0]
    from studio.explainers.tabular_utils import sample_rows

    rows = sample_rows(len(data), 50, 0)
    x = frame[["a", "b", "c"]].iloc[rows].copy()
    x["a"] = np.nan
    want = est.predict_proba(x)[:, 1]
    np.testing.assert_allclose(curve.extra["missing_individual"], want, atol=1e-12)
    np.testing.assert_allclose(curve.extra["missing"], want.mean(), atol=1e-12)
    assert np.all(np.isfinite(curve.individual)) and np.all(np.isfinite(np.asarray(curve.grid[0], dtype=float)))


def test_pdp_known_answer_at_missing(function_model, frame):
    model, data = function_model
    exp = studio.explain(model, data, "pdp", params={"features": ["a"], "max_rows": 0}, cache=False)
    curve = exp.curves[0]
    grid = np.asarray(curve.grid[0], dtype=float)
    mean_b = frame["b"].mean()
    np.testing.assert_allclose(curve.average, 2 * grid + mean_b, atol=1e-12)
    np.testing.assert_allclose(curve.extra["missing"], MISSING_EFFECT + mean_b, atol=1e-12)


# ---- ALE ------------------------------------------------------------------------------------
def test_ale_built_from_observed_rows_with_missing_on_the_centred_scale(function_model, frame):
    """f = 2a off missing: ALE(v) = 2v - c; making a value missing moves f to 5, so missing = 5 - c."""
    model, data = function_model
    exp = studio.explain(model, data, "ale", params={"features": ["a"], "max_rows": 0}, cache=False)
    curve = exp.curves[0]
    edges = np.asarray(curve.grid[0], dtype=float)
    seen = frame["a"].dropna().to_numpy()
    assert len(edges) == 20 and edges[0] == seen.min() and edges[-1] == seen.max()
    c = 2 * edges[0] - curve.average[0]
    np.testing.assert_allclose(curve.average, 2 * edges - c, atol=1e-10)  # slope 2
    assert int(np.sum(curve.extra["counts"])) == len(seen)  # only rows with "a" observed take part
    assert curve.extra["n_missing"] == int(frame["a"].isna().sum())
    np.testing.assert_allclose(curve.extra["missing"], MISSING_EFFECT - c, atol=1e-10)


def test_ale_on_hgb_is_finite_and_spans_observed_range(hgb, frame):
    model, _, data = hgb
    exp = studio.explain(model, data, "ale", params={"features": ["a", "a:b"]}, cache=False)
    one, two = exp.curves
    seen = frame["a"].dropna()
    assert np.asarray(one.grid[0])[0] == seen.min() and np.asarray(one.grid[0])[-1] == seen.max()
    assert np.isfinite(one.extra["missing"]) and np.all(np.isfinite(one.average))
    assert np.all(np.isfinite(two.average)) and np.all(np.isfinite(np.asarray(two.grid[0], dtype=float)))


# ---- two-feature surfaces: a "missing" row / column ------------------------------------------
class MissingSlope:
    """f = 2a + b where a is observed, MISSING_EFFECT + 4b where it is missing: "missing" changes b's slope by 3."""

    n_features_in_ = 3

    def fit(self, x, y=None):
        return self

    def predict(self, x):
        x = np.asarray(x, dtype=np.float64)
        return np.where(np.isnan(x[:, 0]), MISSING_EFFECT + 4.0 * x[:, 1], 2.0 * np.nan_to_num(x[:, 0]) + x[:, 1])


@pytest.mark.parametrize("pair", ["a:b", "b:a"])
def test_two_feature_pdp_has_a_missing_row_equal_to_sklearns(hgb, frame, pair):
    """The surface with NaN in front on a's axis is sklearn's brute PDP with NaN among the custom values."""
    from sklearn.inspection import partial_dependence

    model, est, data = hgb
    exp = studio.explain(model, data, "pdp", target=1, params={"features": [pair], "grid_resolution": 8, "max_rows": 0},
                         cache=False)
    curve = exp.curves[0]
    axes = [name == "a" for name in curve.features]
    assert curve.extra["missing_axes"] == axes
    grids = [np.asarray(g, dtype=float) for g in curve.grid]
    cols = [["a", "b", "c"].index(name) for name in curve.features]
    values = {c: (np.append(np.nan, g) if m else g) for c, g, m in zip(cols, grids, axes)}
    want = partial_dependence(est, frame[["a", "b", "c"]], cols, custom_values=values, method="brute")
    surface = np.asarray(curve.extra["with_missing"])
    assert surface.shape == tuple(len(g) + m for g, m in zip(grids, axes))
    np.testing.assert_allclose(surface, want["average"][0], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(curve.average, surface[1:, :] if axes[0] else surface[:, 1:])
    from studio import charts  # the heatmap draws the row, labelled "missing"

    cells = charts.heatmap_chart(exp).to_dict()["datasets"]
    (rows,) = cells.values()
    key = "a" if axes[0] else "b"
    gone = [r["value"] for r in rows if r[key] == "missing"]
    np.testing.assert_allclose(sorted(gone), sorted(want["average"][0][0] if axes[0] else want["average"][0][:, 0]))


def test_two_feature_ale_missing_row_is_the_change_of_slope(frame):
    """f has no interaction where a is observed (surface 0); where a is missing b's slope is 4, not 1: the
    missing row along b's edges has slope 3 and averages 0 over the rows with a missing."""
    model = studio.wrap_model(MissingSlope(), card={"task": "regression", "feature_names": ["a", "b", "c"]})
    data = table_dataset(frame, name="nan.csv", label="target")
    exp = studio.explain(model, data, "ale", params={"features": ["a:b"], "grid_resolution": 10, "max_rows": 0},
                         cache=False)
    curve = exp.curves[0]
    assert curve.extra["missing_axes"] == [True, False]
    np.testing.assert_allclose(curve.average, 0, atol=1e-10)
    row = np.asarray(curve.extra["with_missing"])[0]  # (K2 + 1,)
    edges = np.asarray(curve.grid[1], dtype=float)
    np.testing.assert_allclose(np.diff(row) / np.diff(edges), 3.0, rtol=1e-9)
    b_gone = frame.loc[frame["a"].isna(), "b"].to_numpy()
    counts = np.bincount(np.clip(np.searchsorted(edges, b_gone, side="left") - 1, 0, len(edges) - 2),
                         minlength=len(edges) - 1)
    assert abs(np.sum((row[:-1] + row[1:]) / 2 * counts)) < 1e-9  # centred over the rows with a missing


def test_two_feature_ale_missing_row_against_brute_force(frame):
    """On HistGradientBoosting fitted to MissingSlope: per bin of b, the mean over rows of f(b at the upper edge)
    - f(b at the lower edge), with a missing (the rows where it is) minus with a observed; empty bins take the
    nearest bin's; summed and centred over the rows with a missing. Written here bin by bin."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    x = frame[["a", "b", "c"]].to_numpy()
    est = HistGradientBoostingRegressor(max_iter=40, random_state=0).fit(x, MissingSlope().predict(x))
    model = studio.wrap_model(est, card={"task": "regression", "feature_names": ["a", "b", "c"]})
    data = table_dataset(frame, name="nan.csv", label="target")
    exp = studio.explain(model, data, "ale", params={"features": ["b:a"], "grid_resolution": 6, "max_rows": 0},
                         cache=False)
    curve = exp.curves[0]
    assert curve.extra["missing_axes"] == [False, True]
    edges = np.asarray(curve.grid[0], dtype=float)  # b's edges
    k_bins = len(edges) - 1

    def local(rows):  # per bin of b: (mean of f(upper) - f(lower) over the bin's rows, the bin's row count)
        index = np.clip(np.searchsorted(edges, rows[:, 1], side="left") - 1, 0, k_bins - 1)
        means, counts = np.zeros(k_bins), np.zeros(k_bins)
        for k in range(k_bins):
            inside = rows[index == k]
            if len(inside):
                lo, hi = inside.copy(), inside.copy()
                lo[:, 1], hi[:, 1] = edges[k], edges[k + 1]
                means[k], counts[k] = np.mean(est.predict(hi) - est.predict(lo)), len(inside)
        return means, counts

    gone = np.isnan(x[:, 0])
    there, n_gone = local(x[gone])
    main, _ = local(x[~gone])
    diff = there - main
    centre = (edges[:-1] + edges[1:]) / 2
    full = np.flatnonzero(n_gone > 0)
    for k in np.flatnonzero(n_gone == 0):
        diff[k] = diff[full[np.argmin(np.abs(centre[full] - centre[k]))]]
    want = np.concatenate([[0.0], np.cumsum(diff)])
    want -= np.sum((want[:-1] + want[1:]) / 2 * n_gone) / n_gone.sum()
    np.testing.assert_allclose(np.asarray(curve.extra["with_missing"])[:, 0], want, rtol=0, atol=1e-12)
    assert np.ptp(want) > 1.0  # the model's missing branch changes b's slope (else the test would prove little)


# ---- EBM -------------------------------------------------------------------------------------
def test_ebm_keeps_interprets_missing_bin(hgb, frame):
    """extra['missing'] is interpret's own missing-bin score, and ebm_score reproduces its logit on NaN rows."""
    from interpret.glassbox import ExplainableBoostingClassifier

    from studio.explainers.ebm import ebm_score

    model, _, data = hgb
    params = {"interactions": 1, "max_rounds": 50, "outer_bags": 1, "max_bins": 32, "max_rows": 0}
    exp = studio.explain(model, data, "ebm", target=1, params=params, cache=False)
    x = frame[["a", "b", "c"]]
    ebm = ExplainableBoostingClassifier(interactions=1, max_rounds=50, outer_bags=1, max_bins=32, n_jobs=1,
                                        random_state=0).fit(x, frame["target"].to_numpy())
    term = list(ebm.term_names_).index("a")
    curve = next(c for c in exp.curves if c.feature == "a")
    assert curve.extra["missing"] == pytest.approx(float(ebm.term_scores_[term][0]), abs=1e-12)
    np.testing.assert_allclose(ebm_score(exp, data.x), ebm.decision_function(x), atol=1e-9)
    # the missing bin is drawn: the chart has a point labelled "missing"
    from studio import charts

    spec = charts.curve_chart([exp], "a").to_dict()
    assert "hconcat" in spec and "missing" in str(spec)
    # an interaction with "a" keeps interpret's missing row (a's axis only: b and c have no missing values)
    pair = next(c for c in exp.curves if len(c.features) == 2 and "a" in c.features)
    term = list(ebm.term_names_).index(pair.extra["term"])
    scores = np.asarray(ebm.term_scores_[term])  # interpret's bins: 0 missing, then the grid's bins, then unknown
    n0, n1 = (len(g) for g in pair.grid)
    axes = [name == "a" for name in pair.features]
    assert pair.extra["missing_axes"] == axes
    np.testing.assert_array_equal(pair.extra["with_missing"], scores[int(not axes[0]) : 1 + n0, int(not axes[1]) : 1 + n1])
    (cells,) = charts.heatmap_chart(exp, pair.features).to_dict()["datasets"].values()
    gone = sorted(r["value"] for r in cells if r["a" if axes[0] else "b"] == "missing")
    np.testing.assert_allclose(gone, np.sort(scores[0, 1 : 1 + n1] if axes[0] else scores[1 : 1 + n0, 0]))


# ---- LIME -------------------------------------------------------------------------------------
def test_lime_runs_and_samples_missing_at_its_observed_rate(hgb, frame, monkeypatch):
    model, _, data = hgb
    seen = []
    real = model.output

    def spy(x, batch_size=None):
        x = np.asarray(x, dtype=float)
        if len(x) > 100:
            seen.append(np.isnan(x[1:, 0]))  # lime's samples (the first is the row itself)
        return real(x, batch_size)

    monkeypatch.setattr(model, "output", spy)
    rows = _rows_with_and_without(frame)
    exp = studio.explain(model, data, "lime", rows=rows, params={"num_samples": 2000}, cache=False)
    assert np.all(np.isfinite(exp.values)) and np.all(np.isfinite(exp.base_values))
    rate = frame["a"].isna().mean()
    drawn = np.concatenate(seen)
    assert abs(drawn.mean() - rate) < 4 * np.sqrt(rate * (1 - rate) / len(drawn))
    assert exp.checks["missing_rate"] == pytest.approx(rate)
    # "a" (missing or its quartile) is the feature the model reads: the largest weight on both rows
    assert np.all(np.argmax(np.abs(exp.values), axis=1) == 0)


def test_lime_missing_bins_use_limes_quartile_edges(frame):
    from lime.discretize import QuartileDiscretizer

    from studio.explainers.lime_tabular import MissingBins

    x = frame[["a", "b", "c"]].to_numpy()
    bins = MissingBins(x, [0])
    seen = x[~np.isnan(x[:, 0])]
    lime_edges = QuartileDiscretizer(seen, [], ["a", "b", "c"], [0, 0, 0]).mins[0][1:]
    np.testing.assert_allclose(bins.edges[0], lime_edges)
    codes = bins.encode(x)[:, 0]
    assert set(codes[np.isnan(x[:, 0])]) == {bins.missing_code(0)}
    back = bins.decode(bins.encode(x), np.random.default_rng(0))[:, 0]
    assert np.array_equal(np.isnan(back), np.isnan(x[:, 0]))  # missing stays missing; bins stay in their bin
    np.testing.assert_array_equal(bins.encode(np.column_stack([back, x[:, 1:]]))[:, 0], codes)


def test_lime_without_discretize_refuses_naming_the_column(hgb):
    model, _, data = hgb
    with pytest.raises(StudioError, match="column 'a' has missing values"):
        studio.explain(model, data, "lime", params={"discretize": False, "num_samples": 100}, cache=False)


# ---- SHAP, permutation importance, anchors -----------------------------------------------------
@pytest.mark.parametrize("algorithm", ["auto", "permutation", "kernel"])
def test_shap_is_exact_on_rows_with_missing_values(hgb, frame, algorithm):
    model, _, data = hgb
    rows = _rows_with_and_without(frame)
    exp = studio.explain(model, data, "shap", rows=rows,
                         params={"algorithm": algorithm, "background": 30, "max_evals": 61}, cache=False)
    assert np.all(np.isfinite(exp.values))
    # base + sum = f(x), also on the row with "a" missing (auto leaves the tree path if shap's tree model misses it)
    assert exp.checks["additivity_gap"] < 1e-6


def test_permutation_importance_equals_sklearns_with_missing_values(hgb, frame):
    from sklearn.inspection import permutation_importance

    model, est, data = hgb
    exp = studio.explain(model, data, "permutation_importance", params={"n_repeats": 3}, cache=False)
    want = permutation_importance(est, frame[["a", "b", "c"]], frame["target"], n_repeats=3, random_state=0,
                                  scoring="accuracy")
    np.testing.assert_allclose([i.mean for i in exp.importances], want.importances_mean, atol=1e-12)


def test_anchors_sampler_draws_missing_at_its_rate_and_never_into_a_rule(hgb, frame):
    from studio.explainers.anchors import Perturber

    x = frame[["a", "b", "c"]].to_numpy()
    rate = np.isnan(x[:, 0]).mean()
    seen_row = _rows_with_and_without(frame)[1]
    p = Perturber(x, x[seen_row], [])
    rng = np.random.default_rng(0)
    free = p.sample(frozenset(), 20000, rng)
    assert abs(np.isnan(free[:, 0]).mean() - rate) < 4 * np.sqrt(rate * (1 - rate) / 20000)
    on_a = next(k for k, (j, _, _) in enumerate(p.predicates) if j == 0)
    held = p.sample(frozenset({on_a}), 2000, rng)
    assert not np.isnan(held[:, 0]).any() and p.masks(held)[on_a].all()
    # quartile edges from the observed values (lime / anchor-exp's)
    np.testing.assert_allclose(sorted(v for j, _, v in p.predicates if j == 0),
                               np.percentile(x[~np.isnan(x[:, 0]), 0], [25, 50, 75]))
    # a row with "a" missing: no predicate on "a"
    gone_row = _rows_with_and_without(frame)[0]
    assert all(j != 0 for j, _, _ in Perturber(x, x[gone_row], []).predicates)


def test_anchors_on_rows_with_missing_values(hgb, frame):
    model, _, data = hgb
    rows = _rows_with_and_without(frame)
    params = {"batch_size": 50, "beam_size": 2, "max_anchor_size": 3, "fresh_samples": 300}
    exp = studio.explain(model, data, "anchors", rows=rows, params=params, cache=False)
    assert all(np.isfinite(r.precision) and 0 < r.coverage <= 1 for r in exp.rules)
    assert not any("a" in p.split() for p in exp.rules[0].predicates)  # "a" is missing in that row


# ---- the property: no NaN answer for a model with finite outputs ---------------------------------
FAST = {"shap": {"background": 20, "max_evals": 61}, "lime": {"num_samples": 300},
        "anchors": {"batch_size": 50, "beam_size": 2, "max_anchor_size": 2, "fresh_samples": 200},
        "pdp": {"features": ["a", "b", "a:b"], "grid_resolution": 8}, "ice": {"features": ["a"], "max_rows": 30},
        "ale": {"features": ["a", "a:b"], "grid_resolution": 8}, "permutation_importance": {"n_repeats": 2},
        "ebm": {"max_rounds": 30, "outer_bags": 1, "interactions": 1},
        "ebm_surrogate": {"max_rounds": 30, "outer_bags": 1, "interactions": 1}}


def _answers(exp):
    if exp.kind == "attribution":
        return [exp.values, exp.base_values]
    if exp.kind == "curve":
        out = []
        for c in exp.curves:
            out += [np.asarray(g, dtype=float) for g in c.grid if not c.categorical] + [c.average]
            out += [c.individual] if c.individual is not None else []
            out += [c.extra[k] for k in ("missing", "missing_individual", "with_missing") if k in c.extra]
        return out
    if exp.kind == "rule":
        return [[r.precision, r.coverage] for r in exp.rules]
    return [[i.mean, i.std] for i in exp.importances]


@pytest.fixture(scope="module")
def torch_nan(frame):
    """A torch classifier that reads a missing value itself (NaN -> 0, plus a missing indicator per column)."""
    from tests.regressions.in_process import NanAwareNet

    model = studio.wrap_model(NanAwareNet().eval(), card={"task": "classification", "feature_names": ["a", "b", "c"],
                                                           "class_names": ["0", "1"]})
    return model, None, table_dataset(frame, name="nan.csv", label="target")


@pytest.mark.parametrize("which", ["hgb", "hgb_regressor", "torch_nan"])
@pytest.mark.parametrize("method", sorted(n for n in registry.names() if "tabular" in registry.REGISTRY[n]))
def test_no_explainer_returns_nan_for_finite_model_outputs(request, which, method, frame):
    """Every tabular method, on tree models and on a torch model (the gradient methods): a finite answer, or a
    refusal naming the column (integrated gradients on a row with a missing value), then a finite answer on the
    rows without one."""
    model, _, data = request.getfixturevalue(which)
    assert np.all(np.isfinite(model.output(data.x)))  # the model's outputs are finite, NaN inputs included
    explainer = registry.get(method, "tabular")
    ok, reason = explainer.is_compatible(model, data)
    if not ok:
        pytest.skip(reason)
    rows = _rows_with_and_without(frame) if explainer.scope == "local" else None
    try:
        exp = studio.explain(model, data, method, rows=rows, params=FAST.get(method, {}), cache=False)
    except StudioError as exc:
        assert method == "integrated_gradients" and "column 'a'" in str(exc), (method, str(exc))
        rows = rows[1:]  # the row with "a" observed
        exp = studio.explain(model, data, method, rows=rows, params=FAST.get(method, {}), cache=False)
    for part in _answers(exp):
        assert np.all(np.isfinite(np.asarray(part, dtype=float))), (method, part)
    if method == "shap" and which == "torch_nan":  # auto left the gradient path, and says why
        assert exp.provenance["algorithm"] == "permutation" and "column 'a'" in exp.provenance["algorithm_reason"]


def test_a_nan_answer_is_refused_and_the_cli_does_not_exit_0(tmp_path, hgb, frame, monkeypatch, capsys):
    from studio import cli
    from studio.explainers.curves import PartialDependence

    model, est, data = hgb
    real = PartialDependence.explain

    def broken(self, *args, **kwargs):  # an explainer that would answer a grid of [nan]
        exp = real(self, *args, **kwargs)
        exp.curves[0].grid = [np.asarray([np.nan])]
        exp.curves[0].average = np.asarray([0.4])
        return exp

    monkeypatch.setattr(PartialDependence, "explain", broken)
    with pytest.raises(StudioError, match="NaN or infinite values in the grid"):
        studio.explain(model, data, "pdp", params={"features": ["a"]}, cache=False)
    import skops.io as sio

    sio.dump(est, tmp_path / "m.skops")
    frame.to_csv(tmp_path / "d.csv", index=False)
    argv = ["explain", "--model", str(tmp_path / "m.skops"), "--data", str(tmp_path / "d.csv"),
            "--label", "target", "--method", "pdp", "--no-cache"]
    # in this process, so the broken explainer is the one that runs (the check is in the parent either way)
    assert cli.main(argv + ["--sandbox", "off"]) != 0
    assert "NaN" in capsys.readouterr().err
    monkeypatch.setattr(PartialDependence, "explain", real)
    assert cli.main(argv) == 0  # the real PDP (in the sandboxed worker) answers: 20 finite grid points
    assert '"grid"' in capsys.readouterr().out


@pytest.fixture(scope="module")
def categorical_missing(tmp_path_factory):
    """A string column with empty cells and a skops pipeline that reads them (imputed as their own category)."""
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(7)
    n = 240
    colour = rng.choice(["red", "green", "blue"], size=n).astype(object)
    colour[rng.random(n) < 0.15] = np.nan
    x1 = rng.normal(size=n)
    y = ((colour == "red") | (pd.isna(colour) & (x1 > -1)) | (x1 > 1)).astype(int)
    frame = pd.DataFrame({"colour": colour, "x1": x1})
    prep = ColumnTransformer([("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="unknown"),
                                                    OneHotEncoder(handle_unknown="ignore")), ["colour"]),
                              ("num", "passthrough", ["x1"])])
    pipe = Pipeline([("prep", prep), ("forest", RandomForestClassifier(30, max_depth=4, random_state=0))]).fit(frame, y)
    path = tmp_path_factory.mktemp("catmiss") / "pipe.skops"
    sio.dump(pipe, path)
    return pipe, _load(path), table_dataset(frame.assign(y=y), name="catmiss.csv", label="y"), frame


@pytest.mark.parametrize("method", ["pdp", "ice"])
def test_categorical_curve_has_a_missing_point(categorical_missing, method):
    """The grid holds the observed categories only; "missing" is the model's output with the category missing,
    averaged over the rows (ICE: each row's), computed here from the pipeline itself."""
    pipe, model, data, frame = categorical_missing
    exp = studio.explain(model, data, method, target=1, params={"features": ["colour"], "max_rows": 0}, cache=False)
    curve = exp.curves[0]
    assert curve.categorical and list(curve.grid[0]) == ["blue", "green", "red"]
    at_missing = pipe.predict_proba(frame.assign(colour=np.nan))[:, 1]  # (n,)
    np.testing.assert_allclose(curve.extra["missing"], at_missing.mean(), rtol=0, atol=1e-12)
    want = [pipe.predict_proba(frame.assign(colour=c))[:, 1].mean() for c in ("blue", "green", "red")]
    np.testing.assert_allclose(np.asarray(curve.average, dtype=float), want, rtol=0, atol=1e-12)
    assert abs(curve.extra["missing"] - want[0]) > 0.05  # the model gives "missing" its own effect
    if method == "ice":
        np.testing.assert_allclose(curve.extra["missing_individual"], at_missing, rtol=0, atol=1e-12)


def test_categorical_ale_has_a_missing_point(categorical_missing):
    """Categorical ALE: "missing" is the mean over rows with a colour of ALE(their colour) + p(colour missing)
    - p(row), computed here from the pipeline itself."""
    pipe, model, data, frame = categorical_missing
    exp = studio.explain(model, data, "ale", target=1, params={"features": ["colour"], "max_rows": 0}, cache=False)
    curve = exp.curves[0]
    ale = dict(zip(curve.grid[0], np.asarray(curve.average, dtype=float)))
    assert sorted(ale) == ["blue", "green", "red"]
    seen = frame[frame["colour"].notna()]
    change = pipe.predict_proba(seen.assign(colour=np.nan))[:, 1] - pipe.predict_proba(seen)[:, 1]
    want = np.mean([ale[c] for c in seen["colour"]] + change)
    assert curve.extra["missing"] == pytest.approx(want, abs=1e-12)
    assert curve.extra["n_missing"] == int(frame["colour"].isna().sum())
    assert abs(curve.extra["missing"] - ale["blue"]) > 0.05  # the model gives "missing" its own effect
