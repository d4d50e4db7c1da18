"""Images for display: inputs as uint8, attribution overlays, PNG bytes (pure numpy + Pillow)."""

from __future__ import annotations

import io

import numpy as np

POSITIVE_RGB = np.array([0.84, 0.19, 0.15])  # raises the explained output
NEGATIVE_RGB = np.array([0.13, 0.40, 0.67])  # lowers it


def to_display(image: np.ndarray) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W) or (H, W, 3) uint8."""
    img = np.clip(np.asarray(image, dtype=float), 0.0, 1.0)
    img = img[0] if img.shape[0] == 1 else np.moveaxis(img[:3], 0, -1)
    return (img * 255).round().astype(np.uint8)


def png_bytes(array: np.ndarray, scale: int = 1) -> bytes:
    """PNG of a (H, W) or (H, W, 3) uint8 array, enlarged ``scale`` times (nearest neighbour)."""
    from PIL import Image

    img = Image.fromarray(array)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def overlay(image: np.ndarray, attribution_map: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """The input with a signed map blended on top.

    Parameters
    ----------
    image : ndarray of shape (C, H, W) in [0, 1]
    attribution_map : ndarray of shape (H, W) in [-1, 1]
        Red where it raises the output, blue where it lowers it, opacity
        ``alpha * |value|``.

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
    """
    base = to_display(image).astype(float) / 255.0
    if base.ndim == 2:
        base = np.repeat(base[..., None], 3, axis=-1)  # (H, W, 3)
    m = np.clip(np.asarray(attribution_map, dtype=float), -1, 1)[..., None]  # (H, W, 1)
    colour = np.where(m >= 0, POSITIVE_RGB, NEGATIVE_RGB)  # (H, W, 3)
    weight = alpha * np.abs(m)
    out = base * (1 - weight) + colour * weight
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


def overlay_png(image: np.ndarray, attribution_map: np.ndarray, scale: int = 4, alpha: float = 0.6) -> bytes:
    """:func:`overlay` as PNG bytes, enlarged ``scale`` times."""
    return png_bytes(overlay(image, attribution_map, alpha), scale)


def colour_bar_png(width: int = 256, height: int = 14, alpha: float = 0.6, background: float = 0.5) -> bytes:
    """The colour scale of :func:`overlay` as a horizontal bar: -1 (blue, left) through 0 to +1 (red, right),
    blended over a mid-grey image as the overlay blends over the input."""
    grey = np.full((1, height, width), background)  # (1, H, W)
    ramp = np.tile(np.linspace(-1.0, 1.0, width), (height, 1))  # (H, W)
    return png_bytes(overlay(grey, ramp, alpha))
