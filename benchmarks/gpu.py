"""Item 8: on a CUDA GPU, images per second for IG and Grad-CAM at batch 64, and the GPU memory peak.

Items 1-3 run on the GPU with ``--device cuda`` (the image benchmarks take
the device); this suite adds throughput and memory. Without ``--device cuda``
(or without a GPU) it reports "not measured".
"""

from __future__ import annotations

import time

from benchmarks.common import Row, fixture, missing_reason, not_measured, registered

SUITE = "gpu"
BATCH = 64


def run(sizes, device="cpu", methods=None) -> list:
    names = ("integrated_gradients images/s at batch 64", "grad_cam images/s at batch 64")
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if device != "cuda" or not has_gpu:
        why = "not measured: no GPU lent to this task" if not has_gpu else "run with --device cuda to measure"
        return [not_measured(SUITE, n, why) for n in names]
    import numpy as np

    import studio
    from benchmarks.ig_floor import resnet18_setup

    out = []
    cnn, digits = fixture("cnn_state"), fixture("digits")
    n = min(BATCH, len(digits)) if sizes.name != "tiny" else 4
    resnet, images = resnet18_setup(n, "cuda")
    for label, model, data in (("sample CNN", cnn, digits), ("resnet18 224", resnet, images)):
        for method, params in (("integrated_gradients", {"n_steps": 32}), ("grad_cam", {})):
            name = f"{method} images/s at batch {n}, {label}"
            if not registered(method, "image"):
                out.append(not_measured(SUITE, name, missing_reason(method, "image")))
                continue
            rows = list(range(n))
            model.to("cuda")
            studio.explain(model, data, method, rows=rows, params=params, device="cuda", cache=False)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            times = []
            for _ in range(max(1, sizes.repeats)):
                start = time.perf_counter()
                studio.explain(model, data, method, rows=rows, params=params, device="cuda", cache=False)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
            t = float(np.median(times))
            peak = torch.cuda.max_memory_allocated()
            out.append(Row(SUITE, name, ours=n / t, unit="n", ours_label="images/s", ratio=None, status="info",
                           memory=f"GPU peak {peak / 2**20:.0f} MiB", note=f"{params or 'defaults'}; median of {len(times)}"))
    return out
