"""``python -m studio``: methods, explain, report.

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
        raise StudioError(f"{message} (see python -m studio {self.prog.split()[-1]} --help)")


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
    try:
        return [int(r) for r in text.split(",") if r.strip()]
    except ValueError:
        raise StudioError(f"--rows takes comma-separated row numbers such as 0,5, got {text!r}") from None


def _load(args):
    import studio

    model = studio.load_model(args.model, card=getattr(args, "card", None), trust_pickle=getattr(args, "trust_pickle", False))
    data = studio.load_dataset(args.data, label=getattr(args, "label", None), feature_names=model.feature_names)
    return model, data


def _add_model_args(p, required=True):
    p.add_argument("--model", required=required, help="model file (.skops, .pt, .pt2, .onnx, .safetensors, ...)")
    p.add_argument("--data", required=required, help="dataset (CSV, Parquet, .zip of class folders, .npz, folder)")
    p.add_argument("--card", help="model card JSON (default: <model>.card.json beside the model)")
    p.add_argument("--label", help="label column of a table")
    p.add_argument("--trust-pickle", action="store_true", help="allow .pkl/.joblib models (runs code from the file)")


def _add_explain_args(p):
    p.add_argument("--rows", help="rows to explain, e.g. 0,5 (local methods)")
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
    p.add_argument("--out", help="write the result as JSON (schema studio.explanation/1)")

    p = sub.add_parser("report", help="write a self-contained HTML report")
    _add_model_args(p)
    p.add_argument("--methods", required=True, help="comma-separated method names")
    _add_explain_args(p)
    p.add_argument("--out", required=True, help="report file (.html)")
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
        model = studio.load_model(args.model, card=args.card, trust_pickle=args.trust_pickle)
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


def cmd_explain(args) -> int:
    import studio

    model, data = _load(args)
    exp = studio.explain(
        model, data, args.method, rows=_parse_rows(args.rows), target=args.target,
        params=_method_params(args), device=args.device, cache=not args.no_cache,
    )
    text = exp.to_json(indent=2)
    if args.out:
        _write(Path(args.out), text)
        print(f"wrote {args.out} ({exp.method}, {exp.kind}, {exp.compute_seconds:.2f}s, cache {exp.cache})")
    else:
        print(text)
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
        return {"methods": cmd_methods, "explain": cmd_explain, "report": cmd_report}[args.command](args)
    except StudioError as exc:
        if debug:
            raise
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected failure still gets one line
        if debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {_one_line(str(exc))} (rerun with --debug and report it)", file=sys.stderr)
        return 1


def _one_line(text: str) -> str:
    return " ".join(text.split())
