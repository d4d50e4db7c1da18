"""Shared pieces of the benchmark harness: sizes, timing, memory, rows, samples.

Every figure the harness reports is a ratio of two times (or two memory
peaks) measured in the same run, interleaved repeat by repeat, so that the
load of a shared machine moves both sides alike. Absolute seconds are
printed too, but only the ratios are compared against the goals.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
SAMPLE_DATA = ROOT / "sample_data"
OUT = ROOT / "benchmarks" / "out"
PEER_VENV = Path(os.environ.get("STUDIO_BENCH_PEER_VENV") or OUT / "peer-venv")


# ---------------------------------------------------------------------------- sizes
@dataclass(frozen=True)
class Sizes:
    """How big each benchmark is.

    Attributes
    ----------
    name : {"tiny", "quick", "full"}
    repeats : int
        Timed repeats per side (the median is reported); one untimed warm-up
        per side comes first unless ``warmup`` is 0.
    warmup : int
    local_rows : int
        Rows explained by local tabular methods (shap, lime).
    lime_samples : int
        LIME perturbation samples per row.
    ig_images, ig_steps : int
        Integrated gradients on the sample CNN (the issue: 16 images, 32 steps).
    resnet_images, resnet_steps : int
        Integrated gradients on resnet18 at 224x224.
    scaling_rows : tuple of int
    anchor_rows : int
        Rows explained by both anchors implementations (the issue: 20).
    peer_rows : int or None
        Rows handed to the dashboards (None: the whole sample table).
    image_rows : int
        Images explained by grad_cam and occlusion.
    resnet_repeats : int
        Timed repeats for resnet18 (each takes about a minute on 2 cores).
    """

    name: str
    repeats: int
    warmup: int
    local_rows: int
    lime_samples: int
    ig_images: int
    ig_steps: int
    resnet_images: int
    resnet_steps: int
    scaling_rows: tuple
    anchor_rows: int
    peer_rows: int | None
    image_rows: int
    resnet_repeats: int


TINY = Sizes("tiny", repeats=1, warmup=0, local_rows=2, lime_samples=200, ig_images=2, ig_steps=4,
             resnet_images=0, resnet_steps=2, scaling_rows=(50, 500), anchor_rows=1, peer_rows=50, image_rows=2,
             resnet_repeats=1)
QUICK = Sizes("quick", repeats=3, warmup=1, local_rows=10, lime_samples=1000, ig_images=16, ig_steps=32,
              resnet_images=2, resnet_steps=8, scaling_rows=(1_000, 10_000), anchor_rows=3, peer_rows=None, image_rows=4,
              resnet_repeats=2)
FULL = Sizes("full", repeats=5, warmup=1, local_rows=20, lime_samples=5000, ig_images=16, ig_steps=32,
             resnet_images=16, resnet_steps=32, scaling_rows=(1_000, 10_000, 100_000), anchor_rows=20, peer_rows=None,
             image_rows=16, resnet_repeats=1)
SIZES = {"tiny": TINY, "quick": QUICK, "full": FULL}


# ----------------------------------------------------------------------------- rows
@dataclass
class Row:
    """One line of the results table.

    ``ratio`` is ``ours / ref`` (both seconds, or both bytes for memory rows);
    ``goal`` is the bound the ratio must stay under (``<=``), or None when
    the row only informs. ``status`` is "pass", "miss", "info" or
    "not measured"; a miss or a not-measured row carries its reason in
    ``note`` (and a miss its fix in ``fix``).
    """

    suite: str
    name: str
    ours: float | None = None
    ref: float | None = None
    ours_label: str = "studio"
    ref_label: str = "reference"
    unit: str = "s"
    ratio: float | None = None
    goal: float | None = None
    status: str = ""
    note: str = ""
    fix: str = ""
    memory: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.ratio is None and self.ours is not None and self.ref:
            self.ratio = self.ours / self.ref
        if not self.status:
            if self.ratio is None:
                self.status = "not measured"
            elif self.goal is None:
                self.status = "info"
            else:
                self.status = "pass" if self.ratio <= self.goal else "miss"

    def to_dict(self) -> dict:
        return asdict(self)


def not_measured(suite: str, name: str, reason: str, goal: float | None = None, **kw) -> Row:
    return Row(suite=suite, name=name, goal=goal, status="not measured", note=reason, **kw)


# --------------------------------------------------------------------------- timing
def median_times(fns: dict, sizes: Sizes) -> dict:
    """Median seconds of each callable, interleaved repeat by repeat.

    Parameters
    ----------
    fns : dict of name -> callable()
    sizes : Sizes
        ``warmup`` untimed calls of each, then ``repeats`` timed rounds; in
        each round every callable runs once, in turn.

    Returns
    -------
    dict of name -> float (median seconds)
    """
    for _ in range(sizes.warmup):
        for fn in fns.values():
            fn()
    times: dict = {k: [] for k in fns}
    for _ in range(sizes.repeats):
        for k, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def timed(fn):
    """(result, seconds) of one call."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


