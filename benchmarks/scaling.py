"""Item 6: time and memory at 1k, 10k and 100k rows.

Rows are made by resampling the sample table with noise
(:func:`benchmarks.common.resampled_table`). All sizes run in one fresh
process (``benchmarks.worker scaling``), interleaved repeat by repeat so the
machine's drifting load falls on every size alike (100k rows run once);
before each call the kernel's peak-RSS mark is reset, so each call's peak
over the RSS it started from is its own. Row caps are
turned off (``max_rows=0``) so the methods really see every row; SHAP
explains every row (its local path over the whole table, as the global view
does).

The figure per method is the time ratio per 10x rows, t(10n) / t(n):
linear growth is 10, so the goal is <= 10.
"""

from __future__ import annotations

from benchmarks.common import Row, mib, missing_reason, not_measured, registered, run_worker

SUITE = "scaling"
GOAL = 10.0
METHODS = {
    "pdp": {"params": {"max_rows": 0}},
    "ale": {"params": {"max_rows": 0}},
    "permutation_importance": {"params": {"max_rows": 0, "n_repeats": 1}},
    "shap": {"rows": "all", "params": {}},
}


def run(sizes, device="cpu", methods=None) -> list:
    jobs = []
    out = []
    for name, spec in METHODS.items():
        if methods and name not in methods:
            continue
        if not registered(name, "tabular"):
            out.append(not_measured(SUITE, f"{name} time per 10x rows", missing_reason(name, "tabular"), GOAL))
            continue
        jobs.append({"method": name, **spec})
    if not jobs:
        return out
    from benchmarks.worker import CONTROL

    jobs.append({"method": CONTROL})  # control: how the model's own prediction cost grows on this machine
    results: dict = {}
    # all sizes in one fresh process, interleaved repeat by repeat (the load of a shared machine drifts over
    # minutes; separate processes at different times would compare different loads); 100k rows run once
    repeats = [sizes.repeats if n <= 10_000 else 1 for n in sizes.scaling_rows]
    try:
        res = run_worker("scaling", {"n_rows": list(sizes.scaling_rows), "jobs": jobs, "repeats": repeats})
        for size in res["sizes"]:
            for j in size["jobs"]:
                results.setdefault(j["method"], {})[size["n_rows"]] = j
    except Exception as exc:
        for n in sizes.scaling_rows:
            for job in jobs:
                results.setdefault(job["method"], {})[n] = {"error": str(exc)}
    for job in jobs:
        name = job["method"]
        by_n = results.get(name, {})
        sizes_ok = [n for n in sizes.scaling_rows if "seconds" in by_n.get(n, {})]
        timeline = ", ".join(
            f"{n:,}: {by_n[n]['seconds']:.2f} s (median of {by_n[n]['runs']}), +{mib(by_n[n]['peak_over'])}"
            for n in sizes_ok
        )
        errors = [f"{n:,}: {by_n[n]['error']}" for n in sizes.scaling_rows if "error" in by_n.get(n, {})]
        for small, big in zip(sizes.scaling_rows, sizes.scaling_rows[1:]):
            label = f"{name} time {big // small}x rows ({small:,} -> {big:,})"
            if small in sizes_ok and big in sizes_ok:
                a, b = by_n[small], by_n[big]
                out.append(Row(SUITE, label, ours=b["seconds"], ref=a["seconds"], ours_label=f"{big:,} rows",
                               ref_label=f"{small:,} rows", goal=None if name == CONTROL else GOAL * big / small / 10,
                               memory=f"+{mib(a['peak_over'])} -> +{mib(b['peak_over'])}"
                                      f" (peak {mib(b['peak_rss'])})",
                               note=f"params {job.get('params')}; time and peak RSS over the process's RSS before the call: {timeline}"))
            else:
                out.append(not_measured(SUITE, label, "; ".join(errors) or "a size failed", GOAL))
    return out
