"""``python -m studio``: methods, explain, report, graph, activations, assess, doctor, serve, batch.

Bad input exits with status 2 and one ``error: ...`` line on stderr (no
traceback unless ``--debug``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from studio.errors import StudioError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2, like every other bad input
        raise StudioError(f"{message} (see {self.prog} --help)")  # prog: "python -m studio [command]"


def _parse_params(pairs) -> dict:
    params = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise StudioError(f"--param takes key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        params[key.strip()] = value.strip()
    return params


def _parse_rows(text):
    if text is None:
        return None
    try:  # row numbers and START:STOP ranges (STOP excluded), e.g. 0,5 or 0:5
        out = []
        for part in (p.strip() for p in text.split(",")):
            if ":" in part:
                start, stop = part.split(":")
                out.extend(range(int(start), int(stop)))
            elif part:
                out.append(int(part))
        return out
    except ValueError:
        raise StudioError(f"--rows takes comma-separated row numbers and START:STOP ranges such as 0,5 or 0:5, "
                          f"got {text!r}") from None


def _load_model(args):
    """The model of ``--model``; the card's warnings (unknown fields) as ``warning:`` lines on stderr."""
    import warnings

    import studio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # said once below, without a source line
        model = studio.load_model(args.model, card=args.card, trust_pickle=args.trust_pickle,
                                  sandbox=args.sandbox, trust=args.trust)
    for message in model.card.warnings:
        print(f"warning: {_one_line(message)}", file=sys.stderr)
    return model


def _load(args):
    import studio

    model = _load_model(args)
    # the label: --label, else studio.data.tabular.label_column (the rule studio.explain uses too)
    data = studio.load_dataset(args.data, label=getattr(args, "label", None), feature_names=model.feature_names)
    return model, data


def _add_model_args(p, required=True):
    p.add_argument("--model", required=required, help="model file (.skops, .pt, .pt2, .onnx, .safetensors, ...)")
    p.add_argument("--data", required=required, help="dataset (CSV, Parquet, .zip of class folders, .npz, folder)")
    p.add_argument("--card", help="model card JSON (default: <model>.card.json beside the model)")
    p.add_argument("--label", help="label column of a table")
    p.add_argument("--trust-pickle", action="store_true", help="allow .pkl/.joblib models (runs code from the file)")
    p.add_argument("--trust", action="store_true",
                   help="allow program files (TorchScript, .pt2, ONNX) where no sandbox can be made")
    p.add_argument("--sandbox", choices=("auto", "bubblewrap", "unshare", "none", "off"),
                   help="where the model runs (default: STUDIO_SANDBOX or auto; off = in this process, trusted files only)")


