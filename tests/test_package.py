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
