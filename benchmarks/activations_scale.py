"""Activations at scale (issue 15): the sample CNN's layer 7 captured for 50,000 images, against model.output.

Not yet a section of benchmarks/run.py. Run: ``python -m benchmarks.activations_scale [rows]`` (default 50000).
Prints seconds for the plain forward pass (``model.output``), for ``studio.activations`` on the same rows
(ratio = capture overhead), the PCA of the sampled projection, and the process's peak RSS.
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np


def main(n: int = 50_000) -> None:
    import studio
    from benchmarks.common import MODELS, SAMPLE_DATA
    from studio.data.dataset import Dataset

    cnn = studio.load_model(MODELS / "image_cnn.pt", sandbox="off")
    digits = studio.load_dataset(SAMPLE_DATA / "digits.zip")
    reps = -(-n // len(digits))
    x = np.concatenate([digits.x] * reps)[:n]
    y = np.concatenate([digits.y] * reps)[:n]
    data = Dataset(kind="image", x=x, y=y, class_names=digits.class_names, name=f"digits x{n}")
    t = time.perf_counter()
    cnn.output(x, batch_size=256)
    t_out = time.perf_counter() - t
    t = time.perf_counter()
    act = studio.activations(cnn, data, "7", batch_size=256)
    t_act = time.perf_counter() - t
    t = time.perf_counter()
    proj = act.project("pca")
    t_pca = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"rows {n}: model.output {t_out:.1f} s, activations(layer 7) {t_act:.1f} s (ratio {t_act / t_out:.2f}), "
          f"PCA of {len(proj.rows)} sampled rows {t_pca:.2f} s; peak RSS {rss:.2f} GiB; matrix {act.matrix.shape}, "
          f"{act.n_dead} dead")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
