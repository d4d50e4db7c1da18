"""Section "activations" (issue 15): the sample CNN's layer 7 captured for 50,000 images, within 60 s and 2 GiB.

Rows (each measured in a fresh child process, so its peak RSS is the capture's own):

- ``studio.activations`` on 50,000 images (the 360 held-out digits repeated), plus the PCA projection of its
  seeded sample of at most ``MAX_PROJECTED`` rows / 60 s: goal <= 1.0.
- the child's peak RSS / 2 GiB: goal <= 1.0.
- capture / ``model.output`` on the same rows (the hooks' and reductions' overhead over a plain forward pass).
- the same capture for a sandboxed model (the dataset already sent to its worker; the time to send it, once per
  dataset, is in the note) / in process.
- a cache hit (the matrix memory-mapped) / the capture.

Run alone: ``python -m benchmarks.activations_scale [rows] [--sandbox auto|off] [--threads N]`` prints one JSON line.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

from benchmarks.common import ROOT, Row

SUITE = "activations"
BUDGET_S = 60.0
BUDGET_BYTES = 2 * 2**30


def measure(n: int, sandbox: str = "off", threads: int | None = None) -> dict:
    """Seconds and peak RSS of one capture of ``n`` rows (in this process; call it in a fresh one)."""
    import tempfile

    import numpy as np

    os.environ["STUDIO_CACHE_DIR"] = tempfile.mkdtemp(prefix="studio-act-bench-")
    import torch

    if threads:  # model.output and the capture both
        torch.set_num_threads(threads)
        os.environ["STUDIO_CAPTURE_THREADS"] = str(threads)
    import studio
    from benchmarks.common import MODELS, SAMPLE_DATA
    from studio.data.dataset import Dataset

    cnn = studio.load_model(MODELS / "image_cnn.pt", sandbox=sandbox)
    digits = studio.load_dataset(SAMPLE_DATA / "digits.zip")
    reps = -(-n // len(digits))
    x = np.concatenate([digits.x] * reps)[:n]
    y = np.concatenate([digits.y] * reps)[:n]
    data = Dataset(kind="image", x=x, y=y, class_names=digits.class_names, name=f"digits x{n}")
    studio.activations(cnn, digits, "7", rows=range(64), cache=False).project("pca")  # warm: imports, first call
    from studio.activations.capture import capture_threads

    t_send = 0.0
    if getattr(cnn, "remote", False):  # the dataset goes to the worker once per dataset (any request about it)
        t = time.perf_counter()
        cnn._with_data({"type": "graph"}, data)
        t_send = time.perf_counter() - t
    m = min(n, 10_000)  # the overhead ratio on the first rows: a plain forward pass with the same threads
    with capture_threads():
        t = time.perf_counter()
        cnn.output(x[:m], batch_size=64)
        t_out = time.perf_counter() - t
    t = time.perf_counter()
    studio.activations(cnn, data, "7", rows=range(m), cache=False)
    t_first = time.perf_counter() - t
    t = time.perf_counter()
    act = studio.activations(cnn, data, "7")
    t_act = time.perf_counter() - t
    t = time.perf_counter()
    proj = act.project("pca")
    t_pca = time.perf_counter() - t
    t = time.perf_counter()
    hit = studio.activations(cnn, data, "7")
    t_hit = time.perf_counter() - t
    assert hit.cache == "hit" and np.array_equal(np.asarray(hit.matrix), act.matrix)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with capture_threads():
        threads = torch.get_num_threads()
    return {"rows": n, "sandbox": sandbox, "threads": threads, "overhead_rows": m, "output_s": t_out, "first_capture_s": t_first, "capture_s": t_act,
            "pca_s": t_pca, "send_s": t_send, "projected": int(len(proj.rows)), "hit_s": t_hit, "peak_rss_bytes": rss,
            "matrix": list(act.matrix.shape), "dead": act.n_dead, "load": os.getloadavg()[0]}


def _child(n: int, sandbox: str) -> dict:
    run = subprocess.run([sys.executable, "-m", "benchmarks.activations_scale", str(n), "--sandbox", sandbox],
                         capture_output=True, text=True, cwd=ROOT, timeout=900)
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("{")]
    if run.returncode != 0 or not lines:
        raise RuntimeError(f"child failed: {run.stderr.strip().splitlines()[-1:] or run.returncode}")
    return json.loads(lines[-1])


def run(sizes, device="cpu", methods=None) -> list:
    from studio.sandbox import launcher

    n = {"tiny": 500, "quick": 10_000}.get(sizes.name, 50_000)
    local = _child(n, "off")
    capture = local["capture_s"] + local["pca_s"]
    where = f"{local['threads']} torch thread(s), load average {local['load']:.1f} at the end"
    rows = [
        Row(SUITE, f"{n:,} images: studio.activations(layer 7) + PCA of {local['projected']:,} sampled rows / 60 s",
            capture, BUDGET_S * n / 50_000, ours_label="capture + projection", ref_label="budget", goal=1.0,
            note=f"capture {local['capture_s']:.1f} s, PCA {local['pca_s']:.2f} s; {where}"
                 + ("" if n == 50_000 else f"; budget scaled to {n:,} rows")),
        Row(SUITE, f"{n:,} images: peak RSS / 2 GiB", local["peak_rss_bytes"], BUDGET_BYTES, unit="bytes",
            ours_label="peak RSS", ref_label="2 GiB", goal=1.0,
            note=f"{local['peak_rss_bytes'] / 2**30:.2f} GiB, the 50,000 images themselves 0.20 GiB"),
        Row(SUITE, f"capture / model.output (first {local['overhead_rows']:,} rows, batches of 64, same threads)",
            local["first_capture_s"], local["output_s"], ours_label="activations", ref_label="model.output", goal=1.2,
            note="hooks, reductions inside the hook, predictions and labels over a plain forward pass"),
        Row(SUITE, "cache hit (memory-mapped matrix) / capture", local["hit_s"], local["capture_s"],
            ours_label="hit", ref_label="capture", goal=0.05),
    ]
    if sizes.name != "tiny" and launcher.choose("auto") not in ("off", "none"):
        boxed = _child(n, "auto")
        rows.append(Row(SUITE, "sandboxed / in-process capture (the rows and the matrix cross the pipe)",
                        boxed["capture_s"], local["capture_s"], ours_label="sandboxed", ref_label="in process", goal=1.25,
                        note=f"{boxed['capture_s']:.1f} s against {local['capture_s']:.1f} s; sending the "
                             f"{n:,}-image dataset to the worker took {boxed['send_s']:.1f} s more, once per dataset"))
    return rows


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(prog="python -m benchmarks.activations_scale")
    ap.add_argument("rows", type=int, nargs="?", default=50_000)
    ap.add_argument("--sandbox", default="off")
    ap.add_argument("--threads", type=int)
    a = ap.parse_args()
    print(json.dumps(measure(a.rows, a.sandbox, a.threads)))
