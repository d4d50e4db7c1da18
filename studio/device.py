"""Device choice and batching."""

from __future__ import annotations

import os

from studio.errors import StudioError

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(device: str = "auto") -> str:
    """Pick the torch device: ``auto`` means CUDA, then MPS, then CPU.

    Raises StudioError when a device that is not present is asked for.
    """
    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise StudioError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise StudioError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu or auto")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise StudioError("device 'mps' was asked for but is not available; use --device cpu or auto")
    return device


def batch_size_for(sample_numel: int, device: str, budget_bytes: int | None = None) -> int:
    """Rows per batch so that one float32 batch of inputs (times a working
    factor for activations) fits the device memory budget.

    Parameters
    ----------
    sample_numel : int
        Number of elements of one input row (features, or C*H*W).
    device : str
    budget_bytes : int, optional
        Defaults to 1/8 of free CUDA memory; on the CPU, 2 GiB (at most a
        quarter of the machine's memory), which holds the 32 path points of
        one 224x224 image through a resnet18 in one batch.
    """
    if budget_bytes is None:
        if str(device).startswith("cuda"):
            import torch

            free, _ = torch.cuda.mem_get_info()
            budget_bytes = free // 8
        else:
            budget_bytes = _cpu_budget()
    per_row = max(1, sample_numel) * 4 * 64  # activations ~64x the input
    return int(max(1, min(65536, budget_bytes // per_row)))


def _cpu_budget() -> int:
    """2 GiB, or a quarter of the physical memory when that is less (fixed per machine, so
    batches, and with them results, do not depend on what else is running)."""
    budget = 2 * 2**30
    try:
        budget = min(budget, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4)
    except (AttributeError, ValueError, OSError):  # not every platform has these
        pass
    return max(budget, 64 * 2**20)
