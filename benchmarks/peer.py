"""Item 4: the studio against explainerdashboard computing the same set.

The set: SHAP values of every row of the sample table (tree path, probability
output, interventional), permutation importances (one repeat, ROC AUC: the
dashboard's defaults), and partial dependence of the 5 most important
features (10 grid points over 500 sampled rows: the dashboard's defaults).
Each side runs in its own fresh process and times only the computation
(imports and loading excluded); each reports its process's peak RSS
(the kernel's ``VmHWM``) and the peak reached during the computation.

explainerdashboard 0.5.8 pins ``numpy<2.4``, which would downgrade the
studio's numpy 2.4.6, so it lives in its own venv
(``python -m venv --system-site-packages benchmarks/out/peer-venv`` +
``pip install -r requirements-bench.txt``), created on first use.

The dashboard runs at its defaults, as a user gets it: its SHAP background
is the whole table, which shap samples down to 100 rows, the studio's
default background size, so both sides do the same amount of SHAP work.
The libraries each side uses are imported before its clock starts
(explainerdashboard imports shap and scikit-learn at import time).
"""

from __future__ import annotations

import statistics
import subprocess
import sys

from benchmarks import common
from benchmarks.common import PEER_VENV, ROOT, Row, mib, missing_reason, not_measured, registered, run_worker

SUITE = "peer"
GOAL = 0.5


def peer_python():
    return PEER_VENV / "bin" / "python"


def peer_version() -> str | None:
    py = peer_python()
    if not py.exists():
        return None
    try:
        out = subprocess.run([str(py), "-c", "from importlib.metadata import version; print(version('explainerdashboard'))"],
                             capture_output=True, text=True, timeout=120)
        return out.stdout.strip() or None
    except Exception:
        return None


def ensure_venv(create: bool) -> str | None:
    """The reason the peer cannot run, or None when its venv is ready (created if ``create``)."""
    if peer_version():
        return None
    if not create:
        return (f"peer venv {PEER_VENV} is missing; create it with `python -m venv --system-site-packages {PEER_VENV}` "
                f"and `{PEER_VENV}/bin/pip install -r requirements-bench.txt` (the full run does this itself)")
    try:
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(PEER_VENV)], check=True,
                       capture_output=True, timeout=300)
        subprocess.run([str(PEER_VENV / "bin" / "pip"), "install", "-q", "-r", str(ROOT / "requirements-bench.txt")],
                       check=True, capture_output=True, timeout=900)
    except Exception as exc:
        return f"could not create the peer venv: {exc}"
    return None if peer_version() else "peer venv created but explainerdashboard does not import"


def run(sizes, device="cpu", methods=None) -> list:
    name = "SHAP + permutation importance + 5 PDPs: studio / explainerdashboard"
    for method in ("shap", "permutation_importance", "pdp"):
        if not registered(method, "tabular"):
            return [not_measured(SUITE, name, missing_reason(method, "tabular"), GOAL)]
    reason = ensure_venv(create=sizes.name != "tiny")
    n_table = sizes.peer_rows or len(common.fixture("table"))
    studio_args = {"n_rows": sizes.peer_rows, "perm_params": {"n_repeats": 1, "scoring": "roc_auc_ovr", "max_rows": 0},
                   "pdp_params": {"grid_resolution": 10, "max_rows": 500, "grid": "uniform"}}
    if reason:
        return [not_measured(SUITE, name, reason, GOAL)]
    out = []
    try:
        ours = run_worker("peer_studio", studio_args)
    except Exception as exc:
        return [not_measured(SUITE, name, f"studio side failed: {exc}", GOAL)]
    label = "dashboard at its defaults"
    ours_runs, theirs_runs = [ours], []
    try:
        for i in range(max(1, min(3, sizes.repeats))):  # fresh processes, interleaved
            if i:
                ours_runs.append(run_worker("peer_studio", studio_args))
            theirs_runs.append(run_worker("peer_dashboard", {"n_rows": sizes.peer_rows}, python=str(peer_python())))
    except Exception as exc:
        return [not_measured(SUITE, name, f"a side failed: {exc}", GOAL)]
    ours_s = statistics.median(r["seconds"] for r in ours_runs)
    theirs_s = statistics.median(r["seconds"] for r in theirs_runs)
    ours_peak = max(r["peak_rss"] for r in ours_runs)
    theirs_peak = max(r["peak_rss"] for r in theirs_runs)
    ours_compute = max(r["compute_peak_rss"] - r["start_rss"] for r in ours_runs)
    theirs_compute = max(r["compute_peak_rss"] - r["start_rss"] for r in theirs_runs)
    theirs = theirs_runs[0]
    mem = (f"studio peak {mib(ours_peak)} (compute +{mib(ours_compute)}); "
           f"dashboard peak {mib(theirs_peak)} (compute +{mib(theirs_compute)})")
    same = "same top-5 features" if ours["features"] == theirs["features"] else (
        f"top-5 differ: studio {ours['features']}, dashboard {theirs['features']}")
    out.append(Row(SUITE, name, ours=ours_s, ref=theirs_s, ref_label="dashboard", goal=GOAL, memory=mem,
                   note=f"{n_table} rows; median of {len(ours_runs)} fresh processes per side, imports and loading "
                        f"excluded, {label} (its SHAP background: shap samples the table down to 100 rows, "
                        f"the studio's count); SHAP {ours['shap_shape']} vs {theirs['shap_shape']}; {same}"))
    out.append(Row(SUITE, "peak RSS: studio / dashboard (whole process)", ours=float(ours_peak),
                   ref=float(theirs_peak), unit="B", ref_label="dashboard",
                   note=f"imports included, each in its own process; during the computation: studio "
                        f"+{mib(ours_compute)}, dashboard +{mib(theirs_compute)}"))
    return out
