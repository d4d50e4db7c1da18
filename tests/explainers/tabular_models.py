"""Small in-test models and tables for the tabular explainer tests (issue 3).

Everything is built once per process (``functools.cache``) and kept tiny so
the tabular test folder stays fast on two shared cores.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

import studio
from studio.data.tabular import table_dataset


def dataset(frame: pd.DataFrame, label: str | None = "target", name: str = "t.csv"):
    """A studio Dataset from a DataFrame (label column ``label``)."""
    return table_dataset(frame.reset_index(drop=True), name=name, label=label)


class FunctionRegressor:
    """A 'model' computing a known numpy function of the columns (for known answers).

    Parameters
    ----------
    kind : str
        Name of a function in :data:`FUNCTIONS` (picklable, so wrap_model can hash it).
    """

    def __init__(self, kind: str, n_features: int):
        self.kind = kind
        self.n_features_in_ = n_features

    def fit(self, x, y=None):
        return self

    def predict(self, x):
        return FUNCTIONS[self.kind](np.asarray(x, dtype=np.float64))


FUNCTIONS = {
    # f = a*x1 + g(x2) with a = 2.5, g = sin
    "linear_plus_sin": lambda x: 2.5 * x[:, 0] + np.sin(3 * x[:, 1]),
    # additive: x1^2 + exp(x2/2) - 3*x3
    "additive": lambda x: x[:, 0] ** 2 + np.exp(x[:, 1] / 2) - 3 * x[:, 2],
    # additive on the data (x2 ~ x1) but not off it: the extra term vanishes where x1 == x2
    "manifold": lambda x: x[:, 0] + x[:, 1] ** 2 + 4.0 * (x[:, 0] - x[:, 1]) ** 2,
    # pure interaction plus main effects
    "interaction": lambda x: 1.7 * x[:, 0] * x[:, 1] + x[:, 0] ** 3 - np.cos(x[:, 1]),
}


def function_model(kind: str, n_features: int):
    names = [f"x{i + 1}" for i in range(n_features)]
    return studio.wrap_model(FunctionRegressor(kind, n_features), card={"task": "regression", "feature_names": names})


def correlated_table(n=400, rho_noise=0.05, seed=0, n_features=3):
    """x1 ~ U(-1, 1), x2 = x1 + small noise (strongly correlated), x3 ~ U(-1, 1)."""
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(-1, 1, n)
    cols = {"x1": x1, "x2": x1 + rng.normal(0, rho_noise, n), "x3": rng.uniform(-1, 1, n)}
    frame = pd.DataFrame({k: cols[k] for k in list(cols)[:n_features]})
    return dataset(frame, label=None)


@functools.cache
def wine():
    """Wine (3 classes): a Dataset and a small scikit-learn logistic regression pipeline."""
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    bunch = load_wine(as_frame=True)
    frame = bunch.frame.rename(columns={"od280/od315_of_diluted_wines": "od280_od315"})
    x = frame.drop(columns="target")
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, frame["target"])
    return studio.wrap_model(est), dataset(frame)


@functools.cache
def wine_forest():
    """Wine with a small random forest (a multiclass tree ensemble)."""
    from sklearn.ensemble import RandomForestClassifier

    _, data = wine()
    est = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0).fit(data.frame, data.y)
    return studio.wrap_model(est), data


@functools.cache
def diabetes_gbr():
    """Diabetes regression: a Dataset and a small GradientBoostingRegressor."""
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor

    frame = load_diabetes(as_frame=True).frame
    est = GradientBoostingRegressor(n_estimators=30, max_depth=3, random_state=0)
    est.fit(frame.drop(columns="target"), frame["target"])
    return studio.wrap_model(est), dataset(frame)


@functools.cache
def diabetes_torch():
    """Diabetes regression with a tiny torch MLP (deterministic init, briefly trained)."""
    import torch

    _, data = diabetes_gbr()
    x = torch.tensor(data.x, dtype=torch.float32)
    y = torch.tensor(np.asarray(data.y, dtype=np.float32))[:, None]
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        loss = ((net(x * 20) - y) ** 2).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():  # fold the input scaling into the first layer
        net[0].weight.mul_(20.0)
    model = studio.wrap_model(net.eval(), card={"task": "regression", "feature_names": list(data.feature_names)})
    return model, data


@functools.cache
def categorical_table():
    """A table with a categorical column and a one-hot scikit-learn pipeline (binary)."""
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(1)
    n = 300
    colour = rng.choice(["red", "green", "blue", "black"], n, p=[0.4, 0.3, 0.2, 0.1])
    size = rng.normal(0, 1, n) + (colour == "red") * 0.8
    weight = rng.normal(0, 1, n)
    logit = 1.5 * size - weight + np.select([colour == "red", colour == "blue"], [1.0, -1.5], 0.0)
    y = (logit + rng.logistic(size=n) > 0).astype(int)
    frame = pd.DataFrame({"size": size, "colour": colour, "weight": weight, "target": y})
    pre = make_column_transformer((OneHotEncoder(), ["colour"]), remainder="passthrough")
    est = make_pipeline(pre, LogisticRegression()).fit(frame.drop(columns="target"), y)
    return studio.wrap_model(est), dataset(frame)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Torch on one intra-op thread while these tests run (restored after).

    Measured on the shared 2-core CI machine under load (load average ~9): a
    100-row TorchScript MLP call takes ~50 ms with 2 threads (OpenMP spinning
    against other processes) and ~0.7 ms with 1. Import this fixture into a
    test module to use it.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---- issue 13: real inputs and outputs (missing values, output kinds, dtypes, batch limits) ----------
@functools.cache
def nan_table():
    """A table with 20% missing values in column "a" and a HistGradientBoostingClassifier (accepts NaN)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    n = 300
    a = rng.uniform(0.0, 1.0, n)
    gone = rng.random(n) < 0.2
    y = np.where(gone, 1, a > 0.5).astype(int)
    a[gone] = np.nan
    frame = pd.DataFrame({"a": a, "b": rng.normal(size=n), "c": rng.normal(size=n), "target": y})
    est = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(frame[["a", "b", "c"]], y)
    return studio.wrap_model(est), dataset(frame, name="nan.csv")