def _add_explain_args(p):
    p.add_argument("--rows", help="rows to explain, e.g. 0,5 or 0:5 (local methods; ICE draws these rows)")
    p.add_argument("--target", help="class index or name to explain (default: predicted class)")
    p.add_argument("--features", help="features for curve methods, e.g. f1,f2")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="method parameter (repeatable)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--no-cache", action="store_true", help="compute afresh, do not read or write the cache")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m studio", description="Model Inspection Studio")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = sub.add_parser("methods", help="list methods, with availability for a model and data")
    _add_model_args(p, required=False)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("explain", help="run one method and print or save its result")
    _add_model_args(p)
    p.add_argument("--method", required=True)
    _add_explain_args(p)
    p.add_argument("--out", help="write the result as JSON (schema studio.explanation/1); without it a small "
                                 f"result is printed and one over {PRINT_LIMIT // 1000} KB is written to "
                                 "<method>-result.json")
    p.add_argument("--estimate", action="store_true", help="print the estimated cost and stop (nothing runs)")
    p.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                   help="time budget: the run is stopped past it (default: none)")
    p.add_argument("--json", action="store_true", help="with --estimate: print the estimate as JSON")

    p = sub.add_parser("report", help="write a self-contained HTML report")
    _add_model_args(p)
    p.add_argument("--methods", required=True, help="comma-separated method names")
    _add_explain_args(p)
    p.add_argument("--out", required=True, help="report file (.html)")

    p = sub.add_parser("graph", help="a torch or ONNX model's computation graph: shapes, parameters, multiply-adds")
    _add_model_args(p, required=False)
    p.add_argument("--collapse", type=int, default=0, metavar="DEPTH",
                   help="merge nodes by the first DEPTH parts of their module path (1: layer1, layer2, ...)")
    p.add_argument("--json", action="store_true", help="print JSON (schema studio.activations/1)")
    p.add_argument("--out", help="write the graph as JSON (schema studio.activations/1)")

    p = sub.add_parser("activations", help="one layer's activations for rows of a dataset (torch models)")
    _add_model_args(p)
    p.add_argument("--layer", required=True, help="layer name, as listed by python -m studio graph")
    p.add_argument("--rows", help="rows, e.g. 0,5 (default: every row)")
    p.add_argument("--reduce", default="mean", choices=("mean", "max"), help="how a channel's map becomes one number")
    p.add_argument("--group-by", choices=("label", "prediction", "correct"), help="print mean activations per group")
    p.add_argument("--out", help="write the result as JSON (schema studio.activations/1)")

    p = sub.add_parser("assess", help="explanation quality: cost, performance, deviation, resilience under attacks")
    _add_model_args(p)
    p.add_argument("--methods", help="comma-separated local attribution methods, e.g. shap,lime")
    p.add_argument("--from", dest="from_file", metavar="ASSESSMENT.json",
                   help="run an earlier assessment again from its provenance (methods, parameters, attacks, rows, "
                        "seed, settings: the other grid options are ignored) and say which numbers it reproduced")
    p.add_argument("--attacks", default="noise",
                   help="comma-separated: noise, blur, brightness (images), fgsm, pgd (default: noise)")
    p.add_argument("--faithfulness", default="deletion,insertion,infidelity,sensitivity",
                   help="comma-separated: deletion, insertion, infidelity, sensitivity, or none (default: all)")
    p.add_argument("--rows", help="rows assessed, e.g. 0,1,2 (default: the first 10)")
    p.add_argument("--severities", default="1,2,3,4,5", help="severity grid (default 1,2,3,4,5; 0 is no change)")
    p.add_argument("--seed", type=int, default=0, help="seed of every perturbation and seeded method")
    p.add_argument("--top-k", type=int, help="features or pixels in the top-k overlap (default 5 / 10%% of pixels)")
    p.add_argument("--param", action="append", metavar="METHOD.KEY=VALUE",
                   help="a method's parameter, e.g. lime.num_samples=500 (repeatable)")
    p.add_argument("--out", default="assessment.json",
                   help="JSON file (schema studio.assessment/1); a .csv beside it holds the long table")
    p.add_argument("--no-cache", action="store_true",
                   help="compute every scenario afresh, do not read or write the cache (by default each finished "
                        "scenario is kept, and a re-run computes only the missing ones)")

    p = sub.add_parser("doctor", help="what this machine offers: sandbox kind, GPU, versions")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("serve", help="the HTTP API (FastAPI on uvicorn; docs/api.md)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.add_argument("--token", help="bearer token (default: STUDIO_API_TOKEN, else a random one printed once); "
                   "one that begins with '-' goes as --token=VALUE")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback --host: other machines can reach the API (put TLS in front)")
    p.add_argument("--workers", type=int, default=2, help="jobs running at once (default 2)")
    p.add_argument("--print-openapi", action="store_true",
                   help="print the OpenAPI document and exit (python -m studio serve --print-openapi > docs/openapi.json)")

    p = sub.add_parser("batch", help="explain every row of a large dataset on Ray; partitioned Parquet out (docs/scale.md)")
    _add_model_args(p)
    p.add_argument("--method", required=True, help="a local method, e.g. shap")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="a method parameter (repeatable)")
    p.add_argument("--target", help="class index or name to explain (default: predicted class)")
    p.add_argument("--rows", default="all", help="all (default), or row numbers and START:STOP ranges, e.g. 0:100000")
    p.add_argument("--out", required=True, help="output folder: part-NNNNN.parquet and manifest.json (studio.batch/1)")
    p.add_argument("--address", help="a running Ray cluster (default: RAY_ADDRESS, else a local Ray for this command)")
    p.add_argument("--workers", type=int, help="Ray actors, one model worker each (default: every CPU Ray has)")
    p.add_argument("--partition-rows", type=int, default=10_000, help="rows per partition (default 10000)")
    return parser


