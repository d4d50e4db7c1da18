"""python -m studio assess: a valid file, and one error line with status 2 on bad input."""

import json
import subprocess
import sys

from tests.conftest import MODELS, ROOT, SAMPLE_DATA


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "studio", "assess", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})


def test_assess_writes_json_and_csv(tmp_path, capsys):
    out = tmp_path / "a.json"
    done = _run("--model", MODELS / "tabular_gbt.skops", "--data", SAMPLE_DATA / "breast_cancer.csv",
                "--sandbox", "off", "--methods", "shap,lime", "--attacks", "noise", "--rows", "0,1,2",
                "--severities", "0,3", "--param", "shap.background=20", "--param", "lime.num_samples=100",
                "--seed", "2", "--out", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["schema"] == "studio.assessment/1" and doc["provenance"]["seed"] == 2
    assert doc["provenance"]["methods"]["lime"]["params"] == {"num_samples": 100, "seed": 2}
    assert doc["provenance"]["rows"] == [0, 1, 2]
    assert {r["attribute"] for r in doc["records"]} == {"cost", "performance", "deviation", "resilience",
                                                           "faithfulness"}
    assert len(doc["deviation"]["top_k_overlap"]["matrix"]) == 2
    assert (tmp_path / "a.csv").read_text().count("\n") == len(doc["records"]) + 1
    assert "shap~lime" in done.stdout
    from studio.cli import main  # the same assessment again, from its JSON alone

    n = sum(r["attribute"] != "cost" for r in doc["records"])
    assert main(["assess", "--model", str(MODELS / "tabular_gbt.skops"), "--data", str(SAMPLE_DATA / "breast_cancer.csv"),
                 "--sandbox", "off", "--from", str(out), "--out", str(tmp_path / "b.json"), "--no-cache"]) == 0
    assert f"reproduced {n} of {n} numbers exactly" in capsys.readouterr().out


def test_bad_input_is_one_error_line(tmp_path, capsys, monkeypatch):
    from studio.cli import main

    monkeypatch.chdir(tmp_path)
    done = _run("--model", MODELS / "tabular_gbt.skops", "--data", SAMPLE_DATA / "breast_cancer.csv",
                "--sandbox", "off", "--methods", "pdp", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    for args in (["--methods", "shap", "--param", "lime.seed=1"], ["--methods", "shap", "--severities", "x"],
                 ["--methods", "shap", "--attacks", "rain"], ["--methods", " , "]):
        capsys.readouterr()
        code = main(["assess", "--model", str(MODELS / "tabular_gbt.skops"), "--data",
                     str(SAMPLE_DATA / "breast_cancer.csv"), "--sandbox", "off", *args])
        err = capsys.readouterr().err
        assert code == 2, args
        assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "assessment.json").exists()
