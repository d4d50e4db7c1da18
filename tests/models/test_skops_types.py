"""skops: what scikit-learn itself stores loads (one reviewed table); anything else is refused and named."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import studio
from studio.errors import StudioError
from studio.models.skops_types import FORBIDDEN_PREFIXES, SKOPS_TYPES

sys.path.insert(0, str(Path(__file__).parent))
import skops_estimators as se  # noqa: E402

_FITTED = {}


def _fitted():
    """Every classifier and regressor of all_estimators() (and variants), fitted once per session."""
    if not _FITTED:
        for label, est, x in se.fitted_estimators(kinds=("classifier", "regressor")):
            _FITTED[label] = (est, x)
    return _FITTED


def _expected(est, x):
    """What the studio's output must equal: the estimator's probabilities, or its predictions."""
    out = est.predict_proba(x) if hasattr(est, "predict_proba") else est.predict(x)
    out = np.asarray(out, dtype=np.float64)
    return out[:, None] if out.ndim == 1 else out


def test_table_is_reviewed_and_safe():
    assert not [t for t in SKOPS_TYPES if t.startswith(FORBIDDEN_PREFIXES)]
    assert all(reason.strip() for reason in SKOPS_TYPES.values())
    assert not [t for t in SKOPS_TYPES if "PyFunc" in t or t.startswith(("operator", "_operator"))]


def test_every_estimator_is_covered():
    """The estimators list matches all_estimators(): each is fitted, skipped with a reason, or not a model."""
    from sklearn.base import ClassifierMixin, RegressorMixin
    from sklearn.utils import all_estimators

    labels = {label.split(":")[0] for label in _fitted()}
    for name, cls in all_estimators():
        if issubclass(cls, (ClassifierMixin, RegressorMixin)):
            assert name in labels or name in se.SKIPS, f"{name} is neither fitted nor skipped with a reason"


def test_every_classifier_and_regressor_round_trips(tmp_path):
    """dump -> studio.load_model -> the same outputs, to 1e-12, for every estimator that fits a small table."""
    import skops.io as sio
    from skops.io.exceptions import UnsupportedTypeException

    failures, checked = [], 0
    for label, (est, x) in _fitted().items():
        try:
            data = sio.dumps(est)
        except UnsupportedTypeException:  # skops itself cannot save it: nothing the studio could load
            continue
        try:
            model = studio.load_model(data, name=label.replace(":", "_") + ".skops", sandbox="off")
            if label.split(":")[0] in se.MULTI_OUTPUT:
                np.testing.assert_array_equal(model.native.predict(x), est.predict(x))
                checked += 1
                continue
            got = model.output(x)
        except StudioError as exc:
            failures.append(f"{label}: {exc}")
            continue
        want = _expected(est, x)
        if got.shape != want.shape or not np.allclose(got, want, rtol=0, atol=1e-12):
            failures.append(f"{label}: outputs differ by {np.max(np.abs(got - want)) if got.shape == want.shape else got.shape}")
        checked += 1
    assert not failures, "\n".join(failures)
    assert checked > 90


def test_user_pipeline_and_knn_load(tmp_path):
    """The issue's two refusals: one-hot + imputer + forest pipeline, and a KD-tree KNN."""
    import skops.io as sio
    from sklearn.neighbors import KNeighborsClassifier

    frame, y = se.user_pipeline_table()
    pipe = se.user_pipeline(5).fit(frame, y)
    sio.dump(pipe, tmp_path / "pipe.skops")
    model = studio.load_model(tmp_path / "pipe.skops")
    np.testing.assert_allclose(model.output(frame.to_numpy()), pipe.predict_proba(frame), rtol=0, atol=1e-12)
    assert model.class_names == ["no", "yes"]

    x, _, y3, _ = se.small_table()
    knn = KNeighborsClassifier(algorithm="kd_tree").fit(x, y3)
    sio.dump(knn, tmp_path / "knn.skops")
    np.testing.assert_allclose(studio.load_model(tmp_path / "knn.skops").output(x), knn.predict_proba(x), atol=1e-12)


def test_other_types_refused_and_named(tmp_path):
    import skops.io as sio
    from sklearn.neighbors import KNeighborsClassifier

    x, y, _, _ = se.small_table()
    knn = KNeighborsClassifier(algorithm="ball_tree", metric=_my_distance).fit(x, y)
    sio.dump(knn, tmp_path / "f.skops")
    with pytest.raises(StudioError, match=r"_my_distance.*not custom functions") as info:
        studio.load_model(tmp_path / "f.skops")
    assert "only scikit-learn's own" not in str(info.value)


def _my_distance(a, b):
    return float(np.abs(a - b).sum())


def test_tree_checked_against_the_width_it_sees(tmp_path):
    """A forest after a one-hot encoder sees the encoded width: its indices pass; past that width they fail."""
    from studio.models.loaders import check_skops_storage

    frame, y = se.user_pipeline_table()
    pipe = se.user_pipeline(3).fit(frame, y)
    forest = pipe.named_steps["model"]
    assert forest.n_features_in_ > pipe.n_features_in_  # the case the old check refused
    top = max(int(t.tree_.feature.max()) for t in forest.estimators_)
    assert top >= pipe.n_features_in_  # an index past the pipeline's input width, inside the encoded one
    check_skops_storage(pipe, "pipe")
    tree = next(t for t in forest.estimators_ if t.tree_.feature.max() == top)
    tree.n_features_in_ = top  # the width this tree sees, now one short of its largest index
    with pytest.raises(StudioError, match="feature index out of range"):
        check_skops_storage(pipe, "pipe")


def test_neighbour_tree_with_bad_index_refused():
    """A KD-tree whose index array points past its data is refused (predict would read out of bounds)."""
    from sklearn.neighbors import KDTree, KNeighborsClassifier

    from studio.models.loaders import check_skops_storage

    x, y, _, _ = se.small_table()
    knn = KNeighborsClassifier(algorithm="kd_tree").fit(x, y)
    check_skops_storage(knn, "knn")
    state = list(knn._tree.__getstate__())
    state[1] = state[1].copy()
    state[1][0] = len(x) + 5
    bad = KDTree.__new__(KDTree)
    bad.__setstate__(tuple(state))
    knn._tree = bad
    with pytest.raises(StudioError, match="neighbour index out of range"):
        check_skops_storage(knn, "knn")