def _method_params(args) -> dict:
    params = _parse_params(args.param)
    if args.features:
        params.setdefault("features", args.features)
    return params


def cmd_methods(args) -> int:
    import studio

    model = data = None
    if args.model:
        model = _load_model(args)
    if args.data:
        data = studio.load_dataset(args.data, label=args.label, feature_names=model.feature_names if model else None)
    infos = studio.methods(model, data)
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], indent=2))
        return 0
    for info in infos:
        state = "available" if info.available else f"unavailable: {info.reason}"
        print(f"{info.name:24s} {info.data_kind:8s} {info.scope:7s} {state}")
    return 0


PRINT_LIMIT = 64_000
"""Characters of JSON printed to stdout at most; a longer result (image maps) goes to a file."""


def verdict_lines(exp) -> list[str]:
    """One line per check with a verdict, worst first: ``FAIL Local gap 0.325 (pass at or below 0.05, fail above 0.2, warn between)``."""
    from studio.checks import verdicts

    return [f"{v.status.upper():4s} {v.label} {v.shown}" + (f" ({v.threshold})" if v.threshold else "")
            for v in verdicts(exp.checks) if v.status != "info"]


def cmd_explain(args) -> int:
    import studio

    model, data = _load(args)
    if args.estimate:
        return _estimate(args, model, data)
    exp = studio.explain(
        model, data, args.method, rows=_parse_rows(args.rows), target=args.target,
        params=_method_params(args), device=args.device, cache=not args.no_cache, timeout=args.budget,
    )
    text = exp.to_json(indent=2)
    out = args.out
    if not out and len(text) > PRINT_LIMIT:  # 400 KB of image maps is not for a terminal
        out = f"{exp.method}-result.json"
    if out:
        _write(Path(out), text)
        print(f"wrote {out} ({len(text) / 1000:.0f} KB; {exp.method}, {exp.kind}, {exp.compute_seconds:.2g} s, "
              f"cache {exp.cache})" + ("" if args.out else "; --out FILE chooses the file"))
        for line in verdict_lines(exp):
            print(line)
    else:
        print(text)
        for line in verdict_lines(exp):  # stdout stays one JSON document
            print(line, file=sys.stderr)
    return 0


def _estimate(args, model, data) -> int:
    """``explain --estimate``: the cost estimate of the run, nothing run (two significant figures)."""
    from studio.api import requested_target, resolve_rows, row_scope
    from studio.cost import estimate
    from studio.explainers import registry

    explainer = registry.get(args.method, data.kind)
    data = data.aligned_to(model)
    params = explainer.params.validate(_method_params(args), args.method)
    rows = resolve_rows(_parse_rows(args.rows), data, row_scope(explainer, _parse_rows(args.rows)))
    device = "cpu"
    if getattr(model, "differentiable", False):
        from studio.device import resolve_device

        device = resolve_device(args.device)
    target = requested_target(model, data, args.target, explainer.scope)
    est = estimate(explainer, model, data, params, len(rows or []), target=target, device=device, fresh=True)
    if args.json:
        print(json.dumps({"method": args.method, "seconds": float(f"{est.seconds:.2g}"), "evaluations": est.evaluations,
                          "calls": est.calls, "rows": len(rows or []), "params": est.params,
                          "adaptive": est.adaptive, "setup_seconds": float(f"{est.setup:.2g}"),
                          "counts": est.cost.to_dict()}, default=str))
    else:
        print(f"{args.method}: {est.words()} ({est.evaluations:,} rows through the model in {est.calls:,} calls); "
              "nothing was run")
    return 0


