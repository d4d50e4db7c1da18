"""Every scikit-learn estimator fitted on a small table, for the skops allow-list.

``fitted_estimators()`` yields ``(label, estimator, X)`` for every class in
``sklearn.utils.all_estimators()`` that fits on a small numeric table (and a
few variants whose fitted state stores other types: string labels, frames,
KD/ball trees, categorical gradient boosting, the one-hot + imputer pipeline
users build). ``SKIPS`` names the ones that need special input, with the
reason. Used by ``tests/models/test_skops_types.py`` and, as a script, to
regenerate ``studio/models/skops_types.py``'s table::

    python tests/models/skops_estimators.py

prints each type skops lists as untrusted for those estimators, with the
estimators that store it; a reviewer then copies the safe ones into the table
(never callables that run code: ``builtins.eval``, ``os.*``, ``subprocess.*``,
``functools.partial``, ``operator.attrgetter``, ...).
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np

# Estimators that cannot be fitted on a plain small table, and why.
SKIPS = {
    "SparseCoder": "needs a fitted dictionary as a constructor argument; it has no fit state",
    "FrozenEstimator": "wraps an already fitted estimator (covered by the estimators it wraps)",
    "IsotonicRegression": "takes exactly one feature (fitted on a one-column table instead)",
    "LabelBinarizer": "a target encoder: fitted on labels, not a feature table",
    "LabelEncoder": "a target encoder: fitted on labels, not a feature table",
    "MultiLabelBinarizer": "a target encoder: fitted on label sets, not a feature table",
    "DictVectorizer": "fitted on a list of dicts, not a table",
    "FeatureHasher": "fitted on dicts or strings, not a table",
    "HashingVectorizer": "fitted on text documents",
    "CountVectorizer": "fitted on text documents",
    "TfidfVectorizer": "fitted on text documents",
    "TfidfTransformer": "fitted on a term-count matrix (covered: it stores only numpy arrays)",
    "PatchExtractor": "fitted on images",
    "MultiOutputClassifier": "needs a 2-d target (fitted on two label columns instead)",
    "MultiOutputRegressor": "needs a 2-d target (fitted on two target columns instead)",
    "ClassifierChain": "needs a 2-d target (fitted on two label columns instead)",
    "RegressorChain": "needs a 2-d target (fitted on two target columns instead)",
    "KernelCenterer": "fitted on a square kernel matrix (fitted on x @ x.T instead)",
    "MultiTaskElasticNet": "needs a 2-d target (fitted on two target columns instead)",
    "MultiTaskElasticNetCV": "needs a 2-d target (fitted on two target columns instead)",
    "MultiTaskLasso": "needs a 2-d target (fitted on two target columns instead)",
    "MultiTaskLassoCV": "needs a 2-d target (fitted on two target columns instead)",
}

STRICT = True

# Constructor arguments some estimators need on a 4-column table with a 1-d target.
OVERRIDES = {"CCA": {"n_components": 1}, "PLSCanonical": {"n_components": 1}, "PLSSVD": {"n_components": 1},
             "GaussianRandomProjection": {"n_components": 2}, "SparseRandomProjection": {"n_components": 2},
             "OrthogonalMatchingPursuitCV": {"max_iter": None}, "TSNE": {"max_iter": 250, "perplexity": 10}}

# Fitted on a 2-d target: the studio explains one target, so the round trip compares native predictions.
MULTI_OUTPUT = {"MultiOutputClassifier", "MultiOutputRegressor", "ClassifierChain", "RegressorChain",
                "MultiTaskElasticNet", "MultiTaskElasticNetCV", "MultiTaskLasso", "MultiTaskLassoCV"}

# Classifiers of two classes only (fitted on the binary target alone).
BINARY_ONLY = {"FixedThresholdClassifier", "TunedThresholdClassifierCV"}

# Estimators given instead of the skips above where another input works.
SPECIAL_TARGETS = {"MultiOutputClassifier", "MultiOutputRegressor", "ClassifierChain", "RegressorChain",
                   "IsotonicRegression", "TfidfTransformer", "KernelCenterer", "MultiTaskElasticNet",
                   "MultiTaskElasticNetCV", "MultiTaskLasso", "MultiTaskLassoCV"}


def small_table(seed: int = 0, n: int = 60, n_features: int = 4):
    """A positive numeric table with a binary, a 3-class and a regression target.

    Returns
    -------
    x : ndarray of shape (n, n_features), float64 in (0.05, 1)
    y_bin, y_multi : ndarray of shape (n,), int labels
    y_reg : ndarray of shape (n,), float64
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.05, 1.0, size=(n, n_features))
    y_reg = x @ np.arange(1, n_features + 1) + 0.1 * rng.normal(size=n)
    y_bin = (y_reg > np.median(y_reg)).astype(int)
    y_multi = np.digitize(y_reg, np.quantile(y_reg, [1 / 3, 2 / 3]))
    return x, y_bin, y_multi, y_reg


