"""Overlays: shapes, the one shared normalisation, colours that mean what they say."""

from __future__ import annotations

import numpy as np
import pytest

from studio.overlays import (
    anchor_contour,
    diverging,
    explanation_overlay,
    grid,
    heatmap,
    normalisation,
    to_rgb,
    top_k_mask,
)

RNG = np.random.default_rng(0)
GREY = RNG.random((1, 16, 16))
RGB = RNG.random((3, 16, 16))


@pytest.mark.parametrize("image", [GREY, RGB, GREY[0]])
@pytest.mark.parametrize("attr_shape", [(1, 16, 16), (3, 16, 16), (16, 16)])
def test_shapes_and_dtype(image, attr_shape):
    attr = RNG.normal(size=attr_shape)
    for draw in (heatmap, diverging):
        out = draw(image, attr, scale=3)
        assert out.image.shape == (48, 48, 3) and out.image.dtype == np.uint8 and out.caption


def test_shared_normalisation_keeps_maps_comparable():
    a = RNG.normal(size=(1, 16, 16))
    b = 2 * a
    shared = normalisation([a, b])
    assert shared.scale == pytest.approx(np.abs(b).max()) and shared.shared and shared.n_maps == 2
    assert np.abs(shared.apply(a[0])).max() == pytest.approx(0.5)
    assert "shared across 2 maps" in shared.caption and "largest |attribution|" in shared.caption
    assert f"\u00b1{shared.scale:.3g} = " in shared.caption  # signed maps: the scale runs both ways
    cam = normalisation([np.maximum(a, 0), np.maximum(b, 0)])  # rectified maps (Grad-CAM): never negative
    assert not cam.signed and f"colour scale: 0 to {cam.scale:.3g} = " in cam.caption and "\u00b1" not in cam.caption
    # same normalisation -> the weaker map is drawn paler; own normalisation would make them identical
    strong = heatmap(GREY, b, shared, alpha=1.0).image
    weak = heatmap(GREY, a, shared, alpha=1.0).image
    own = heatmap(GREY, a, alpha=1.0).image
    assert not np.array_equal(weak, strong) and np.array_equal(own, strong)
    p = normalisation([a, b], mode="percentile", percentile=90)
    assert p.scale == pytest.approx(np.percentile(np.abs(np.concatenate([a.ravel(), b.ravel()])), 90))
    assert np.abs(p.apply(b)).max() == 1.0 and "90th percentile" in p.caption and "clipped" in p.caption


def test_heatmap_alpha_ends_are_the_image_and_the_colormap():
    import cv2

    attr = np.abs(RNG.normal(size=(16, 16)))
    assert np.array_equal(heatmap(GREY, attr, alpha=0.0).image, to_rgb(GREY))
    full = heatmap(GREY, attr, alpha=1.0, colormap="jet").image
    level = np.round(attr / attr.max() * 255).astype(np.uint8)
    want = cv2.applyColorMap(level, cv2.COLORMAP_JET)[..., ::-1]
    np.testing.assert_array_equal(full, want)


def test_diverging_colours_follow_the_sign():
    attr = np.zeros((16, 16))
    attr[2, 2], attr[5, 5] = 1.0, -1.0
    black = np.zeros((1, 16, 16))
    out = diverging(black, attr, alpha=1.0).image
    assert tuple(out[2, 2]) == (255, 0, 0) and tuple(out[5, 5]) == (0, 0, 255)
    assert np.all(out[0, 0] >= 250)  # zero is white


def test_top_k_colours_only_the_top_pixels():
    attr = RNG.normal(size=(16, 16))
    mask = top_k_mask(attr, 10)
    assert mask.sum() == round(256 * 0.10)
    assert np.abs(attr[mask]).min() >= np.abs(attr[~mask]).max()
    out = heatmap(GREY, attr, alpha=1.0, top_k=10).image
    plain = to_rgb(GREY)
    assert np.array_equal(out[~mask], plain[~mask])
    assert "top 10%" in heatmap(GREY, attr, top_k=10).caption


def test_anchor_contour_outlines_the_anchor_and_dims_the_rest():
    seg = (np.arange(16)[:, None] // 8) * 2 + (np.arange(16)[None, :] // 8)  # four 8x8 superpixels
    image = np.full((1, 16, 16), 0.8)
    out = anchor_contour(image, seg, [0], colour=(0, 255, 0), dim=0.5).image
    green = np.all(out == (0, 255, 0), axis=-1)
    inside = seg == 0
    assert green.any() and np.all(inside[green])  # the outline lies on the anchor's own edge pixels
    edge = inside & ~np.pad(inside, 1)[2:, 1:-1] | inside & ~np.pad(inside, 1)[1:-1, 2:]
    assert np.all(green[edge])
    assert np.all(out[~inside] == round(204 * 0.5)) and np.all(out[3, 3] == 204)


def test_grid_and_explanation_overlay():
    from studio.explanation import Explanation, Rule

    signed = Explanation(method="saliency", kind="attribution", values=RNG.normal(size=(1, 1, 16, 16)),
                         base_values=np.zeros(1))
    unsigned = Explanation(method="grad_cam", kind="attribution", values=np.abs(RNG.normal(size=(1, 1, 16, 16))),
                           base_values=np.zeros(1))
    seg = np.arange(256).reshape(16, 16) // 64
    rule = Explanation(method="anchors", kind="rule",
                       rules=[Rule(row=0, predicates=["superpixel_1 == original"], precision=1.0, coverage=0.5,
                                   extra={"segments": seg.tolist(), "superpixels": [1]})])
    norm = normalisation([signed.values[0], unsigned.values[0]])
    a = explanation_overlay(signed, GREY[0], norm=norm, scale=2)
    b = explanation_overlay(unsigned, GREY[0], norm=norm, scale=2)
    c = explanation_overlay(rule, GREY[0], scale=2)
    assert "red" in a.caption and "heatmap" in b.caption and "anchor" in c.caption
    assert norm.caption in a.caption and norm.caption in b.caption
    g = grid([a, b, c], gap=4)
    assert g.shape == (32, 3 * 32 + 2 * 4, 3) and g.dtype == np.uint8