def cmd_report(args) -> int:
    import studio
    from studio.report import build_report

    model, data = _load(args)
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not names:
        raise StudioError("--methods needs at least one method name")
    explanations = []
    for name in names:
        explanations.append(
            studio.explain(model, data, name, rows=_parse_rows(args.rows), target=args.target,
                           params=_method_params(args) if len(names) == 1 else _parse_params(None),
                           device=args.device, cache=not args.no_cache)
        )
    html = build_report(model, data, explanations)
    _write(Path(args.out), html)
    print(f"wrote {args.out} ({len(explanations)} panels)")
    return 0


def cmd_graph(args) -> int:
    """Print (or write) the model's graph: one line per node, or JSON."""
    import studio

    if not args.model:
        raise StudioError("--model is required (see python -m studio graph --help)")
    model = _load_model(args)
    data = studio.load_dataset(args.data, label=args.label, feature_names=model.feature_names) if args.data else None
    g = studio.graph(model, data).collapse(args.collapse)
    if args.out:
        _write(Path(args.out), g.to_json(model, indent=2))
        print(f"wrote {args.out} ({len(g.nodes)} nodes, {g.total_params:,} parameters, {g.total_macs:,} MACs)")
        return 0
    if args.json:
        print(g.to_json(model, indent=2))
        return 0
    print(f"{model.name}: {g.source}, input {g.input_shape}, {len(g.nodes)} nodes, "
          f"{g.total_params:,} parameters, {g.total_macs:,} multiply-adds per row")
    for n in g.nodes:
        shape = "x".join(map(str, n.output_shape)) if n.output_shape else "?"
        print(f"{n.name:28s} {n.op:22s} {shape:16s} {n.params:>12,} {n.macs:>14,}  {n.layer or ''}")
    return 0


def cmd_activations(args) -> int:
    """Capture one layer's activations; print a summary (and group means) or write JSON."""
    import studio

    model, data = _load(args)
    act = studio.activations(model, data, args.layer, rows=_parse_rows(args.rows), reduce=args.reduce,
                             groups=args.group_by)
    if args.out:
        _write(Path(args.out), act.to_json(model, data))
        print(f"wrote {args.out} ({act.matrix.shape[0]} rows x {act.matrix.shape[1]} neurons, {act.reduction}, "
              f"{act.n_dead} dead)")
    else:
        print(f"layer {act.layer}: output {'x'.join(map(str, act.layer_shape))} per row, {act.matrix.shape[0]} rows x "
              f"{act.matrix.shape[1]} neurons ({act.reduction}); {act.n_dead} dead (never > 0): "
              + (", ".join(act.neuron_names[i] for i in act.dead.nonzero()[0][:20]) or "none"))
    if args.group_by:
        names, means, counts = act.groups["names"], act.groups["means"], act.groups["counts"]
        width = min(len(act.neuron_names), 12)
        print(f"mean activation per {args.group_by} (first {width} neurons):")
        print(f"{'group':16s} {'rows':>6s} " + " ".join(f"{n:>8s}" for n in act.neuron_names[:width]))
        for name, row, count in zip(names, means, counts):
            print(f"{name[:16]:16s} {count:6d} " + " ".join(f"{v:8.3f}" for v in row[:width]))
    return 0


def _names(text: str, what: str) -> list:
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    if not names:
        raise StudioError(f"--{what} needs at least one name")
    return names


