"""Section "sandbox": what isolation costs.

- sandboxed / in-process ``studio.explain`` (cache off) on workloads of a second or more: the same method,
  model and data, the model once loaded into this process (``sandbox="off"``) and once into a sandboxed worker
  (the machine's default launcher); medians of interleaved repeats after a warm-up. Goal <= 1.10.
- first call after load: ``load_model`` + one 1-row prediction in a fresh process, sandboxed against in-process
  (each in its own fresh process, so both pay their imports). Shown as sandboxed / (in-process + 1.5 s): goal <= 1,
  i.e. at most 1.5 s extra on this machine. Measured without and with a spare worker kept warm (what the app's
  server does: ``studio.sandbox.keep_spare``).
"""

from __future__ import annotations

from benchmarks import common
from benchmarks.common import Row, median_times, not_measured, run_worker

SUITE = "sandbox"
GOAL = 1.10
EXTRA_SECONDS = 1.5


def _workloads(sizes):
    rows = max(sizes.local_rows // 2, 1)
    return [
        ("permutation_importance", "gbt", "table", {"params": {"n_repeats": 30 if sizes.name == "full" else 5}}),
        ("lime", "gbt", "table", {"rows": list(range(rows)), "params": {"num_samples": sizes.lime_samples}}),
        ("integrated_gradients", "cnn", "digits", {"rows": list(range(sizes.ig_images)),
                                                    "params": {"n_steps": sizes.ig_steps}}),
    ]


def run(sizes, device="cpu", methods=None) -> list:
    import studio
    from studio.sandbox import launcher

    kind = launcher.choose("auto")
    out = []
    files = {"gbt": common.MODELS / "tabular_gbt.skops", "cnn": common.MODELS / "image_cnn.pt"}
    remote = {spec: studio.load_model(path, sandbox=kind, trust=True) for spec, path in files.items()}
    try:
        for method, model_spec, data_spec, kw in _workloads(sizes):
            if methods and method not in methods:
                continue
            local, data = common.fixture(model_spec), common.fixture(data_spec)
            fns = {
                "in_process": lambda: studio.explain(local, data, method, cache=False, device=device, **kw),
                "sandboxed": lambda: studio.explain(remote[model_spec], data, method, cache=False, device=device, **kw),
            }
            t = median_times(fns, sizes)
            out.append(Row(SUITE, f"{method} sandboxed ({kind}) / in process", t["sandboxed"], t["in_process"],
                           ours_label="sandboxed", ref_label="in process", goal=GOAL,
                           note=f"{model_spec} on {data_spec}, {kw}; workloads of a second or more in the full run"))
    finally:
        for model in remote.values():
            model.close()
    for spare in (False, True):
        try:
            sandboxed = run_worker("first_call", {"sandbox": kind, "spare": spare})
            local = run_worker("first_call", {"sandbox": "off", "spare": False})
        except Exception as exc:  # noqa: BLE001 -- one broken measurement must not lose the others
            out.append(not_measured(SUITE, f"first call after load ({'spare' if spare else 'cold'})", str(exc)))
            continue
        label = "with a spare worker kept warm" if spare else "cold worker"
        out.append(Row(SUITE, f"first call after load, {label}: sandboxed / (in process + {EXTRA_SECONDS:g} s)",
                       sandboxed["seconds"], local["seconds"] + EXTRA_SECONDS, ours_label="sandboxed",
                       ref_label=f"in process + {EXTRA_SECONDS:g} s", goal=1.0,
                       note=f"load_model + one 1-row prediction in a fresh process: sandboxed {sandboxed['seconds']:.2f} s, "
                            f"in process {local['seconds']:.2f} s (extra {sandboxed['seconds'] - local['seconds']:.2f} s)"))
    return out
