"""The command line: exit codes, one error line, the JSON schema."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import MODELS, ROOT, SAMPLE_DATA

MODEL = str(MODELS / "tabular_gbt.skops")
DATA = str(SAMPLE_DATA / "breast_cancer.csv")


def run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "studio", *args], capture_output=True, text=True, cwd=ROOT,
        env=dict(os.environ, **(env or {})), timeout=300,
    )


def test_methods_lists_registry():
    out = run("methods", "--model", MODEL, "--data", DATA, "--json")
    assert out.returncode == 0, out.stderr
    names = {m["name"] for m in json.loads(out.stdout)}
    assert "permutation_importance" in names


def test_explain_writes_schema(tmp_path):
    out = run("explain", "--model", MODEL, "--data", DATA, "--method", "permutation_importance",
              "--param", "n_repeats=2", "--param", "max_rows=150", "--out", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["schema"] == "studio.explanation/1" and doc["kind"] == "importance"
    assert doc["params"]["n_repeats"] == 2 and doc["model"]["format"] == "skops"
    assert len(doc["importances"]) == 30 and doc["cache"] == "miss"
    again = run("explain", "--model", MODEL, "--data", DATA, "--method", "permutation_importance",
                "--param", "n_repeats=2", "--param", "max_rows=150")
    assert json.loads(again.stdout)["cache"] == "hit"


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["explain", "--model", "missing.skops", "--data", DATA, "--method", "permutation_importance"], "not found"),
        (["explain", "--model", MODEL, "--data", DATA, "--method", "no_such_method"], "unknown method"),
        (["explain", "--model", MODEL, "--data", DATA, "--method", "permutation_importance", "--param", "n_repeats=0"], "n_repeats"),
        (["explain", "--model", MODEL, "--data", DATA, "--method", "permutation_importance", "--param", "bogus=1"], "unknown parameter"),
        (["explain", "--model", MODEL, "--data", DATA, "--method", "permutation_importance", "--param", "oops"], "key=value"),
        (["explain", "--model", MODEL], "required"),
        (["explain", "--model", MODEL, "--data", DATA, "--method", "permutation_importance", "--rows", "x"], "--rows"),
        (["explain", "--model", str(MODELS / "tabular_mlp.pt"), "--data", str(SAMPLE_DATA / "digits.zip"), "--method", "permutation_importance"], "image"),
    ],
)
def test_bad_input_exits_2_with_one_error_line(args, fragment):
    out = run(*args)
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert fragment in lines[0]
    assert "Traceback" not in out.stderr


def test_pickle_refused_through_cli(tmp_path):
    import pickle

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "m.pkl").write_bytes(pickle.dumps(Evil()))
    out = run("explain", "--model", str(tmp_path / "m.pkl"), "--data", DATA, "--method", "permutation_importance")
    assert out.returncode == 2 and "--trust-pickle" in out.stderr
    assert not marker.exists()


def test_report_command(tmp_path):
    out = run("report", "--model", MODEL, "--data", DATA, "--methods", "permutation_importance", "--out", str(tmp_path / "r.html"))
    assert out.returncode == 0, out.stderr
    assert "permutation_importance" in (tmp_path / "r.html").read_text()


def test_explain_prints_verdicts_and_a_large_result_goes_to_a_file(tmp_path):
    # an image result is hundreds of KB: written to <method>-result.json in the working directory, one line printed
    cnn, digits = str(MODELS / "image_cnn.pt"), str(SAMPLE_DATA / "digits.zip")
    out = subprocess.run(
        [sys.executable, "-m", "studio", "explain", "--model", cnn, "--data", digits, "--method", "integrated_gradients",
         "--rows", "0,1,2,3,4,5,6,7"], capture_output=True, text=True, cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("wrote integrated_gradients-result.json (") and "--out FILE" in lines[0]
    assert json.loads((tmp_path / "integrated_gradients-result.json").read_text())["kind"] == "attribution"
    assert any(line.startswith(("PASS Completeness gap", "WARN Completeness gap", "FAIL Completeness gap"))
               for line in lines[1:]), lines
    assert len(out.stdout) < 1000
    # a small result is printed as JSON on stdout (still one document), its verdicts on stderr
    out = run("explain", "--model", MODEL, "--data", DATA, "--method", "shap", "--rows", "3")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["method"] == "shap"
    assert out.stderr.startswith("PASS Additivity gap (relative)")


def test_usage_hint_names_the_command_once_and_estimates_print_two_figures():
    out = run("explain", "--model", MODEL)
    assert "(see python -m studio explain --help)" in out.stderr
    out = run("--bogus")
    assert "python -m studio studio" not in out.stderr and "(see python -m studio --help)" in out.stderr
    out = run("explain", "--model", MODEL, "--data", DATA, "--method", "shap", "--rows", "0,1", "--estimate", "--json")
    assert out.returncode == 0, out.stderr
    est = json.loads(out.stdout)
    assert est["method"] == "shap" and est["rows"] == 2 and est["seconds"] > 0 and est["adaptive"] is False
    assert len(f"{est['seconds']:.10g}".lstrip("0.").replace(".", "").rstrip("0")) <= 2  # two significant figures
    out = run("explain", "--model", MODEL, "--data", DATA, "--method", "shap", "--rows", "0", "--estimate")
    assert re.match(r"shap: (about [\d.]+ (s|min|h)|under 0\.01 s)[ ;]", out.stdout) and "nothing was run" in out.stdout
    assert "adapts" not in out.stdout  # tree SHAP's work is fixed by the trees
    out = run("explain", "--model", MODEL, "--data", DATA, "--method", "anchors", "--rows", "0", "--estimate")
    assert re.match(r"anchors: (about [\d.]+ (s|min|h)|under 0\.01 s) for typical rows; the work adapts to each row[ ;]",
                    out.stdout), out.stdout  # the search stops when a rule is precise enough: a typical run, said so


def test_unknown_card_fields_are_one_warning_line_each_and_the_run_goes_on(tmp_path):
    card = tmp_path / "gbt.card.json"
    card.write_text('{"task": "classification", "licence": "MIT", "clas_names": ["a", "b"]}')
    out = run("methods", "--model", MODEL, "--card", str(card), "--data", DATA, "--json")
    assert out.returncode == 0, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("warning: model card ") for line in lines), lines
    assert "did you mean 'class_names'?" in out.stderr and "UserWarning" not in out.stderr
    assert {m["name"] for m in json.loads(out.stdout)} >= {"shap", "pdp"}


def test_a_reader_that_leaves_early_ends_the_command_quietly():
    """``python -m studio methods | head -3``: the closed pipe is not an "unexpected BrokenPipeError"."""
    code = ("import sys; from studio import cli; "
            "cli.cmd_methods = lambda args: [print('m' * 99) for _ in range(20_000)] and 0; "
            "sys.exit(cli.main(['methods']))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"mmm")
    proc.stdout.close()  # as head does after its lines
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == "", err


def test_ice_draws_the_rows_given_as_a_range(tmp_path):
    import numpy as np

    from studio.cli import _parse_rows

    assert _parse_rows("0:3,7") == [0, 1, 2, 7]
    out = run("explain", "--model", MODEL, "--data", DATA, "--method", "ice", "--rows", "2:5",
              "--features", "mean radius", "--no-cache", "--out", str(tmp_path / "ice.json"))
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "ice.json").read_text())
    assert doc["rows"] == [2, 3, 4]
    curve = doc["curves"][0]
    assert np.shape(curve["individual"]) == (3, len(curve["grid"][0]))
