"""Deletion curve of the studio against Quantus's PixelFlipping on the sample CNN (run in the peer venv).

Quantus 0.6.0 pulls ``opencv-python``, which clashes with the studio's ``opencv-python-headless``, so it lives in
the benchmarks' peer venv (``benchmarks/out/peer-venv``, ``--system-site-packages``, see requirements-bench.txt).
Run there: ``benchmarks/out/peer-venv/bin/python -m benchmarks.quantus_peer``; prints one JSON line: the largest
difference between the two curves' scores and the two mean areas.

Same setting on both sides: |saliency| of 4 digits (a tiny deterministic tie-breaker so both sort alike), single
pixels, 32 pixels per step, removed pixels set to 0 (Quantus's "black" baseline, the minimum of the image),
the probability of the predicted class (the studio's ``torch_module("probabilities")``; Quantus softmax off).
"""

from __future__ import annotations

import json

import numpy as np


def main() -> None:
    import quantus

    import studio
    from benchmarks.common import MODELS, SAMPLE_DATA
    from studio.quality import faithfulness as faith

    cnn = studio.load_model(MODELS / "image_cnn.pt", sandbox="off")
    digits = studio.load_dataset(SAMPLE_DATA / "digits.zip")
    rows = [0, 1, 2, 3]
    x = digits.x[rows]
    target = cnn.output(x).argmax(axis=1)
    sal = np.abs(studio.explain(cnn, digits, "saliency", rows=rows, cache=False).values).astype(np.float64)
    sal += 1e-12 * np.arange(sal[0].size)[::-1].reshape(sal.shape[1:])  # ties broken by position on both sides
    fs = faith.settings({"patch": 1, "steps": x[0].size // 32, "deletion_substrate": "zero",
                         "insertion_substrate": "zero"}, "image")
    ours = faith.deletion_insertion(cnn, x, sal, "image", target, fs)
    metric = quantus.PixelFlipping(features_in_step=32, perturb_baseline="black", abs=True, normalise=False,
                                   disable_warnings=True, display_progressbar=False)
    theirs = np.asarray(metric(model=cnn.torch_module("probabilities"), x_batch=x, y_batch=target, a_batch=sal,
                               device="cpu", softmax=False, channel_first=True))
    diff = float(np.abs(ours["deletion"][:, 1:] - theirs).max())
    print(json.dumps({"max_abs_difference": diff, "steps": int(theirs.shape[1]), "rows": len(rows),
                      "studio_auc": float(ours["deletion_auc"].mean()),
                      "quantus_auc_steps": float(np.mean([np.trapezoid(c) for c in theirs])),
                      "quantus": quantus.__version__}))


if __name__ == "__main__":
    main()
