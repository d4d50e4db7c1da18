"""Small image models and images built for the image-explainer tests.

``quadrant_model`` looks only at the top-left quadrant: its first layer
multiplies the (normalised) input by a weight that is zero elsewhere.
``block_images`` are made of 8x8 blocks of flat colour, so superpixel
edges fall on the quadrant's edges.
"""

from __future__ import annotations

import numpy as np

SIZE = 32
Q = SIZE // 2


def _mask_layer_class():
    import torch
    from torch import nn

    class QuadrantMask(nn.Module):
        """Elementwise weight: 1 on the top-left quadrant, 0 elsewhere."""

        def __init__(self):
            super().__init__()
            w = torch.zeros(1, 1, SIZE, SIZE)
            w[..., :Q, :Q] = 1.0
            self.weight = nn.Parameter(w)

        def forward(self, x):
            return x * self.weight

    return QuadrantMask


def quadrant_net(channels: int, seed: int = 0, classes: int = 3):
    """nn.Sequential: quadrant mask, bias-free 3x3 conv, ReLU, quadrant mask, 1x1 conv, ReLU, pool, linear.

    The masks are elementwise weights that are zero outside the top-left
    quadrant, so neither the input nor any activation outside it matters.
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)
    mask = _mask_layer_class()
    return nn.Sequential(
        mask(),
        nn.Conv2d(channels, 8, 3, padding=1, bias=False), nn.ReLU(), mask(),
        nn.Conv2d(8, 8, 1, bias=False), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes),
    ).eval()


def card(channels: int, classes: int = 3) -> dict:
    return {"task": "classification", "class_names": [f"c{i}" for i in range(classes)],
            "input_size": [channels, SIZE, SIZE], "mean": [0.3] * channels, "std": [0.2] * channels}


def quadrant_model(channels: int, scripted: bool = False, seed: int = 0):
    import torch

    import studio

    net = quadrant_net(channels, seed)
    if scripted:
        net = torch.jit.script(net)
    return studio.wrap_model(net, card=card(channels))


def block_images(channels: int, n: int = 2, seed: int = 0) -> np.ndarray:
    """float32 (n, C, 32, 32) in [0, 1]: 8x8 blocks of random flat colour, a little noise."""
    rng = np.random.default_rng(seed)
    blocks = rng.uniform(0.0, 1.0, size=(n, channels, SIZE // 8, SIZE // 8))
    x = np.kron(blocks, np.ones((1, 1, 8, 8)))
    x = x + rng.normal(0, 0.01, size=x.shape)
    return np.clip(x, 0, 1).astype(np.float32)


def image_dataset(x: np.ndarray):
    from studio.data.dataset import Dataset

    return Dataset(kind="image", x=x, y=np.zeros(len(x), dtype=np.int64), class_names=["c0", "c1", "c2"], name="blocks")


def quadrant_share(values: np.ndarray) -> np.ndarray:
    """Share of absolute attribution mass in the top-left quadrant, per row (n,)."""
    a = np.abs(np.asarray(values, dtype=np.float64))
    return a[..., :Q, :Q].reshape(len(a), -1).sum(1) / a.reshape(len(a), -1).sum(1)
