"""The package surface: the public names, and an import that stays light."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

HEAVY = ("torch", "sklearn", "shap", "captum", "lime", "interpret", "cv2", "skimage", "onnxruntime", "pandas", "streamlit")


def test_public_names():
    import studio

    for name in ("load_model", "load_dataset", "methods", "explain", "Explanation"):
        assert hasattr(studio, name), name


def test_import_studio_loads_no_heavy_library():
    code = f"import sys, studio; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert run.stdout.strip() == "", f"import studio also imported: {run.stdout.strip()}"


def test_pyproject_declares_the_package_its_command_and_the_pinned_dependencies():
    """``pip install -e .`` (README's quick start) installs ``studio``, the ``studio`` command (``studio.cli:main``)
    and exactly requirements.txt's pins."""
    import os
    import tomllib

    from setuptools.config.pyprojecttoml import read_configuration

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"studio": "studio.cli:main"}
    cwd = os.getcwd()
    os.chdir(ROOT)  # the file directive is read relative to the project's folder
    try:
        config = read_configuration(ROOT / "pyproject.toml", expand=True)
    finally:
        os.chdir(cwd)
    pins = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert config["project"]["dependencies"] == pins
    assert "studio" in config["tool"]["setuptools"]["packages"]
    from importlib import import_module

    module, _, attr = project["scripts"]["studio"].partition(":")
    assert callable(getattr(import_module(module), attr))
    assert "pip install -e ." in (ROOT / "README.md").read_text()


def test_python_m_studio_works_outside_the_repository(tmp_path):
    import os

    env = dict(os.environ, PYTHONPATH=str(ROOT))  # what the editable install adds to the path
    run = subprocess.run([sys.executable, "-m", "studio", "--help"], check=False, capture_output=True, text=True, cwd=tmp_path,
                         env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "explain" in run.stdout and "studio studio" not in run.stdout
