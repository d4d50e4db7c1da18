"""Issue 13, kind 6: superpixel methods on small images.

Before: on 32x32 images of a model that reads only the top-left quadrant,
feature ablation at its defaults (25 SLIC segments at compactness 0.1 in
Lab space) put about a third of its mass outside the quadrant, because
SLIC's few-pixel segments straddle the quadrant's edge; on 64x64 textured
images LIME stopped with "SLIC returned a single superpixel". Now the count
comes from the image size, SLIC's result is checked, and a regular grid is
used where SLIC fails or cuts across the image's edges.

The model here is built for the test: the mean of the top-left quadrant
through a linear layer (class 1 when the quadrant is bright). Its images are
8x8 blocks of flat colour, so the quadrant's edge is an edge of the image
and a segmentation that follows edges never straddles it.
"""

from __future__ import annotations

import numpy as np
import pytest

import studio
from studio.data.dataset import Dataset
from studio.explainers.superpixels import grid_segments, segments_for, superpixels

SIDE, Q = 32, 16


def _quadrant_sum_net():
    import torch
    from torch import nn

    class QuadrantSum(nn.Module):
        """Logits from the mean of the top-left quadrant only (all channels), through nn.Linear(1, 2)."""

        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(1, 2)
            with torch.no_grad():
                self.linear.weight.copy_(torch.tensor([[-4.0], [4.0]]))
                self.linear.bias.copy_(torch.tensor([2.0, -2.0]))  # class 1 when the quadrant's mean > 0.5

        def forward(self, x):
            return self.linear(x[:, :, :Q, :Q].mean(dim=(1, 2, 3))[:, None])

    return QuadrantSum().eval()


def _model(channels):
    card = {"task": "classification", "class_names": ["dark", "bright"], "input_size": [channels, SIDE, SIDE]}
    return studio.wrap_model(_quadrant_sum_net(), card=card)


def _images(channels, n=2, seed=0, side=SIDE):
    """8x8 blocks: random outside the quadrant, bright (0.75-0.95) inside; a little noise."""
    rng = np.random.default_rng(seed)
    blocks = rng.uniform(0.0, 1.0, size=(n, channels, side // 8, side // 8))
    blocks[..., : Q // 8, : Q // 8] = rng.uniform(0.75, 0.95, size=(n, channels, Q // 8, Q // 8))
    x = np.kron(blocks, np.ones((1, 1, 8, 8))) + rng.normal(0, 0.01, size=(n, channels, side, side))
    return Dataset(kind="image", x=np.clip(x, 0, 1).astype(np.float32), y=np.ones(n, dtype=np.int64),
                   class_names=["dark", "bright"], name="blocks")


def quadrant_share(values) -> np.ndarray:
    """Share of |attribution| in the top-left quadrant, per row."""
    a = np.abs(np.asarray(values, dtype=np.float64))
    return a[..., :Q, :Q].reshape(len(a), -1).sum(1) / a.reshape(len(a), -1).sum(1)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("method", ["feature_ablation", "occlusion", "lime", "shap"])
def test_attribution_mass_stays_in_the_quadrant_at_the_defaults(method, channels):
    model, data = _model(channels), _images(channels, seed=channels)
    exp = studio.explain(model, data, method, rows=[0, 1], cache=False)
    assert np.abs(exp.values).sum() > 0
    share = quadrant_share(exp.values)
    assert np.all(share >= 0.95), share
    if method == "feature_ablation":
        # a hidden cell outside the quadrant changes nothing: exactly zero there
        assert np.all(exp.values[..., Q:, :] == 0) and np.all(exp.values[..., :, Q:] == 0)
        assert exp.checks["n_segments_min"] == segments_for(SIDE, SIDE) == 16


@pytest.mark.parametrize("channels", [1, 3])
def test_anchor_superpixels_lie_in_the_quadrant(channels):
    model, data = _model(channels), _images(channels, seed=10 + channels)
    assert (model.predict(data.x) == 1).all()
    exp = studio.explain(model, data, "anchors", rows=[0, 1], cache=False,
                         params={"baseline": "black", "batch_size": 60, "n_validate": 300})
    for rule in exp.rules:
        seg = np.asarray(rule.extra["segments"])
        ids = rule.extra["superpixels"]
        assert ids, rule  # hiding half the quadrant darkens it: the prediction needs an anchor
        inside = seg[:Q, :Q]
        outside = np.concatenate([seg[Q:, :].ravel(), seg[:Q, Q:].ravel()])
        assert set(ids) <= set(np.unique(inside)) and not set(ids) & set(np.unique(outside)), (ids, seg)
        assert rule.precision >= 0.95


def test_lime_on_64x64_textured_images_runs_at_its_defaults():
    """Textured RGB images: SLIC returned one superpixel; the grid takes over and the result says so."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    model = studio.wrap_model(net, card={"task": "classification", "class_names": ["a", "b", "c"],
                                         "input_size": [3, 64, 64]})
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(2, 3, 64, 64)).astype(np.float32)
    x[1] = np.clip(0.5 + rng.normal(0, 0.01, size=(3, 64, 64)), 0, 1)  # flat grey with sensor noise
    data = Dataset(kind="image", x=x, y=np.zeros(2, dtype=np.int64), name="texture")
    exp = studio.explain(model, data, "lime", rows=[0, 1], cache=False)
    assert exp.values.shape == (2, 1, 64, 64)
    assert exp.checks["n_segments_min"] >= segments_for(64, 64) // 2
    for i in range(2):
        assert len(np.unique(exp.values[i])) > 1  # more than one superpixel got a weight


def test_segments_are_checked_and_the_grid_replaces_a_failed_slic():
    rng = np.random.default_rng(1)
    noise = rng.uniform(0, 1, size=(3, 64, 64))
    labels, used = superpixels(noise, method="slic", compactness=0.001)  # SLIC follows the noise: one blob
    assert used == "grid" and labels.max() + 1 == segments_for(64, 64)
    # a smooth image with an off-grid disc: SLIC follows the disc's edge better than squares do
    yy, xx = np.mgrid[:64, :64]
    disc = ((yy - 27) ** 2 + (xx - 37) ** 2 < 15 ** 2).astype(float)
    img = np.stack([0.2 + 0.6 * disc, 0.3 + 0.1 * disc, 0.7 - 0.5 * disc])
    labels, used = superpixels(img)
    assert used == "slic" and segments_for(64, 64) // 2 <= labels.max() + 1

    def minority(seg):  # pixels on the wrong side of the disc's edge for their superpixel
        return sum(min(disc[seg == s].sum(), (1 - disc[seg == s]).sum()) for s in np.unique(seg))

    assert minority(labels) < 0.5 * minority(grid_segments(64, 64, segments_for(64, 64)))
