"""Entry point: ``python -m benchmarks [--quick | --tiny] [--only SUITE ...] [--device cpu|cuda] [--out FILE]``.

Runs the suites, prints the table and writes ``benchmarks/RESULTS.md`` (or
``--out``) with the machine, package versions, date, the command and every
figure as a ratio measured in the same run, its goal and pass/miss, and for
each miss the reason and what would fix it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

from benchmarks import common
from benchmarks.common import SIZES, Row, not_measured

SUITES = ("overhead", "ig_floor", "cache", "peer", "anchors", "scaling", "app", "gpu")
TITLES = {
    "overhead": "1. Overhead over the direct library call (studio / direct, cache off)",
    "ig_floor": "2. Integrated gradients against the raw forward+backward floor and captum's defaults",
    "cache": "3. Cache: warm / cold, and after a process restart / cold",
    "peer": "4. Peer dashboard: studio / explainerdashboard for SHAP + permutation importance + 5 PDPs",
    "anchors": "5. Anchors: studio / anchor-exp on the same rows at the same threshold",
    "scaling": "6. Scaling: time ratio per 10x rows (linear = 10) and peak RSS",
    "app": "7. App in a real browser (Playwright + Debian chromium)",
    "gpu": "8. GPU",
}
PACKAGES = ("numpy", "pandas", "scikit-learn", "torch", "torchvision", "captum", "shap", "lime", "interpret",
            "anchor-exp", "streamlit", "playwright", "scikit-image", "skops", "onnxruntime")


# Known causes of misses, found by profiling the studio on this stack, and the change that would fix each.
# Applied to a row only when it misses; the row's own note keeps what this run measured.
_API_FIXES = (
    "studio/api.py `_versions`: reads package metadata (importlib.metadata) on every call, about 10 ms here; memoize it "
    "(functools.lru_cache on the library tuple). studio/api.py `resolve_target`: runs the model on `data.x[:1]` on every "
    "call only to count classes; use `len(model.class_names)` when known. For local methods it also runs the model on "
    "the rows to find the predicted class; hand those outputs to the explainer (e.g. a `Context.outputs` field) so base "
    "values and checks do not run the model again"
)
_ADAPTER_FIX = (
    "studio/models/adapter.py `SklearnModel._raw_output`: wraps every batch in a DataFrame so scikit-learn re-validates "
    "feature names, about 15 ms per call here (adapter.output on 10 rows 21.5 ms against 6.2 ms for predict_proba on the "
    "ndarray); pass the float ndarray when `x.dtype != object` and the estimator does not select columns by name "
    "(no ColumnTransformer), inside `warnings.catch_warnings()` to silence the feature-names warning"
)
FIXES = (
    (r"^shap \(tree path\)", "fixed per-call costs around a fast TreeExplainer call: four model calls through the adapter "
     "(targets probe, predicted class, f(x) for the additivity check, and `_tree`'s `model.output(x[:1])` to count "
     "outputs) plus package-version look-ups; the cache-hit time in the note is that bookkeeping alone",
     _ADAPTER_FIX + "; " + _API_FIXES + "; studio/explainers/shapley.py `_tree`: count outputs with "
     "`len(model.class_names)` instead of `model.output(x[:1])`"),
    (r"^permutation_importance vs", "each of the n_features x n_repeats scorer calls goes through the adapter, whose "
     "DataFrame wrapping costs more than the GBT's own prediction on 569 rows", _ADAPTER_FIX),
    (r"^lime vs", "per-call bookkeeping plus lime's predict_fn going through the adapter", _ADAPTER_FIX + "; " + _API_FIXES),
    (r"^occlusion vs captum", "the studio calls captum once per image (64 windows per forward pass of that image) "
     "plus a separate forward pass per image for its base value, and the API's target passes; the direct call "
     "occludes all images together (captum's default: one window per pass, each pass a batch of all the images)",
     "studio/explainers/superpixels.py `Occlusion.explain_one`/`PerturbationExplainer.explain`: occlude the images "
     "in one captum call with per-row targets and `perturbations_per_eval = max(1, ev.batch // n_images)`, and take "
     "base values from the unoccluded pass; plus " + _API_FIXES),
    (r"^(grad_cam|integrated_gradients) vs captum", "the studio runs the network forward 3-4 more times per "
     "call than the direct call (targets probe on x[:1], predicted class of the rows, base values f(x) or f(baseline), "
     "completeness check); on a small CNN with few images those passes are a large share of the work",
     _API_FIXES + "; studio/explainers/cam.py `grad_cam`: return the explained output from its own forward pass and use "
     "it as base values instead of `explained_output` in `GradientExplainer.explain` (studio/explainers/gradients.py)"),
    (r"^integrated_gradients vs raw fwd\+bwd floor", "extra forward passes (targets, base values, completeness check) "
     "and captum's own work over the raw passes (see the 'captum IG itself' row); for resnet18 also the studio's "
     "internal batch of 6 points (studio/device.py `batch_size_for`: 256 MiB budget / (input x 4 B x 64)) against the "
     "floor's 32",
     _API_FIXES + "; studio/explainers/gradients.py `IntegratedGradients.measure`/`_row_gaps`: reuse f(x) from the target "
     "pass; studio/device.py `batch_size_for`: on the CPU a larger budget (e.g. 1 GiB) lets a whole image's steps go in "
     "one batch"),
    (r"^integrated_gradients at studio defaults", "the studio refines rows whose completeness gap exceeds 1% by doubling "
     "their steps (see the note: rows refined and steps used), so it does more work than captum's fixed 50 steps and "
     "ends with a smaller gap than captum's", "a deliberate accuracy trade-off, not overhead: compare at equal "
     "completeness, or lower `max_steps` (studio/explainers/gradients.py `_MAX_STEPS`) if speed matters more"),
    (r"time 10x rows", "time per 10x rows above linear (see the note: medians per size, interleaved in one process); "
     "compare the control row 'model predict_proba on 20x the rows (no studio)': when the model's own prediction "
     "grows faster than linear on this machine (memory-bound trees on larger arrays), the studio's curve follows it; "
     "PDP and ICE stack grid x rows copies of the table and send them through the adapter in 4,096-row batches, each "
     "wrapped in a DataFrame; SHAP's tree path also runs the model on every row through the adapter for its "
     "additivity check", _ADAPTER_FIX + "; studio/explainers/curves.py `stacked_outputs`: bound the block by bytes and "
     "reuse one preallocated block across grid chunks instead of `np.repeat` per chunk"),
    (r"^SHAP \+ permutation importance", "most of the studio's time is SHAP's tree path and the per-call costs around "
     "it (several adapter calls per explain: targets, f(x), output count), and permutation importance through the "
     "adapter", _ADAPTER_FIX + "; " + _API_FIXES),
    (r"^first chart after", "see the note: the Streamlit server alone takes most of the budget on this loaded 2-core "
     "machine before any studio code runs; the rest is the page script (loading the sample, the data profile) and "
     "drawing", "start-up: import studio's heavy modules lazily in app.py/pages (torch, sklearn via skops are imported "
     "when the sample loads); the sample's profile could be precomputed and cached with st.cache_data"),
    (r"^Local page: cached rerun", "the results come from the disk cache and the page script itself is quick (see "
     "the note: AppTest time for the same click, server side); most of the time is Streamlit sending the page's "
     "elements and headless chromium (software rendering, --disable-gpu) drawing several Altair charts at once "
     "(one panel per method plus the agreement section)",
     "pages/local.py and studio/ui/panels.py `render_local`/`render_agreement`: draw less on first paint: put the "
     "agreement section and secondary charts behind an `st.toggle` (Streamlit does not build what the script does not "
     "reach, unlike tabs and expanders, which draw hidden content) and limit bar charts to the top-k features (e.g. 10) "
     "so each Vega view has fewer marks; then re-measure, since this run only shows the time is outside the script"),
    (r"^anchors vs anchor-exp.*: time", "the studio's search keeps lengthening rules for rows where no short rule "
     "holds on fresh samples (see the note: mean rule length against anchor-exp's, and the longest rules in the "
     "precision row), while anchor-exp stops early on rules whose fresh precision is far under the threshold (every "
     "one of its rules, see the comparison row): it is faster because its rules do not hold",
     "studio/explainers/anchors.py: give `max_anchor_size` a finite default (e.g. 8) and stop lengthening when a "
     "length step does not raise the best candidate's precision, returning the best rule with meets_threshold False "
     "as it already does; keep the fresh re-measurement"),
    (r"significantly under the threshold", "a rule's precision measured on fresh samples from anchor-exp's "
     "conditional sampler is below the threshold beyond sampling error", "studio/explainers/anchors.py: make the "
     "search's acceptance test use the fresh re-measurement (reject a rule whose fresh precision's lower bound is "
     "under the threshold and continue the beam search)"),
    (r"warm/cold$", "a cache hit still pays the per-call bookkeeping (alignment, compatibility check, target "
     "resolution that runs the model, package versions, key, read and decode), which is comparable to the whole "
     "computation of a fast method",
     _API_FIXES + "; and in studio/api.py `explain`, build the cache key from the requested target (None = each row's "
     "predicted class, which the model and rows already determine) so a hit needs no model call at all, resolving "
     "targets only on a miss"),
    (r"after restart/cold$", "a fresh process also pays first-use costs inside the call (importing the explainer's "
     "module and the libraries its compatibility check touches) on top of the per-call bookkeeping",
     _API_FIXES + "; keep library imports out of `is_compatible` and the hit path"),
)


def _annotate(rows) -> None:
    import re

    for r in rows:
        if r.status != "miss" or r.fix:
            continue
        for pattern, reason, fix in FIXES:
            if re.search(pattern, r.name):
                r.extra["reason"] = reason + (f" ({r.note})" if r.note else "")
                r.fix = fix
                break


def _suite(name):
    import importlib

    module = {"cache": "cache_bench", "anchors": "anchors_bench", "app": "app_bench"}.get(name, name)
    return importlib.import_module(f"benchmarks.{module}")


def machine() -> dict:
    """CPU model, cores, memory, GPU, OS and Python."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")).split()[1])
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    gpu = "none"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        threads = torch.get_num_threads()
    except Exception:
        threads = None
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {"cpu": cpu, "cores": f"{os.cpu_count()} logical ({affinity} usable), torch threads {threads}", "memory": mem,
            "gpu": gpu, "os": platform.platform(), "python": platform.python_version()}


