"""Peak memory of one piece of work, measured in the process that does it.

Three numbers, each stated with its source:

- ``python_peak_bytes``: the peak of Python-level allocations during the work (``tracemalloc``; numpy
  buffers are traced, torch's C++ allocator is not);
- ``rss_hwm_delta_bytes``: how far the process's resident-set high-water mark rose during the work
  (``resource.getrusage(RUSAGE_SELF).ru_maxrss``; 0 when the work stayed under an earlier peak, so it is a
  lower bound of the work's own footprint);
- ``cuda_peak_bytes``: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, on a GPU only.

For a sandboxed model the explanation runs in its worker, so the worker measures it (the ``explain`` request's
``memory`` flag) and the parent takes the worker's numbers: :func:`active` tells ``RemoteModel.run_explainer``
to ask for them and :func:`report` hands them back.
"""

from __future__ import annotations

import contextlib
import contextvars
import resource
import sys
import tracemalloc

_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("studio_memory_measure", default=None)


def _maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)  # Linux reports KiB


@contextlib.contextmanager
def measure(device: str = "cpu", here: bool = True):
    """Measure peak memory of the ``with`` block; yields a dict filled in on exit.

    Parameters
    ----------
    device : str
        ``cuda...`` also records ``cuda_peak_bytes``.
    here : bool
        False when the work runs in another process (a sandbox worker): nothing is traced here, and the
        numbers are those the worker sends back through :func:`report`.
    """
    found: dict = {}
    token = _ACTIVE.set(found)
    started = False
    try:
        if here:
            started = not tracemalloc.is_tracing()
            if started:
                tracemalloc.start()
            tracemalloc.reset_peak()
            rss0 = _maxrss_bytes()
            cuda = str(device).startswith("cuda")
            if cuda:
                import torch

                torch.cuda.reset_peak_memory_stats()
        yield found
        if here:
            found.update(python_peak_bytes=int(tracemalloc.get_traced_memory()[1]),
                         rss_hwm_delta_bytes=max(_maxrss_bytes() - rss0, 0))
            if cuda:
                import torch

                found["cuda_peak_bytes"] = int(torch.cuda.max_memory_allocated())
    finally:
        if started:
            tracemalloc.stop()
        _ACTIVE.reset(token)


def active() -> bool:
    """Whether a :func:`measure` block is open in this context (so a worker should measure too)."""
    return _ACTIVE.get() is not None


def report(numbers: dict) -> None:
    """Hand the numbers a worker measured to the open :func:`measure` block (no-op when none is open)."""
    found = _ACTIVE.get()
    if found is not None and numbers:
        found.update({k: int(v) for k, v in numbers.items()})
