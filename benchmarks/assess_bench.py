"""Section "assess": the 100-scenario grid of :func:`studio.assess` on the sample CNN, its time and the model's share.

The grid: 4 methods (saliency, input_x_gradient, integrated_gradients, grad_cam) x 5 perturbations (noise, blur,
brightness, fgsm, pgd) x 5 severities = 100 scenarios, with deletion / insertion / infidelity on the clean
explanations, on the first ``ROWS`` digits, the model in process (``sandbox="off"``), torch on 2 threads.

The model's share: wall time inside the network (every outermost ``nn.Module`` call, through a global forward
pre/post hook, plus every autograd backward pass, through a wrapper of ``torch.autograd._engine_run_backward``)
over the assessment's wall time. Perturbing, explaining (captum's bookkeeping), metrics and provenance make the rest.

``full`` runs the whole grid; ``quick`` a stated subset (severities 1 and 5: 40 scenarios) and extrapolates the
grid's time linearly in scenarios; ``tiny`` one scenario, only to check the harness.
The grid's time and the model's share are measured with ``cache=False`` (as before the grid was stored); then the
same grid as a first run stores it (an empty cache folder, every unit written as it finishes), with the share of
its time spent writing (``StoreClock``: a share, so robust to a busy machine), and the same grid run again (every
scenario reused: what resuming a finished grid costs).
Run alone: ``python -m benchmarks --only assess``.
"""

from __future__ import annotations

import tempfile
import time

from benchmarks.common import PEER_VENV, ROOT, Row, fixture, not_measured

SUITE = "assess"
METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "grad_cam")
ATTACKS = ("noise", "blur", "brightness", "fgsm", "pgd")
GRID = {"tiny": (METHODS[:1], ATTACKS[:1], (1,), 2), "quick": (METHODS, ATTACKS, (1, 5), 3),
        "full": (METHODS, ATTACKS, (1, 2, 3, 4, 5), 10)}


class ModelClock:
    """Seconds spent inside torch modules (outermost calls) and autograd backward passes while installed."""

    def __init__(self):
        self.seconds, self.cpu, self._depth, self._t0, self._c0, self._handles, self._orig = 0.0, 0.0, 0, 0.0, 0.0, [], None

    def __enter__(self):
        import torch
        from torch.nn.modules import module as mod

        def pre(m, args):
            if self._depth == 0:
                self._t0, self._c0 = time.perf_counter(), time.process_time()
            self._depth += 1

        def post(m, args, out):
            self._depth -= 1
            if self._depth == 0:
                self.seconds += time.perf_counter() - self._t0
                self.cpu += time.process_time() - self._c0

        self._handles = [mod.register_module_forward_pre_hook(pre), mod.register_module_forward_hook(post)]
        self._orig = torch.autograd._engine_run_backward

        def backward(*a, **k):
            t, c = time.perf_counter(), time.process_time()
            try:
                return self._orig(*a, **k)
            finally:
                self.seconds += time.perf_counter() - t
                self.cpu += time.process_time() - c

        torch.autograd._engine_run_backward = backward
        return self

    def __exit__(self, *exc):
        import torch

        for h in self._handles:
            h.remove()
        torch.autograd._engine_run_backward = self._orig


class StoreClock:
    """Seconds spent in ``Cache.put_decoded`` (encoding a unit, writing, fsync, eviction) while installed."""

    def __init__(self):
        self.seconds, self.count, self._orig = 0.0, 0, None

    def __enter__(self):
        from studio.cache import Cache

        self._orig = orig = Cache.put_decoded

        def put_decoded(cache, *a, **k):
            t = time.perf_counter()
            try:
                return orig(cache, *a, **k)
            finally:
                self.seconds += time.perf_counter() - t
                self.count += 1

        Cache.put_decoded = put_decoded
        return self

    def __exit__(self, *exc):
        from studio.cache import Cache

        Cache.put_decoded = self._orig