@functools.cache
def small_table():
    """Four numeric features, a binary label and a second numeric target (for the small torch models)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 4))
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(4)])
    frame["target"] = (x[:, 0] - x[:, 2] > 0).astype(int)
    return dataset(frame, name="small.csv")


class _SmallNet:
    """Builders of small torch networks over :func:`small_table` (made in functions: torch loads lazily)."""

    @staticmethod
    def build(kind: str):
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self, n_out, softmax=False, flat=False):
                super().__init__()
                self.hidden, self.out = nn.Linear(4, 8), nn.Linear(8, n_out)
                self.softmax, self.flat = softmax, flat

            def forward(self, x):
                if self.flat:  # written for one row: fails on a batch of two
                    x = x.view(-1)
                z = self.out(torch.tanh(self.hidden(x)))
                return torch.softmax(z, dim=-1) if self.softmax else z

        torch.manual_seed(0)
        net = Net(3 if kind != "regression" else 2, softmax=kind == "softmax", flat=kind == "one_row")
        for p in net.parameters():
            nn.init.normal_(p, std=0.7)
        net = net.eval()
        return net.double() if kind == "float64" else net


@functools.cache
def small_torch(kind: str):
    """A small torch model of ``kind``: "softmax" (ends in Softmax), "float64", "one_row" (batch 1) or
    "regression" (two outputs), in memory, with :func:`small_table`."""
    data = small_table()
    card = {"feature_names": list(data.feature_names)}
    if kind == "regression":
        card |= {"task": "regression", "output_names": ["y1", "y2"]}
    return studio.wrap_model(_SmallNet.build(kind), card=card), data


@functools.cache
def two_output_forest():
    """A RandomForestRegressor on two targets over :func:`small_table`'s features."""
    from sklearn.ensemble import RandomForestRegressor

    data = small_table()
    x = np.asarray(data.x, dtype=float)
    y = np.column_stack([3 * x[:, 0] + x[:, 1], -2 * x[:, 2] + x[:, 3] ** 2])
    est = RandomForestRegressor(n_estimators=10, max_depth=4, random_state=0).fit(x, y)
    return studio.wrap_model(est), data
