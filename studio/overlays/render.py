"""Attribution map + input image -> RGB uint8 overlay (OpenCV; pure functions)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from studio.overlays.normalise import Normalisation, normalisation, reduce_channels

COLORMAPS = ("inferno", "jet", "viridis", "magma", "hot", "turbo")


@dataclass(frozen=True)
class Overlay:
    """An overlay image and the caption that says how to read it.

    Attributes
    ----------
    image : ndarray of shape (H * scale, W * scale, 3), uint8, RGB
    caption : str
    """

    image: np.ndarray
    caption: str


def to_rgb(image) -> np.ndarray:
    """An input image (C, H, W) or (H, W) in [0, 1] as (H, W, 3) uint8 RGB (grey replicated)."""
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 3:
        x = x[0] if x.shape[0] == 1 else np.moveaxis(x[:3], 0, -1)
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=-1)
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def top_k_mask(attribution, percent: float) -> np.ndarray:
    """Boolean (H, W): the ``percent``% of pixels with the largest |attribution| (channels summed)."""
    mag = np.abs(reduce_channels(attribution))
    if percent >= 100:
        return np.ones(mag.shape, dtype=bool)
    k = max(1, int(round(mag.size * percent / 100.0)))
    order = np.argsort(-mag.ravel(), kind="stable")[:k]
    mask = np.zeros(mag.size, dtype=bool)
    mask[order] = True
    return mask.reshape(mag.shape)


def _upscale(rgb: np.ndarray, scale: int) -> np.ndarray:
    import cv2

    if scale == 1:
        return rgb
    return cv2.resize(rgb, (rgb.shape[1] * scale, rgb.shape[0] * scale), interpolation=cv2.INTER_NEAREST)


def _colormap(name: str):
    import cv2

    if name not in COLORMAPS:
        raise ValueError(f"colormap must be one of {COLORMAPS}, got {name!r}")
    return getattr(cv2, f"COLORMAP_{name.upper()}")


def diverging_lut() -> np.ndarray:
    """A 256-entry blue-white-red lookup table, shape (256, 1, 3) uint8 in OpenCV's BGR order.

    Entry 0 is blue (most negative), 128 about white (zero), 255 red.
    """
    t = np.linspace(-1.0, 1.0, 256)
    r = np.where(t < 0, 1 + t, 1.0)
    b = np.where(t > 0, 1 - t, 1.0)
    g = 1 - np.abs(t)
    return np.round(np.stack([b, g, r], axis=-1)[:, None, :] * 255).astype(np.uint8)


def _finish(image, attribution, bgr, alpha, top_k, scale, caption) -> Overlay:
    """Blend the colours (BGR) over the image where shown (top-k or all), upscale, caption."""
    shown = top_k_mask(attribution, top_k) if top_k is not None else np.ones(bgr.shape[:2], dtype=bool)
    out = _blend(image, bgr[..., ::-1], alpha, shown)
    if top_k is not None:
        caption += f"; only the top {top_k:g}% of pixels by |attribution| coloured"
    return Overlay(_upscale(out, scale), caption)


def _blend(image, colours, alpha, shown):
    base = to_rgb(image).astype(np.float64)
    mixed = (1 - alpha) * base + alpha * colours.astype(np.float64)
    out = np.where(shown[..., None], mixed, base)
    return np.round(out).astype(np.uint8)


def heatmap(image, attribution, norm: Normalisation | None = None, colormap: str = "inferno", alpha: float = 0.5,
            top_k: float | None = None, scale: int = 1) -> Overlay:
    """|attribution| as a colour heatmap blended over the image.

    Parameters
    ----------
    image : ndarray of shape (C, H, W) or (H, W) in [0, 1]
    attribution : ndarray of shape (C, H, W) or (H, W)
        Channels are summed; the magnitude is drawn.
    norm : Normalisation, optional
        Pass the same one to every map of a grid; default: this map's own
        largest |value|.
    colormap : one of :data:`COLORMAPS`
    alpha : float in [0, 1]
        Weight of the colours.
    top_k : float, optional
        Colour only the top ``top_k`` percent of pixels by |attribution|.
    scale : int
        Nearest-neighbour upscaling (small images).

    Returns
    -------
    Overlay
    """
    import cv2

    norm = norm or normalisation(attribution)
    level = np.abs(norm.apply(reduce_channels(attribution)))  # (H, W) in [0, 1]
    bgr = cv2.applyColorMap(np.round(level * 255).astype(np.uint8), _colormap(colormap))
    return _finish(image, attribution, bgr, alpha, top_k, scale, f"{colormap} heatmap of |attribution|; {norm.caption}")


def diverging(image, attribution, norm: Normalisation | None = None, alpha: float = 0.6, top_k: float | None = None,
              scale: int = 1) -> Overlay:
    """Signed attribution as blue (negative) - white (zero) - red (positive) over the image."""
    import cv2

    norm = norm or normalisation(attribution)
    signed = norm.apply(reduce_channels(attribution))  # (H, W) in [-1, 1]
    idx = np.round((signed + 1) * 127.5).astype(np.uint8)
    bgr = cv2.applyColorMap(idx, diverging_lut())
    return _finish(image, attribution, bgr, alpha, top_k, scale,
                   f"red: pushes the output up, blue: pushes it down; {norm.caption}")


def anchor_contour(image, segments, superpixels, colour=(0, 255, 0), dim: float = 0.5, thickness: int = 1,
                   scale: int = 1) -> Overlay:
    """An anchor's superpixels outlined, the rest of the image dimmed.

    Parameters
    ----------
    image : ndarray of shape (C, H, W) or (H, W) in [0, 1]
    segments : array-like of shape (H, W), int
        The segmentation (``Rule.extra["segments"]``).
    superpixels : list of int
        The anchor's superpixel ids (``Rule.extra["superpixels"]``).
    colour : RGB tuple
    dim : float in [0, 1]
        Brightness kept outside the anchor.
    """
    import cv2

    seg = np.asarray(segments)
    inside = np.isin(seg, np.asarray(list(superpixels), dtype=seg.dtype))
    rgb = to_rgb(image)
    rgb = _upscale(rgb, scale)
    inside = _upscale(inside.astype(np.uint8), scale).astype(bool)
    out = np.where(inside[..., None], rgb, np.round(rgb * dim)).astype(np.uint8)
    contours, _ = cv2.findContours(inside.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = np.ascontiguousarray(out)
    cv2.drawContours(out, contours, -1, tuple(int(c) for c in colour), thickness)
    n = len(list(superpixels))
    return Overlay(out, f"anchor: {n} superpixel(s) outlined; the rest dimmed to {dim:.0%}")


def grid(overlays, gap: int = 4) -> np.ndarray:
    """Overlays of equal height side by side, ``gap`` white pixels apart: (H, W_total, 3) uint8."""
    images = [o.image if isinstance(o, Overlay) else np.asarray(o) for o in overlays]
    h = images[0].shape[0]
    if any(im.shape[0] != h for im in images):
        raise ValueError("overlays in a grid must have the same height")
    spacer = np.full((h, gap, 3), 255, dtype=np.uint8)
    parts = []
    for i, im in enumerate(images):
        parts.extend([spacer, im] if i else [im])
    return np.concatenate(parts, axis=1)