def _required(cls):
    sig = inspect.signature(cls.__init__)
    return {p for p, v in sig.parameters.items()
            if p != "self" and v.default is inspect.Parameter.empty and v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL)}


def construct(name, cls, kind):
    """An instance of ``cls`` with the constructor arguments it requires; small and seeded."""
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    inner = DecisionTreeClassifier(max_depth=3, random_state=0) if kind == "classifier" else \
        DecisionTreeRegressor(max_depth=3, random_state=0)
    linear = LogisticRegression() if kind == "classifier" else LinearRegression()
    req = _required(cls)
    kw = {}
    if name == "SelfTrainingClassifier":
        kw["estimator"] = linear
    if "estimator" in req:
        kw["estimator"] = linear if name in ("RFE", "RFECV", "SelectFromModel", "SequentialFeatureSelector") else inner
    if "estimators" in req:
        kw["estimators"] = [("tree", inner), ("linear", linear)]
    if "param_grid" in req:
        kw["param_grid"] = {"max_depth": [2, 3]}
    if "param_distributions" in req:
        kw["param_distributions"] = {"max_depth": [2, 3]}
    if "steps" in req:
        kw["steps"] = [("scale", StandardScaler()), ("model", linear)]
    if "transformers" in req:
        kw["transformers"] = [("scale", StandardScaler(), [0, 1]), ("keep", "passthrough", [2, 3])]
    if "transformer_list" in req:
        kw["transformer_list"] = [("scale", StandardScaler()), ("keep", "passthrough")]
    missing = req - set(kw)
    if missing:
        raise TypeError(f"{name} needs {sorted(missing)}")
    est = cls(**kw)
    params = est.get_params(deep=False)
    small = {"random_state": 0, "n_estimators": 5, "max_iter": 50, "n_jobs": None, "cv": 3}
    est.set_params(**{k: v for k, v in small.items() if k in params})
    est.set_params(**OVERRIDES.get(name, {}))
    if name in ("GridSearchCV", "RandomizedSearchCV"):
        est.set_params(n_iter=2) if name == "RandomizedSearchCV" else None
    return est


def _kinds(cls):
    """The kinds an estimator class is fitted as: meta-estimators (Pipeline, GridSearchCV) as both."""
    from sklearn.base import ClassifierMixin, RegressorMixin

    if issubclass(cls, ClassifierMixin):
        return ["classifier"]
    if issubclass(cls, RegressorMixin):
        return ["regressor"]
    if _required(cls) & {"estimator", "estimators", "steps"} and hasattr(cls, "predict"):
        return ["classifier", "regressor"]
    return ["other"]


def fitted_estimators(kinds=("classifier", "regressor", "other"), variants: bool = True):
    """Yield ``(label, fitted_estimator, x)`` for every estimator that fits on :func:`small_table`.

    Parameters
    ----------
    kinds : tuple of {"classifier", "regressor", "other"}
        Which estimators (``other``: transformers, clusterers, outlier detectors).
    variants : bool
        Also yield estimators whose fitted state holds other types (string
        labels, pandas input, neighbour trees, categorical boosting, losses,
        the one-hot + imputer pipeline).

    Raises nothing: an estimator that fails to fit raises ``RuntimeError``
    naming it, so a new scikit-learn release is noticed.
    """
    from sklearn.utils import all_estimators

    x, y_bin, y_multi, y_reg = small_table()
    for name, cls in all_estimators():
        if name in SKIPS and name not in SPECIAL_TARGETS:
            continue
        for kind in _kinds(cls):
            if kind in kinds:
                yield from _fit_one(name, cls, kind, len(_kinds(cls)) > 1, x, y_bin, y_multi, y_reg)
    if variants:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = list(_variants(kinds, x, y_bin, y_multi, y_reg))
        yield from fitted


def _fit_one(name, cls, kind, meta, x, y_bin, y_multi, y_reg):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if name in SPECIAL_TARGETS:
                yield from _special(name, cls, x, y_bin, y_multi, y_reg)
                return
            targets = {"classifier": [("binary", y_bin), ("multiclass", y_multi)],
                       "regressor": [("", y_reg)], "other": [("", y_multi)]}[kind]
            for tag, y in targets:
                if tag == "multiclass" and name in BINARY_ONLY:
                    continue
                est = construct(name, cls, kind)
                try:
                    est.fit(x, y)
                except TypeError:
                    est.fit(x)
                tag = f"{kind}-{tag}" if meta and tag else kind if meta else tag
                yield (f"{name}:{tag}" if tag else name), est, x
        except Exception as exc:
            if not STRICT:
                print("FAILED", name, kind, type(exc).__name__, str(exc)[:150])
                return
            raise RuntimeError(f"{name} did not fit on the small table: {type(exc).__name__}: {exc}") from exc


