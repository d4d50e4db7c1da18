"""No code from a file runs unless the user trusts it, through any entry point.

Each hostile corpus file, if unpickled (or, for .pt2, evaluated by sympy),
creates ``MARKER`` in its folder. Positive controls first show that the plant
really works (plain pickle, trusted pickle, raw ``torch.export.load``), so the
refusals below are not vacuous.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys

import pytest

import studio
from studio.errors import StudioError
from tests.bad_inputs import make_corpus
from tests.conftest import ROOT

HOSTILE = [c.name for c in make_corpus.CASES if c.hostile]


def _build(name, folder):
    make_corpus.BUILDERS[name](folder)
    case = {c.name: c for c in make_corpus.CASES}[name]
    return case, folder / make_corpus.MARKER


def test_the_plant_works_when_unpickled(tmp_path):
    case, marker = _build("pickle_pkl", tmp_path)
    pickle.loads(case.path("model", tmp_path).read_bytes())
    assert marker.exists()


def test_trusting_a_pickle_runs_it(tmp_path):
    case, marker = _build("pickle_joblib", tmp_path)
    with pytest.raises(StudioError, match="not a model with predict"):
        studio.load_model(case.path("model", tmp_path), trust_pickle=True, sandbox="off")
    assert marker.exists()  # trust_pickle=True in this process means exactly this: the file's code ran here


def test_a_trusted_pickle_runs_only_in_its_sandbox(tmp_path):
    from studio.sandbox import launcher

    if launcher.choose("auto") not in launcher.ISOLATING:
        pytest.skip("no isolating sandbox on this machine")
    case, marker = _build("pickle_joblib", tmp_path)
    with pytest.raises(StudioError):
        studio.load_model(case.path("model", tmp_path), trust_pickle=True)
    assert not marker.exists()  # the code ran in the worker, which cannot see this folder


@pytest.mark.parametrize("how", ["pickled_weight", "sample_inputs", "sympy"])
def test_raw_torch_export_load_would_run_the_pt2_payload(tmp_path, how):
    """The hole the studio closes: torch.export.load falls back to pickle and evaluates sympy strings."""
    import torch

    blob = make_corpus._pt2_variant(tmp_path, how)
    try:
        torch.export.load(io.BytesIO(blob))
    except Exception:
        pass  # the program is broken afterwards; the code already ran
    assert (tmp_path / make_corpus.MARKER).exists()


@pytest.mark.parametrize("name", HOSTILE)
def test_library_never_runs_the_payload(name, tmp_path, monkeypatch):
    monkeypatch.delenv("STUDIO_ALLOW_PICKLE", raising=False)
    case, marker = _build(name, tmp_path)
    with pytest.raises(StudioError):
        if case.stage == "model":
            studio.load_model(case.path("model", tmp_path))
        else:
            studio.load_dataset(case.path("data", tmp_path))
    # the same bytes handed over as an upload (bytes + file name)
    path = case.path("model" if case.stage == "model" else "data", tmp_path)
    with pytest.raises(StudioError):
        if case.stage == "model":
            studio.load_model(path.read_bytes(), name=path.name)
        else:
            studio.load_dataset(path.read_bytes(), name=path.name)
    assert not marker.exists()


@pytest.mark.parametrize("name", [n for n in HOSTILE if n.startswith(("pickle_", "pt2_", "legacy"))])
def test_app_load_path_never_runs_the_payload(name, tmp_path, monkeypatch):
    """The app's loader (studio.ui.state.load_pair) with STUDIO_ALLOW_PICKLE unset."""
    from studio.ui import state

    monkeypatch.delenv("STUDIO_ALLOW_PICKLE", raising=False)
    case, marker = _build(name, tmp_path)
    model = case.path("model", tmp_path)
    table = make_corpus.SAMPLES["@table"]
    with pytest.raises(StudioError):
        state.load_pair(model.read_bytes(), model.name, None, table.read_bytes(), table.name)
    assert not marker.exists()


def test_app_refuses_pickle_even_when_the_pair_is_otherwise_fine(tmp_path, monkeypatch):
    from studio.ui import state

    monkeypatch.setenv("STUDIO_ALLOW_PICKLE", "0")  # only exactly "1" allows pickle
    case, marker = _build("pickle_pkl", tmp_path)
    model = case.path("model", tmp_path)
    with pytest.raises(StudioError, match="STUDIO_ALLOW_PICKLE=1"):
        state.load_pair(model.read_bytes(), model.name, None, b"a,b\n1,2\n", "t.csv")
    assert not marker.exists()


def test_cli_never_runs_the_payload(tmp_path):
    """A real ``python -m studio`` process on a .pkl and a hostile .pt2 (no --trust-pickle)."""
    procs = []
    markers = []
    for name in ("pickle_pkl", "pt2_pickled_weight"):
        folder = tmp_path / name
        folder.mkdir()
        case, marker = _build(name, folder)
        markers.append(marker)
        env = {k: v for k, v in os.environ.items() if k != "STUDIO_ALLOW_PICKLE"}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "studio", *case.cli_argv(folder)], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, err
        assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not any(m.exists() for m in markers)
