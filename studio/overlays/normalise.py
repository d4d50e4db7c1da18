"""One normalisation choice for every map in a grid, stated in words."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODES = ("abs_max", "percentile")


@dataclass(frozen=True)
class Normalisation:
    """How attribution values map onto the colour scale.

    Attributes
    ----------
    mode : {"abs_max", "percentile"}
        ``abs_max``: divide by the largest |value|; ``percentile``: divide
        by the given percentile of |value| and clip to [-1, 1].
    scale : float
        The divisor (an attribution of \u00b1scale reaches the end of the scale).
    percentile : float
        Used by ``percentile`` mode.
    shared : bool
        Whether ``scale`` was computed over several maps together.
    n_maps : int
        How many maps it was computed over.
    signed : bool
        Whether any map has a negative value (else the scale runs from 0, as for Grad-CAM's rectified maps).
    """

    mode: str
    scale: float
    percentile: float = 99.0
    shared: bool = False
    n_maps: int = 1
    signed: bool = True

    def apply(self, values: np.ndarray) -> np.ndarray:
        """``values / scale`` clipped to [-1, 1] (float64); zeros when scale is 0."""
        v = np.asarray(values, dtype=np.float64)
        if self.scale <= 0:
            return np.zeros_like(v)
        return np.clip(v / self.scale, -1.0, 1.0)

    @property
    def caption(self) -> str:
        """The choice, in words, for the figure."""
        what = "largest |attribution|" if self.mode == "abs_max" else f"{self.percentile:g}th percentile of |attribution|"
        over = f"shared across {self.n_maps} maps" if self.shared else "per map"
        clip = ", values beyond it clipped" if self.mode == "percentile" else ""
        span = f"\u00b1{self.scale:.3g}" if self.signed else f"0 to {self.scale:.3g}"
        return f"colour scale: {span} = {what} ({over}){clip}"


def reduce_channels(values: np.ndarray) -> np.ndarray:
    """A (C, H, W) or (H, W) map as (H, W): the sum over channels (signs kept)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 3:
        return v.sum(axis=0)
    if v.ndim != 2:
        raise ValueError(f"an attribution map must be (C, H, W) or (H, W), got shape {v.shape}")
    return v


def normalisation(maps, mode: str = "abs_max", percentile: float = 99.0) -> Normalisation:
    """One scale for all ``maps`` (a single map or a list of maps).

    Parameters
    ----------
    maps : ndarray of shape (C, H, W) or (H, W), or a list of them
        Channels are summed first (:func:`reduce_channels`), as the overlays do.
    mode : {"abs_max", "percentile"}
    percentile : float in (0, 100]

    Returns
    -------
    Normalisation
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    many = isinstance(maps, (list, tuple))
    items = list(maps) if many else [maps]
    flat = [reduce_channels(m).ravel() for m in items]
    mags = np.abs(np.concatenate(flat))
    scale = float(mags.max()) if mode == "abs_max" else float(np.percentile(mags, percentile))
    signed = any(bool((f < 0).any()) for f in flat)
    return Normalisation(mode=mode, scale=scale, percentile=percentile, shared=many and len(items) > 1,
                         n_maps=len(items), signed=signed)