def _special(name, cls, x, y_bin, y_multi, y_reg):
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.linear_model import LinearRegression, LogisticRegression

    if name == "IsotonicRegression":
        yield name, cls().fit(x[:, 0], y_reg), x[:, :1]
    elif name == "TfidfTransformer":
        yield name, TfidfTransformer().fit(np.round(x * 10)), x
    elif name == "KernelCenterer":
        yield name, cls().fit(x @ x.T), x @ x.T
    elif name.startswith("MultiTask"):
        yield name, construct(name, cls, "regressor").fit(x, np.c_[y_reg, -y_reg]), x
    elif name in ("MultiOutputClassifier", "ClassifierChain"):
        yield name, cls(LogisticRegression()).fit(x, np.c_[y_bin, y_multi]), x
    else:
        yield name, cls(LinearRegression()).fit(x, np.c_[y_reg, -y_reg]), x


def _variants(kinds, x, y_bin, y_multi, y_reg):
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor, HistGradientBoostingClassifier,
                                  HistGradientBoostingRegressor, RandomForestClassifier)
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.gaussian_process import GaussianProcessClassifier, GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import (ConstantKernel, DotProduct, ExpSineSquared, Matern, PairwiseKernel,
                                                  RationalQuadratic, RBF, WhiteKernel)
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, SGDClassifier, SGDRegressor, TweedieRegressor
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor, NearestNeighbors
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    labels = np.array(["no", "yes"])[y_bin]
    out = []
    if "classifier" in kinds:
        for algo in ("kd_tree", "ball_tree", "brute"):
            out.append((f"KNeighborsClassifier:{algo}", KNeighborsClassifier(algorithm=algo).fit(x, y_multi), x))
        out.append(("RandomForestClassifier:strings", RandomForestClassifier(5, random_state=0).fit(x, labels), x))
        for loss in ("log_loss", "exponential"):
            out.append((f"GradientBoostingClassifier:{loss}",
                        GradientBoostingClassifier(loss=loss, n_estimators=5).fit(x, y_bin), x))
        for loss in ("log_loss", "modified_huber"):
            out.append((f"SGDClassifier:{loss}", SGDClassifier(loss=loss, random_state=0).fit(x, y_multi), x))
        cat = np.c_[np.floor(x[:, 0] * 4), x[:, 1:]]
        out.append(("HistGradientBoostingClassifier:categorical",
                    HistGradientBoostingClassifier(max_iter=5, categorical_features=[0]).fit(cat, y_multi), cat))
        for metric in ("manhattan", "chebyshev", "minkowski"):
            out.append((f"KNeighborsClassifier:ball_tree-{metric}",
                        KNeighborsClassifier(algorithm="ball_tree", metric=metric, p=3).fit(x, y_multi), x))
        out.append(("MLPClassifier:sgd", MLPClassifier(hidden_layer_sizes=(5,), solver="sgd", max_iter=20, random_state=0).fit(x, y_bin), x))
        out.append(("GaussianProcessClassifier:kernels",
                    GaussianProcessClassifier(kernel=1.0 * Matern() + WhiteKernel()).fit(x, y_bin), x))
        out.append(("RandomForestClassifier:RandomState",
                    RandomForestClassifier(3, random_state=np.random.RandomState(0)).fit(x, y_bin), x))
        frame, y = user_pipeline_table()
        pipe = user_pipeline().fit(frame, y)
        out.append(("Pipeline:onehot+imputer+forest", pipe, frame))
        frame_df = pd.DataFrame(x, columns=list("abcd"))
        out.append(("HistGradientBoostingClassifier:frame",
                    HistGradientBoostingClassifier(max_iter=5).fit(frame_df, labels), frame_df))
    if "regressor" in kinds:
        for algo in ("kd_tree", "ball_tree"):
            out.append((f"KNeighborsRegressor:{algo}", KNeighborsRegressor(algorithm=algo).fit(x, y_reg), x))
        for loss in ("squared_error", "absolute_error", "huber", "quantile"):
            out.append((f"GradientBoostingRegressor:{loss}",
                        GradientBoostingRegressor(loss=loss, n_estimators=5).fit(x, y_reg), x))
        for loss in ("absolute_error", "gamma", "poisson", "quantile"):
            kw = {"quantile": 0.5} if loss == "quantile" else {}
            out.append((f"HistGradientBoostingRegressor:{loss}",
                        HistGradientBoostingRegressor(loss=loss, max_iter=5, **kw).fit(x, y_reg), x))
        kernel = (RationalQuadratic() + RBF() * DotProduct() + ConstantKernel() ** 2
                  + PairwiseKernel(metric="laplacian") + WhiteKernel())
        out.append(("GaussianProcessRegressor:kernels", GaussianProcessRegressor(kernel, optimizer=None).fit(x, y_reg), x))
        out.append(("GaussianProcessRegressor:periodic",  # a periodic kernel is positive definite in one dimension
                    GaussianProcessRegressor(ExpSineSquared(), alpha=0.1, optimizer=None).fit(x[:, :1], y_reg), x[:, :1]))
        for power, link in ((0, "identity"), (1, "log"), (1.5, "log"), (2, "log"), (3, "log"), (1.5, "identity")):
            out.append((f"TweedieRegressor:{power}-{link}",
                        TweedieRegressor(power=power, link=link).fit(x, y_reg), x))
        out.append(("MLPRegressor:sgd", MLPRegressor(hidden_layer_sizes=(5,), solver="sgd", max_iter=20, random_state=0).fit(x, y_reg), x))
        out.append(("TransformedTargetRegressor:log", TransformedTargetRegressor(
            LinearRegression(), func=np.log, inverse_func=np.exp).fit(x, y_reg), x))
        out.append(("Pipeline:log1p", make_pipeline(FunctionTransformer(np.log1p), LinearRegression()).fit(x, y_reg), x))
        for loss in ("huber", "epsilon_insensitive"):
            out.append((f"SGDRegressor:{loss}", SGDRegressor(loss=loss, random_state=0).fit(x, y_reg), x))
        ct = ColumnTransformer([("num", make_pipeline(SimpleImputer(), StandardScaler()), [0, 1, 2, 3])])
        out.append(("Pipeline:imputer-regressor", Pipeline([("prep", ct), ("model", SGDRegressor())]).fit(x, y_reg), x))
    if "other" in kinds:
        out.append(("NearestNeighbors:kd_tree", NearestNeighbors(algorithm="kd_tree").fit(x), x))
        out.append(("OneHotEncoder:strings", OneHotEncoder(handle_unknown="ignore").fit(labels[:, None]),
                    labels[:, None]))
    yield from out