def cmd_assess(args) -> int:
    """Assess methods under attacks; write JSON and CSV and print a summary."""
    import studio
    from studio.api import registry

    model, data = _load(args)
    if args.from_file:
        from studio.quality import reassess

        result, same = reassess(args.from_file, model, data, cache=not args.no_cache)
        _write(Path(args.out), result.to_json())
        _write(Path(args.out).with_suffix(".csv"), result.to_csv())
        print(f"wrote {args.out}; reproduced {same['equal']} of {same['numbers']} numbers exactly"
              + (f" (largest difference {same['max_abs_diff']:.3g})" if same["equal"] < same["numbers"] else ""))
        for d in same["differ"][:5]:
            print(f"differs: {' '.join(str(v) for v in d[:6] if v not in ('', None))}: {d[6]} then, {d[7]} now")
        return 0 if same["equal"] == same["numbers"] else 1
    if not args.methods:
        raise StudioError("assess needs --methods (e.g. shap,lime) or --from an earlier assessment.json")
    methods = _names(args.methods, "methods")
    per_method: dict = {}
    for key, value in _parse_params(args.param).items():
        method, _, name = key.partition(".")
        if method not in methods or not name:
            raise StudioError(f"--param takes METHOD.KEY=VALUE for one of --methods, got {key!r}")
        per_method.setdefault(method, {})[name] = value
    for method, params in per_method.items():  # text to typed values, checked as explain checks them
        valid = registry.get(method, data.kind).params.validate(params, method)
        per_method[method] = {k: v for k, v in valid.items() if k in params}
    try:
        severities = [int(s) for s in args.severities.split(",") if s.strip()]
    except ValueError:
        raise StudioError(f"--severities takes whole numbers such as 1,3,5, got {args.severities!r}") from None
    tenths = [0]

    def progress(fraction, message):  # one line on stderr per tenth of the grid
        if int(fraction * 10) > tenths[0] and fraction < 1:
            tenths[0] = int(fraction * 10)
            print(f"{fraction:.0%}: {message}", file=sys.stderr, flush=True)

    result = studio.assess(model, data, methods, _names(args.attacks, "attacks"), rows=_parse_rows(args.rows),
                           severities=severities, seed=args.seed, top_k=args.top_k, method_params=per_method,
                           faithfulness=() if args.faithfulness.strip() == "none"
                           else _names(args.faithfulness, "faithfulness"), cache=not args.no_cache,
                           progress=progress)
    out = Path(args.out)
    _write(out, result.to_json())
    csv_path = out.with_suffix(".csv")
    _write(csv_path, result.to_csv())
    names, rank = result.matrix("rank_correlation")
    print(f"wrote {out} and {csv_path} ({len(result.records)} numbers)")
    grid = result.provenance["grid"]
    print(f"{grid['scenarios']} scenarios: {grid['reused']} reused from the cache, {grid['computed']} computed"
          + ("" if grid["cache"] else " (--no-cache)"))
    print("deviation (rank correlation): " + "; ".join(
        f"{a}~{b} {rank[i, j]:.2f}" for i, a in enumerate(names) for j, b in enumerate(names) if j > i) or "-")
    for r in result.numbers("resilience"):
        if r["metric"] == "rank_correlation":
            kept = f"{r['value']:.2f} over {r['n_rows']} unchanged rows" if r["n_rows"] else "- (no row kept its prediction)"
            print(f"resilience {r['method']} {r['attack']} {r['severity']}: {kept}")
    for r in result.numbers("faithfulness"):
        if r["other"] != "random":
            base = [q["value"] for q in result.numbers("faithfulness") if q["other"] == "random"
                    and q["method"] == r["method"] and q["metric"] == r["metric"]]
            print(f"faithfulness {r['method']} {r['metric']}: {r['value']:.4g}"
                  + (f" (random order {base[0]:.4g})" if base else ""))
    for s in result.skipped:
        print(f"skipped {s.get('attack') or s.get('method')}{' ' + s['metric'] if s.get('metric') else ''}: "
              f"{s['reason']}")
    return 0


