"""python -m studio graph / activations: output, schema files, one error line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from tests.conftest import MODELS, ROOT, SAMPLE_DATA


def _run(*args):
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_graph_json_and_activations_file(tmp_path, cnn, digits):
    run = _run("graph", "--model", str(MODELS / "image_cnn.pt"), "--sandbox", "off", "--json")
    assert run.returncode == 0, run.stderr
    g = json.loads(run.stdout)
    assert g["schema"] == "studio.activations/1" and g["kind"] == "graph"
    assert g["total_params"] == sum(p.numel() for p in cnn.native.parameters())
    out = tmp_path / "act.json"
    run = _run("activations", "--model", str(MODELS / "image_cnn.pt"), "--data", str(SAMPLE_DATA / "digits.zip"),
               "--layer", "7", "--rows", "0,1,2", "--sandbox", "off", "--group-by", "label", "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert "mean activation per label" in run.stdout
    d = json.loads(out.read_text())
    assert d["kind"] == "activations" and d["layer"] == "7" and d["rows"] == [0, 1, 2]
    assert np.asarray(d["values"]).shape == (3, 32) and d["n_dead"] == len(d["dead"])
    assert sum(d["groups"]["counts"]) == 3 and d["groups"]["names"] == list(dict.fromkeys(d["labels"]))


def test_unknown_layer_is_one_error_line():
    run = _run("activations", "--model", str(MODELS / "image_cnn.pt"), "--data", str(SAMPLE_DATA / "digits.zip"),
               "--layer", "nope", "--sandbox", "off")
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: layer 'nope' not found")