def versions() -> dict:
    out = {}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def fmt_num(x, unit="s") -> str:
    if x is None:
        return ""
    if unit == "s":
        return f"{x:.3f} s" if x < 100 else f"{x:.0f} s"
    if unit == "B":
        return common.mib(x)
    return f"{x:.3g}"


def fmt_ratio(r) -> str:
    if r is None:
        return "-"
    return f"{r:.3f}" if r < 10 else f"{r:.1f}"


def table_lines(rows) -> list:
    """A Markdown table of the rows."""
    lines = ["| item | studio / ours | reference | ratio | goal | result | memory | notes |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ours = f"{r.ours_label}: {fmt_num(r.ours, r.unit)}" if r.ours is not None else ""
        ref = f"{r.ref_label}: {fmt_num(r.ref, r.unit)}" if r.ref is not None else ""
        goal = f"<= {r.goal:g}" if r.goal is not None else "-"
        status = {"pass": "pass", "miss": "**MISS**", "info": "info", "not measured": "not measured"}.get(r.status, r.status)
        note = r.note.replace("|", "/").replace("\n", " ")
        lines.append(f"| {r.name} | {ours} | {ref} | {fmt_ratio(r.ratio)} | {goal} | {status} | {r.memory} | {note} |")
    return lines


def print_table(rows) -> None:
    width = max([len(r.name) for r in rows] + [10])
    print(f"{'item':<{width}}  {'ours':>10}  {'ref':>10}  {'ratio':>7}  {'goal':>7}  result")
    for r in rows:
        ours = fmt_num(r.ours, r.unit) if r.ours is not None else "-"
        ref = fmt_num(r.ref, r.unit) if r.ref is not None else "-"
        goal = f"<={r.goal:g}" if r.goal is not None else "-"
        print(f"{r.name:<{width}}  {ours:>10}  {ref:>10}  {fmt_ratio(r.ratio):>7}  {goal:>7}  {r.status}"
              + (f"  ({r.note[:120]})" if r.status == "not measured" else ""))


def write_results(path: Path, rows, args, started, finished, mach, vers, extra_versions) -> None:
    lines = ["# Benchmark results", ""]
    lines += [
        "Generated by the harness in `benchmarks/` (do not edit by hand; rerun the command).", "",
        f"- Command: `{args.command}`",
        f"- Sizes: `{args.sizes.name}` ({', '.join(f'{k}={v}' for k, v in args.sizes.__dict__.items() if k != 'name')})",
        f"- Started: {started} UTC; finished: {finished} UTC",
        f"- Machine: {mach['cpu']}; {mach['cores']}; memory {mach['memory']}; GPU: {mach['gpu']}",
        f"- OS: {mach['os']}; Python {mach['python']}; device asked: `{args.device}`",
        "- Packages: " + ", ".join(f"{k} {v}" for k, v in {**vers, **extra_versions}.items()),
        "",
        "Every figure is a ratio of two measurements taken in this same run (medians of interleaved repeats after an",
        "untimed warm-up), because the machine is shared and absolute times drift; absolute seconds are shown only",
        "to read the ratios by. Goals are upper bounds on the ratio.",
        "",
    ]
    by_suite: dict = {}
    for r in rows:
        by_suite.setdefault(r.suite, []).append(r)
    for suite in SUITES:
        if suite not in by_suite:
            continue
        lines += [f"## {TITLES[suite]}", ""] + table_lines(by_suite[suite]) + [""]
    counts = {s: sum(r.status == s for r in rows) for s in ("pass", "miss", "not measured", "info")}
    lines += ["## Summary", "",
              f"{counts['pass']} pass, {counts['miss']} miss, {counts['not measured']} not measured, {counts['info']} informative.", ""]
    misses = [r for r in rows if r.status == "miss"]
    if misses:
        lines += ["## Misses: reason and fix", ""]
        for r in misses:
            lines.append(f"- **{r.name}** (ratio {fmt_ratio(r.ratio)}, goal <= {r.goal:g}): "
                         f"{r.extra.get('reason') or r.note}. Fix: {r.fix or 'see the report'}")
        lines.append("")
    missing = [r for r in rows if r.status == "not measured"]
    if missing:
        lines += ["## Not measured", ""] + [f"- {r.name}: {r.note}" for r in missing] + [""]
    path.write_text("\n".join(lines))


def run(sizes, only=None, device="cpu", methods=None, log=print) -> list:
    """Run the suites in ``only`` (default all) and return their rows."""
    warnings.filterwarnings("ignore")
    rows: list = []
    for suite in SUITES:
        if only and suite not in only:
            continue
        log(f"[{time.strftime('%H:%M:%S')}] {suite} ...")
        try:
            got = _suite(suite).run(sizes, device=device, methods=methods)
        except Exception as exc:  # one broken suite must not lose the others' figures
            got = [not_measured(suite, suite, f"suite failed: {type(exc).__name__}: {exc}")]
        for r in got:
            log(f"    {r.name}: {fmt_ratio(r.ratio)} ({r.status})")
        rows += got
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes, a few minutes")
    size.add_argument("--tiny", action="store_true", help="smallest sizes (the test suite's smoke run); figures are not meaningful")
    parser.add_argument("--only", nargs="+", choices=SUITES, metavar="SUITE", help=f"suites to run: {', '.join(SUITES)}")
    parser.add_argument("--methods", nargs="+", help="only these studio methods (overhead, cache, scaling)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="device for the image methods")
    parser.add_argument("--out", type=Path, default=None, help="results file (default benchmarks/RESULTS.md)")
    args = parser.parse_args(argv)
    args.sizes = SIZES["tiny" if args.tiny else "quick" if args.quick else "full"]
    args.command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("error: --device cuda was asked for but no CUDA GPU is available", file=sys.stderr)
            return 2
    out = args.out or Path(__file__).resolve().parent / "RESULTS.md"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    mach, vers = machine(), versions()
    rows = run(args.sizes, set(args.only) if args.only else None, args.device, args.methods)
    _annotate(rows)
    extra = {}
    from benchmarks import peer

    ed = peer.peer_version()
    if ed:
        extra["explainerdashboard (peer venv)"] = ed
    finished = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    print()
    print_table(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_results(out, rows, args, started, finished, mach, vers, extra)
    import json

    raw = out.with_suffix(".json") if args.out else Path(__file__).resolve().parent / "out" / "results.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps({"command": args.command, "started": started, "finished": finished, "machine": mach,
                               "versions": {**vers, **extra}, "rows": [r.to_dict() for r in rows]}, indent=1, default=str))
    print(f"\nwrote {out} and {raw}")
    return 0