def user_pipeline_table(n: int = 120, seed: int = 0):
    """Two string columns and three numeric ones (with gaps), and a binary label.

    Returns
    -------
    frame : pandas.DataFrame of shape (n, 5)
        ``colour`` and ``size`` are strings (object dtype); ``x1``..``x3`` float with NaN.
    y : ndarray of shape (n,), labels ``"no"``/``"yes"``
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], size=n)
    size = rng.choice(["S", "M", "L", "XL"], size=n)
    nums = rng.normal(size=(n, 3))
    score = nums[:, 0] + (colour == "red") * 1.5 - (size == "S") + 0.3 * rng.normal(size=n)
    nums[rng.random(size=(n, 3)) < 0.08] = np.nan
    frame = pd.DataFrame({"colour": pd.Series(colour, dtype=object), "x1": nums[:, 0],
                          "size": pd.Series(size, dtype=object), "x2": nums[:, 1], "x3": nums[:, 2]})
    return frame, np.where(score > 0, "yes", "no")


def user_pipeline(n_estimators: int = 20):
    """``Pipeline(ColumnTransformer([OneHotEncoder on the strings, SimpleImputer -> StandardScaler on numbers]), forest)``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer([
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["colour", "size"]),
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["x1", "x2", "x3"]),
    ])
    return Pipeline([("prep", prep), ("model", RandomForestClassifier(n_estimators, max_depth=6, random_state=0))])


def untrusted_table(kinds=("classifier", "regressor", "other")):
    """``{type name: [estimator labels that store it]}`` over :func:`fitted_estimators`."""
    import skops.io as sio

    from skops.io.exceptions import UnsupportedTypeException

    table: dict[str, list[str]] = {}
    for label, est, _ in fitted_estimators(kinds):
        try:
            data = sio.dumps(est)
        except UnsupportedTypeException as exc:  # skops itself cannot save it
            table.setdefault(f"(skops cannot save: {exc})", []).append(label)
            continue
        for t in sio.get_untrusted_types(data=data):
            table.setdefault(t, []).append(label)
    return dict(sorted(table.items()))


if __name__ == "__main__":
    import os

    STRICT = os.environ.get("STRICT", "1") == "1"
    for type_name, users in untrusted_table().items():
        shown = ", ".join(users[:4]) + (f" (+{len(users) - 4})" if len(users) > 4 else "")
        print(f"{type_name:70s} {shown}")
