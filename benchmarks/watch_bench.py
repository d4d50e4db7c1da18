"""Section "watch": what the live-training agent costs the training loop.

- ``observe`` with no stream open / an empty function taking the same arguments: the agent's fast path is one
  dictionary lookup; timeit, best of 7 rounds. Goal <= 1.5 (a dict lookup on top of a call).
- step time on the sample CNN (``studio.small_cnn``, width 16, 32x32 digits, batches of 64, SGD) with the agent
  and no stream / without the agent: goal <= 1.01; with three streams open (mean loss per epoch, per-layer
  gradient norms max over 10 batches, top-8 examples by loss per epoch) / without: goal <= 1.05. Rounds of
  steps interleaved mode by mode in rotating order; the ratio is the median of the per-round ratios.
"""

from __future__ import annotations

import os
import statistics
import time
import timeit

from benchmarks.common import Row

SUITE = "watch"


def _observe_rows(sizes):
    from studio.watch import Watcher

    w = Watcher("bench", announce=False)
    try:
        w.observe("batch", loss=0.5, step=0)  # discovered: from here on, the no-stream path

        def empty(event, **values):
            pass

        d = {"batch": ()}
        number = 20_000 if sizes.name == "tiny" else 200_000
        best = {}
        for name, stmt in (("observe", lambda: w.observe("batch", loss=0.5, step=1)),
                           ("empty", lambda: empty("batch", loss=0.5, step=1)),
                           ("dict", lambda: d.get("batch"))):
            best[name] = min(timeit.repeat(stmt, number=number, repeat=7)) / number
    finally:
        w.close()
    return [Row(SUITE, "observe with no stream open / empty function call (same arguments)", best["observe"],
                best["empty"], ours_label="observe", ref_label="empty call", goal=1.5,
                note=f"per call: observe {best['observe'] * 1e9:.0f} ns, empty call {best['empty'] * 1e9:.0f} ns, "
                     f"a bare dict.get {best['dict'] * 1e9:.0f} ns (lambda included in each); timeit, best of 7 "
                     f"rounds of {number}")]


def _step_rows(sizes, device):
    import torch

    from models.train_images import digits_32
    from studio.models.architectures import STUDIO_ARCHITECTURES
    from studio.watch import Watcher, connect

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the agent's thread and the loop share this machine's cores; one BLAS thread is steadier
    x, y = digits_32()
    x, y = torch.tensor(x[:512]).to(device), torch.tensor(y[:512]).to(device)
    net = STUDIO_ARCHITECTURES["studio.small_cnn"](in_channels=1, num_classes=10, width=16).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    steps = 4 if sizes.name == "tiny" else 8
    blocks = {"tiny": 2, "quick": 24, "full": 60}[sizes.name]
    idle, busy = Watcher("idle", announce=False), Watcher("busy", announce=False)
    state = {"i": 0}

    def block(w):
        def run():
            for _ in range(steps):
                i = state["i"] = state["i"] + 1
                b = slice((i * 64) % 448, (i * 64) % 448 + 64)
                out = net(x[b])
                losses = torch.nn.functional.cross_entropy(out, y[b], reduction="none")
                loss = losses.mean()
                opt.zero_grad()
                loss.backward()
                if w is not None:
                    w.observe("batch", loss=loss, losses=losses.detach(), model=net, inputs=x[b],
                              outputs=out.detach(), targets=y[b], step=i)
                opt.step()
                if w is not None and i % 8 == 0:
                    w.end_window("epoch")
            if device == "cuda":
                torch.cuda.synchronize()
        return run

    client = None
    try:
        for w in (idle, busy):
            block(w)()  # discovered
        client = connect(busy.address, busy.token)
        client.open_stream("batch", "scalar", {"name": "loss"}, reduce="mean", until="epoch")
        client.open_stream("batch", "grad_norm", {}, reduce="max", every=10)
        client.open_stream("batch", "top_loss", {"k": 8}, reduce="topk", reduce_params={"k": 8}, until="epoch")
        fns = {"none": block(None), "idle": block(idle), "busy": block(busy)}
        for fn in fns.values():
            fn()
        times = {k: [] for k in fns}
        cpu = {k: [] for k in fns}  # CPU seconds of the training thread plus the mode's agent thread
        clocks = {"none": (), "idle": (time.pthread_getcpuclockid(idle._thread.ident),),
                  "busy": (time.pthread_getcpuclockid(busy._thread.ident),)}
        order = list(fns)
        for r in range(blocks):
            for k in order[r % 3:] + order[:r % 3]:  # rotated each round: no mode always runs first or last
                c0 = time.thread_time() + sum(time.clock_gettime(c) for c in clocks[k])
                start = time.perf_counter()
                fns[k]()
                times[k].append((time.perf_counter() - start) / steps)
                if k == "busy":
                    time.sleep(0.02)  # let the agent finish this block's events, so its CPU is counted here
                cpu[k].append((time.thread_time() + sum(time.clock_gettime(c) for c in clocks[k]) - c0) / steps)
        med = {k: statistics.median(v) for k, v in times.items()}
        # ratios paired round by round (the three modes of one round ran back to back), so drifts in this shared
        # machine's load cancel; the reported ratio is the median of the paired ratios
        paired = {k: statistics.median(a / b for a, b in zip(times[k], times["none"])) for k in ("idle", "busy")}
        cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
        cpu_paired = {k: statistics.median(a / b for a, b in zip(cpu[k], cpu["none"])) for k in ("idle", "busy")}
        got = client.poll(1.0)
        dropped = busy.dropped
    finally:
        if client is not None:
            client.close()
        idle.close()
        busy.close()
        torch.set_num_threads(threads)
    note = (f"median step {med['none'] * 1e3:.2f} ms without the agent, {med['idle'] * 1e3:.2f} ms with it idle, "
            f"{med['busy'] * 1e3:.2f} ms with three streams ({len(got)} windows received, {dropped} "
            f"events dropped); {blocks} rounds of {steps} steps per mode, interleaved in rotating order, ratio = median of the "
            f"per-round ratios; on {device}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return [Row(SUITE, "CNN step: agent with no stream / no agent", med["idle"], med["none"], ours_label="idle agent",
                ref_label="no agent", ratio=paired["idle"], goal=1.01, note=note),
            Row(SUITE, "CNN step: three streams open / no agent", med["busy"], med["none"], ours_label="3 streams",
                ref_label="no agent", ratio=paired["busy"], goal=1.05, note=note),
            Row(SUITE, "CNN step CPU (training + agent threads): agent with no stream / no agent", cpu_med["idle"],
                cpu_med["none"], ours_label="idle agent", ref_label="no agent", ratio=cpu_paired["idle"],
                note="CPU time of the training thread plus the agent's thread (time.thread_time, "
                     "pthread_getcpuclockid) in the same rounds: what the agent costs whatever else runs"),
            Row(SUITE, "CNN step CPU (training + agent threads): three streams / no agent", cpu_med["busy"],
                cpu_med["none"], ours_label="3 streams", ref_label="no agent", ratio=cpu_paired["busy"],
                note="as above; the agent's thread computes the map and reduce steps off the training thread")]


def run(sizes, device="cpu", methods=None) -> list:
    return _observe_rows(sizes) + _step_rows(sizes, device)