def run(sizes, device="cpu", methods=None) -> list:
    import torch

    import studio
    from studio.cache import Cache

    methods_, attacks, severities, rows = GRID[sizes.name]
    cnn, digits = fixture("cnn"), fixture("digits")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    folder = tempfile.TemporaryDirectory(prefix="assess-bench-cache-")
    try:
        faithfulness = () if sizes.name == "tiny" else ("deletion", "insertion", "infidelity")
        store = Cache(folder.name)  # empty: every scenario computed and stored, as a first run does
        grid = dict(rows=list(range(rows)), severities=severities, faithfulness=faithfulness)
        studio.assess(cnn, digits, list(methods_[:1]), ["noise"], rows=[0], severities=(1,), faithfulness=(),
                      cache=False)  # warm
        with ModelClock() as clock:
            t, c = time.perf_counter(), time.process_time()
            res = studio.assess(cnn, digits, list(methods_), list(attacks), cache=False, **grid)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
        with StoreClock() as writing:  # a first run into an empty cache: every unit written as it finishes
            t = time.perf_counter()
            stored = studio.assess(cnn, digits, list(methods_), list(attacks), cache=store, **grid)
            wall_stored = time.perf_counter() - t
        t = time.perf_counter()
        again = studio.assess(cnn, digits, list(methods_), list(attacks), cache=store, **grid)
        wall_again = time.perf_counter() - t
    finally:
        torch.set_num_threads(threads)
        folder.cleanup()
    n = len(methods_) * len(attacks) * len(severities)
    share = clock.seconds / wall
    grid_note = (f"{len(methods_)} methods x {len(attacks)} perturbations x severities {list(severities)} = {n} "
                 f"scenarios on {rows} rows, faithfulness {list(faithfulness) or 'off'}, torch on 2 threads; "
                 f"{len(res.records)} numbers, {len(res.skipped)} skipped")
    out = [Row(suite=SUITE, name=f"assess grid, sample CNN: {n} scenarios", ours=wall, ours_label="wall",
               unit="s", status="info", note=grid_note),
           Row(suite=SUITE, name="share of the grid's time inside the model (forward + backward)",
               ours=clock.seconds, ref=wall, ours_label="in model", ref_label="wall", ratio=share, status="info",
               note="global nn.Module forward hooks (outermost calls) + autograd backward passes, over wall time"),
           Row(suite=SUITE, name="share of the grid's CPU time inside the model (forward + backward)",
               ours=clock.cpu, ref=cpu, ours_label="in model", ref_label="process CPU", unit="s", ratio=clock.cpu / cpu,
               status="info", note="the same clocks in process CPU seconds (all threads): robust to a busy machine"),
           Row(suite=SUITE, name="share of a storing run's time spent writing its units to the cache",
               ours=writing.seconds, ref=wall_stored, ours_label="writing", ref_label="stored run", unit="s",
               ratio=writing.seconds / wall_stored, status="info",
               note=f"{writing.count} units (HMAC-tagged .npz entries, each fsynced, encoding included) written to "
                    "an empty cache folder as each finished; the same grid as above with cache=True, no model clock"),
           Row(suite=SUITE, name="the same grid run again: every scenario reused from the cache",
               ours=wall_again, ref=wall_stored, ours_label="resumed", ref_label="first run", unit="s",
               ratio=wall_again / wall_stored, status="info",
               note=f"{again.provenance['grid']['reused']} of {again.provenance['grid']['scenarios']} scenarios "
                    f"reused, {again.provenance['grid']['computed']} computed; what a restarted app or CLI pays "
                    "for a finished grid (a grid stopped part way pays this share for its stored part)")]
    if sizes.name != "tiny":
        out.append(_quantus())
    if sizes.name == "quick":
        out.append(Row(suite=SUITE, name="100-scenario grid, extrapolated linearly in scenarios", ours=wall * 100 / n,
                       ours_label="wall (extrapolated)", unit="s", status="info",
                       note=f"measured {n} scenarios on {rows} rows; x {100 / n:g}; higher severities of pgd cost "
                            "the same (10 steps), fewer rows keep their prediction so resilience re-explains fewer"))
    return out


def _quantus() -> Row:
    """The studio's deletion curve against Quantus's PixelFlipping, in the peer venv (benchmarks/quantus_peer.py)."""
    import json
    import subprocess

    name = "deletion curve vs Quantus PixelFlipping, 4 digits, 32 steps: largest score difference"
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        return not_measured(SUITE, name, f"no peer venv at {PEER_VENV}; create it and pip install quantus==0.6.0 "
                                         "(requirements-bench.txt)")
    done = subprocess.run([str(python), "-m", "benchmarks.quantus_peer"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return not_measured(SUITE, name, f"quantus did not run in the peer venv: {tail[:200]}")
    got = json.loads(lines[-1])
    return Row(suite=SUITE, name=name, ours=got["max_abs_difference"], unit="", status="info",
               note=f"quantus {got['quantus']}: {got['steps']} steps on {got['rows']} rows; studio area "
                    f"{got['studio_auc']:.4f} (over the share removed), Quantus's area {got['quantus_auc_steps']:.3f} "
                    "(over step indices, so not comparable as a number; the curves are)")
