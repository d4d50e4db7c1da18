"""The CLI turns every corpus case into exit status 2 and exactly one ``error:`` line.

All cases run through ``studio.cli.main`` in process (cheap); a representative
subset (one per stage and the hostile formats) runs as real
``python -m studio`` processes, which also proves no traceback reaches stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from studio.cli import main
from tests.bad_inputs import make_corpus
from tests.conftest import ROOT

NAMES = [c.name for c in make_corpus.CASES]
SUBPROCESS = ["pt2_sympy_exec", "zip_dotdot", "csv_nan_for_torch"]  # test_no_code_runs adds a .pkl run


def _one_error_line(stderr: str, expect: str) -> None:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert expect.lower() in " ".join(lines[0].lower().split()), stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("name", NAMES)
def test_cli_in_process(name, corpus, monkeypatch, capsys):
    folder, cases = corpus
    case = cases[name]
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    code = main(case.cli_argv(folder))
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    _one_error_line(err, " ".join(case.cli_expect_fragment().split()))
    assert not (folder / make_corpus.MARKER).exists()


def test_cli_processes(corpus, tmp_path):
    """Real processes, run side by side (each costs several seconds of imports)."""
    folder, cases = corpus
    procs = {}
    for name in SUBPROCESS:
        case = cases[name]
        env = {**os.environ, **case.env, "STUDIO_CACHE_DIR": str(tmp_path / "cache")}
        env.pop("STUDIO_ALLOW_PICKLE", None)
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "studio", *case.cli_argv(folder)], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, (name, out, err)
        _one_error_line(err, cases[name].cli_expect_fragment())
    assert not (folder / make_corpus.MARKER).exists()
