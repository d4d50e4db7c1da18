"""Attribution maps as images for people: pure functions, OpenCV inside.

Every function takes arrays (an input image in [0, 1], an attribution map)
and returns an :class:`Overlay` (RGB uint8 image + caption); nothing is
recomputed and nothing is drawn on screen. Maps put side by side should
share one :class:`Normalisation` (``normalisation([map1, map2, ...])``),
whose caption states the choice on the figure.

>>> norm = normalisation([exp_a.values[0], exp_b.values[0]], mode="percentile")
>>> a = heatmap(image, exp_a.values[0], norm)
>>> b = heatmap(image, exp_b.values[0], norm)
"""

from studio.overlays.normalise import Normalisation, normalisation, reduce_channels
from studio.overlays.render import (
    COLORMAPS,
    Overlay,
    anchor_contour,
    diverging,
    diverging_lut,
    grid,
    heatmap,
    to_rgb,
    top_k_mask,
)


def explanation_overlay(explanation, image, index: int = 0, norm: Normalisation | None = None, scale: int = 1,
                        **kwargs) -> Overlay:
    """The natural overlay of one explained image.

    Rules (anchors) get :func:`anchor_contour`; attributions with negative
    values :func:`diverging`; non-negative ones :func:`heatmap`.

    Parameters
    ----------
    explanation : studio.Explanation
        An image explanation.
    image : ndarray of shape (C, H, W)
        The explained input (``data.x[explanation.rows[index]]``).
    index : int
        Which explained row.
    """
    import numpy as np

    if explanation.kind == "rule":
        rule = explanation.rules[index]
        return anchor_contour(image, rule.extra["segments"], rule.extra["superpixels"], scale=scale, **kwargs)
    values = np.asarray(explanation.values[index])
    if (values < 0).any():
        return diverging(image, values, norm, scale=scale, **kwargs)
    return heatmap(image, values, norm, scale=scale, **kwargs)


__all__ = [
    "COLORMAPS", "Normalisation", "Overlay", "anchor_contour", "diverging", "diverging_lut", "explanation_overlay",
    "grid", "heatmap", "normalisation", "reduce_channels", "to_rgb", "top_k_mask",
]
