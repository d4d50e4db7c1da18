"""Small models built here, with weights set so every expected number can be computed by hand or by torch directly."""

from __future__ import annotations

import numpy as np
import pytest

import studio
from studio.data.dataset import Dataset


def mlp3():
    """4 -> 8 -> 6 -> 3 with ReLUs between: 40 + 54 + 21 = 115 parameters."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3)).eval()


def small_cnn(inplace: bool = True):
    """conv(1->4, 3x3) -> in-place ReLU -> pool -> flatten -> linear(4 -> 3)."""
    import torch
    from torch import nn

    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(inplace=inplace), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 3)).eval()


def table(n: int = 40, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    return Dataset(kind="tabular", x=x, y=rng.integers(0, 3, n), feature_names=[f"f{i}" for i in range(4)],
                   label="y", name="table")


def images(n: int = 12, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1, 6, 6)).astype(np.float32)
    return Dataset(kind="image", x=x, y=rng.integers(0, 3, n), class_names=["a", "b", "c"], name="images")


@pytest.fixture
def mlp_model():
    net = mlp3()
    return net, studio.wrap_model(net, card={"feature_names": [f"f{i}" for i in range(4)], "task": "classification"})


@pytest.fixture
def cnn_model():
    net = small_cnn()
    return net, studio.wrap_model(net, card={"input_size": [1, 6, 6], "task": "classification",
                                             "class_names": ["a", "b", "c"]})