def cmd_doctor(args) -> int:
    """Print the sandbox this machine gives models, the GPU and the libraries' versions."""
    from studio.api import _installed_version
    from studio.device import resolve_device
    from studio.sandbox import launcher

    info = launcher.describe()
    info["device"] = resolve_device("auto")
    info["versions"] = {lib: _installed_version(lib) for lib in (
        "torch", "torchvision", "captum", "shap", "scikit-learn", "skops", "onnxruntime", "streamlit", "numpy")}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"sandbox: {info['sandbox']} -- {launcher.sentence(info['sandbox'])}")
    for kind, why in info["unavailable"].items():
        print(f"  {kind}: unavailable ({why})")
    print(f"memory limit per model worker: {info['memory_bytes'] / 2**30:.3g} GiB (STUDIO_SANDBOX_MEMORY)")
    print(f"load timeout: {info['timeout_seconds']:g} s (STUDIO_SANDBOX_TIMEOUT)")
    print(f"program files without a sandbox: {'trusted (STUDIO_TRUST_PROGRAMS=1)' if info['trust_programs'] else 'refused'}")
    print(f"device: {info['device']}" + (f" ({', '.join(info['gpu_devices'])})" if info["gpu_devices"] else ""))
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    return 0


def cmd_serve(args) -> int:
    """Run the HTTP API until interrupted, or print its OpenAPI document."""
    from studio.serve import Limits, openapi_document, serve

    if args.print_openapi:
        sys.stdout.write(openapi_document())
        return 0
    if args.workers < 1:
        raise StudioError(f"--workers must be at least 1, got {args.workers}")
    serve(args.host, args.port, args.token, allow_remote=args.allow_remote, limits=Limits(workers=args.workers))
    return 0


def cmd_batch(args) -> int:
    """Explain every selected row on Ray into ``--out``; print one line per 10% and a summary."""
    import time

    from studio.batch import batch
    from studio.cost import human

    shown, began = [-1], []

    def progress(done, total):
        if not began:  # the first call comes before Ray starts: the partitions already there
            began.append((time.monotonic(), done))
            print(f"{done}/{total} partitions done; starting Ray. A line follows each tenth of the run; the first "
                  "comes when a whole partition is explained (check one partition's cost first with "
                  "`python -m studio explain ... --estimate`)", file=sys.stderr, flush=True)
            return
        tenth = done * 10 // max(total, 1)
        if tenth > shown[0]:
            shown[0] = tenth
            start, before = began[0]
            per = (time.monotonic() - start) / max(done - before, 1)
            print(f"{done}/{total} partitions, about {human(per * (total - done))} left", file=sys.stderr, flush=True)

    result = batch(args.model, args.data, args.method, params=_parse_params(args.param), rows=args.rows,
                   out=args.out, address=args.address, workers=args.workers, partition_rows=args.partition_rows,
                   target=args.target, label=args.label, card=args.card, sandbox=args.sandbox, trust=args.trust,
                   trust_pickle=args.trust_pickle, progress=progress)
    m = result.manifest
    print(f"{result.rows} rows in {len(m['partitions'])} partitions ({result.computed} computed now, "
          f"{len(m['partitions']) - result.computed} already there) in {result.seconds:.1f} s: {result.out / 'manifest.json'}")
    return 0


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise StudioError(f"cannot write {str(path)!r}: {exc.strerror}") from None


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help()
            return 2
        return {"methods": cmd_methods, "explain": cmd_explain, "report": cmd_report, "graph": cmd_graph,
                "activations": cmd_activations, "assess": cmd_assess, "doctor": cmd_doctor,
                "serve": cmd_serve, "batch": cmd_batch}[args.command](args)
    except StudioError as exc:
        if debug:
            raise
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader left; stop quietly like other CLIs (Python docs, "SIGPIPE")
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush cannot fail again
        return 141
    except Exception as exc:  # an unexpected failure still gets one line
        if debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {_one_line(str(exc))} (rerun with --debug and report it)", file=sys.stderr)
        return 1


def _one_line(text: str) -> str:
    return " ".join(text.split())
