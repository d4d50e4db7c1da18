"""The benchmark harness still runs end to end (tiny sizes; no timing assertions)."""

from __future__ import annotations

import sys

import pytest

from benchmarks import run as bench

SUITES_RUN = ("overhead", "ig_floor", "cache", "peer", "anchors", "scaling", "app", "gpu", "sandbox", "watch", "assess",
              "activations")


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "RESULTS.md"
    import os

    old = os.environ.get("STUDIO_BENCH_PEER_VENV")
    # the peer venv is not part of the test environment: the peer suite must say so, not fail
    os.environ["STUDIO_BENCH_PEER_VENV"] = str(out.parent / "no-peer-venv")
    from benchmarks import common

    saved = common.PEER_VENV
    common.PEER_VENV = out.parent / "no-peer-venv"
    import benchmarks.peer as peer

    peer.PEER_VENV = common.PEER_VENV
    try:
        code = bench.main(["--tiny", "--methods", "pdp", "integrated_gradients", "--out", str(out)])
    finally:
        common.PEER_VENV = peer.PEER_VENV = saved
        if old is None:
            os.environ.pop("STUDIO_BENCH_PEER_VENV", None)
        else:
            os.environ["STUDIO_BENCH_PEER_VENV"] = old
    return code, out.read_text()


def test_exit_code_and_header(tiny_results):
    code, text = tiny_results
    assert code == 0
    assert text.startswith("# Benchmark results")
    for field in ("- Command: `python -m benchmarks --tiny", "- Machine: ", "GPU: ", "- Packages: ", "numpy ", "- Started: "):
        assert field in text


def test_every_suite_has_a_section_with_rows(tiny_results):
    _, text = tiny_results
    for suite in SUITES_RUN:
        title = bench.TITLES[suite]
        assert f"## {title}" in text, suite
        section = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
        rows = [ln for ln in section.splitlines() if ln.startswith("| ") and not ln.startswith("| item")]
        assert rows, f"suite {suite} has no rows"


def test_expected_rows(tiny_results):
    _, text = tiny_results
    expected = [
        "pdp vs sklearn partial_dependence (brute)",
        "integrated_gradients vs captum IntegratedGradients",
        "integrated_gradients vs raw fwd+bwd floor, sample CNN 32x32",
        "integrated_gradients (4 steps, refinement off) vs captum IG defaults, sample CNN 32x32",
        "integrated_gradients at studio defaults (refinement on) vs captum IG defaults, sample CNN 32x32",
        "pdp (tabular) warm/cold",
        "pdp (tabular) after restart/cold",
        "integrated_gradients (image) warm/cold",
        "integrated_gradients (image) after restart/cold",
        "pdp time 10x rows (50 -> 500)",
        "model predict_proba on 20x the rows (no studio) time 10x rows (50 -> 500)",
        "SHAP + permutation importance + 5 PDPs: studio / explainerdashboard",
        "integrated_gradients images/s at batch 64",
    ]
    for name in expected:
        assert f"| {name}" in text, name


def test_each_row_has_a_result(tiny_results):
    _, text = tiny_results
    results = {"pass", "**MISS**", "info", "not measured"}
    table_rows = [ln for ln in text.splitlines() if ln.startswith("| ") and not ln.startswith("| item")]
    assert table_rows
    for line in table_rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[5] in results, line
        if cells[5] in ("pass", "**MISS**"):
            float(cells[3])  # a measured ratio
        if cells[5] == "not measured":
            assert cells[7], f"no reason given: {line}"


def test_peer_without_venv_says_why(tiny_results):
    _, text = tiny_results
    line = next(ln for ln in text.splitlines() if ln.startswith("| SHAP + permutation importance"))
    assert "not measured" in line and "peer venv" in line


def test_no_gpu_recorded():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from benchmarks import gpu
    from benchmarks.common import TINY

    rows = gpu.run(TINY, device="cpu")
    assert rows and all(r.status == "not measured" and "no GPU lent" in r.note for r in rows)


def test_cli_rejects_cuda_without_gpu(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert bench.main(["--tiny", "--only", "gpu", "--device", "cuda", "--out", "/dev/null"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err