# --------------------------------------------------------------------------- memory
def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes() -> int:
    """Peak resident set size since start or the last :func:`reset_peak_rss`."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def mib(n: float | None) -> str:
    return "" if n is None else f"{n / 2**20:.0f} MiB"


# ------------------------------------------------------------------- subprocesses
def run_worker(task: str, args: dict, python: str | None = None, timeout: float = 1800, env: dict | None = None) -> dict:
    """Run ``python -m benchmarks.worker TASK`` in a fresh process.

    The worker reads ``args`` as JSON on stdin and prints one JSON object on
    its last stdout line. Returns that object, with ``wall`` added. Workers
    report memory from their own ``VmHWM`` (``getrusage`` max RSS of a child
    also counts the parent's RSS at fork time on Linux, so it is not used).
    """
    cmd = [python or sys.executable, "-m", "benchmarks.worker", task]
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, input=json.dumps(args), capture_output=True, text=True, cwd=ROOT, timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
        raise RuntimeError(f"worker {task} failed (exit {proc.returncode}): " + " | ".join(tail))
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"worker {task} printed no result: {proc.stdout[-500:]} {proc.stderr[-500:]}")
    out = json.loads(lines[-1])
    out["wall"] = wall
    return out


# ------------------------------------------------------------------------ samples
def sample_table():
    import studio

    return studio.load_dataset(SAMPLE_DATA / "breast_cancer.csv")


def sample_gbt():
    import studio

    return studio.load_model(MODELS / "tabular_gbt.skops", sandbox="off")


def sample_mlp():
    import studio

    return studio.load_model(MODELS / "tabular_mlp.pt", sandbox="off")


def sample_digits():
    import studio

    return studio.load_dataset(SAMPLE_DATA / "digits.zip")


def sample_cnn(scripted: bool = True):
    """The sample CNN: TorchScript (``image_cnn.pt``) or the in-memory module
    built from its state dict (``image_cnn_state.pt``; captum's layer hooks
    need a plain ``nn.Module``)."""
    import studio

    if scripted:
        return studio.load_model(MODELS / "image_cnn.pt", sandbox="off")
    return studio.load_model(MODELS / "image_cnn_state.pt", sandbox="off")


def resampled_table(n_rows: int, seed: int = 0, noise: float = 0.05):
    """The sample table resampled to ``n_rows`` rows with Gaussian noise.

    Rows are drawn with replacement; every numeric feature gets noise of
    ``noise`` times its standard deviation; labels follow their rows.
    """
    import numpy as np

    from studio.data.tabular import table_dataset

    base = sample_table()
    frame = base.frame
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(frame), n_rows)
    new = frame.iloc[idx].reset_index(drop=True).copy()
    std = frame.std().to_numpy()
    new.loc[:, :] = new.to_numpy() + rng.normal(0.0, 1.0, new.shape) * std * noise
    new[base.label] = base.y[idx]
    return table_dataset(new, name=f"breast_cancer_x{n_rows}", label=base.label)


def registered(name: str, data_kind: str) -> bool:
    """Whether ``name`` is in the studio registry for ``data_kind`` right now."""
    from studio.explainers import registry

    return data_kind in registry.REGISTRY.get(name, {})


def missing_reason(name: str, data_kind: str) -> str:
    return f"`{name}` ({data_kind}) is not registered in studio/explainers/registry.py at run time"


_LOADED: dict = {}


def fixture(name: str):
    """Samples loaded once per process: table, gbt, digits, cnn, cnn_state."""
    if name not in _LOADED:
        _LOADED[name] = {
            "table": sample_table, "gbt": sample_gbt, "digits": sample_digits,
            "cnn": lambda: sample_cnn(True), "cnn_state": lambda: sample_cnn(False), "mlp": sample_mlp,
        }[name]()
    return _LOADED[name]
