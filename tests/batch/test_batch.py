"""studio.batch on Ray: equal to studio.explain, identical with 1 and 2 workers, resumable, sandboxed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import studio
from studio.errors import StudioError
from tests.batch.conftest import FEATURES, PARTITION_ROWS, ROWS
from tests.conftest import ROOT


def _frame(result):
    return pd.concat([pd.read_parquet(f) for f in result.files], ignore_index=True)


def _bytes(result):
    return {p["file"]: (result.out / p["file"]).read_bytes() for p in result.manifest["partitions"]}


def test_batch_shap_equals_explain_on_sampled_rows(files, two_workers):
    model_path, data_path = files
    out = _frame(two_workers)
    assert len(out) == ROWS and np.array_equal(out["row_id"].to_numpy(), np.arange(ROWS))
    m = two_workers.manifest
    assert m["complete"] and len(m["partitions"]) == ROWS // PARTITION_ROWS and m["schema"] == "studio.batch/1"
    model = studio.load_model(model_path, sandbox="off")
    data = studio.load_dataset(data_path)
    rows = sorted(np.random.default_rng(1).choice(ROWS, 40, replace=False).tolist())
    exp = studio.explain(model, data, "shap", rows=rows, cache=False)
    got = out.iloc[rows]
    assert np.array_equal(got[[f"attr:{f}" for f in FEATURES]].to_numpy(), exp.values)  # exactly, bit for bit
    assert np.array_equal(got["base_value"].to_numpy(), exp.base_values)
    assert got["target"].tolist() == exp.target
    assert np.array_equal(got["prediction"].to_numpy(), model.predict(data.x[rows]))
    assert np.array_equal(got[[f"value:{f}" for f in FEATURES]].to_numpy(), data.x[rows])
    assert m["model"]["fingerprint"] == model.fingerprint and m["feature_names"] == FEATURES


def test_background_is_the_whole_datasets_sample(ray_address, files, tmp_path):
    """Interventional TreeSHAP (a scikit-learn model via skops) uses the background studio.explain draws from all rows."""
    import skops.io as sio
    from sklearn.ensemble import GradientBoostingClassifier

    _, data_path = files
    data = studio.load_dataset(data_path)
    clf = GradientBoostingClassifier(n_estimators=15, max_depth=2, random_state=0).fit(data.x[-2000:], data.y[-2000:])
    clf.feature_names_in_ = np.asarray(FEATURES, dtype=object)
    path = tmp_path / "gbt.skops"
    sio.dump(clf, str(path))
    result = studio.batch(path, data_path, "shap", rows="100:400,61000:61300", out=tmp_path / "out",
                          params={"background": 50, "seed": 3}, partition_rows=PARTITION_ROWS, workers=1)
    out = _frame(result)
    rows = out["row_id"].to_numpy()
    assert len(rows) == 600 and len(result.manifest["partitions"]) == 2
    model = studio.load_model(path, sandbox="off")
    exp = studio.explain(model, data, "shap", rows=rows.tolist(), params={"background": 50, "seed": 3}, cache=False)
    assert exp.provenance["algorithm"] == "tree_interventional"
    np.testing.assert_allclose(out[[f"attr:{f}" for f in FEATURES]].to_numpy(), exp.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["base_value"].to_numpy(), exp.base_values, rtol=0, atol=1e-12)
    assert out["check_additivity_gap"].max() == pytest.approx(exp.checks["additivity_gap"], rel=1e-9, abs=1e-300)


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return [sys.executable, "-m", "studio", "batch", *map(str, args)], env


@pytest.fixture(scope="module")
def killed_and_resumed(ray_address, files, tmp_path_factory):
    """A real CLI run with 1 worker, killed with SIGKILL after some partitions, then the same command again.

    Returns (output folder, partitions written before the kill with their inodes, those the manifest listed,
    the second command's result).
    """
    model, data = files
    out = tmp_path_factory.mktemp("killed") / "out"
    argv, env = _cli("--model", model, "--data", data, "--method", "shap", "--out", out, "--address", ray_address,
                     "--workers", 1, "--partition-rows", PARTITION_ROWS)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(out.glob("part-*.parquet"))) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    before = {p.name: p.stat().st_ino for p in out.glob("part-*.parquet")}
    listed = {p["file"] for p in json.loads((out / "manifest.json").read_text())["partitions"]}
    # what a kill inside an atomic write leaves (temp files before their rename), every time, not by timing
    (out / ".manifest.json.killed.tmp").write_text('{"schema"')
    (out / ".part-00001.parquet.killed.tmp").write_bytes(b"PAR1")
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    return out, before, listed, done


def test_a_killed_run_resumes_with_the_cli(killed_and_resumed):
    out, before, listed, done = killed_and_resumed
    total = ROWS // PARTITION_ROWS
    assert 3 <= len(before) < total and listed <= set(before)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{ROWS} rows in {total} partitions ({total - len(listed)} computed now, {len(listed)} already there)" in done.stdout
    # progress on stderr: the partitions already there at once, then lines with the time left
    assert f"{len(listed)}/{total} partitions done; starting Ray" in done.stderr
    assert f"{total}/{total} partitions, about " in done.stderr and " left" in done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["partitions"]) == total
    for name in listed:  # kept, not rewritten
        assert (out / name).stat().st_ino == before[name]
    assert not list(out.glob(".*.tmp"))


def test_one_worker_and_a_resumed_run_write_the_same_files_as_two(killed_and_resumed, two_workers):
    """Every partition of the 1-worker run (before and after the kill) is byte for byte the 2-worker one."""
    out = killed_and_resumed[0]
    theirs = _bytes(two_workers)
    assert {name: (out / name).read_bytes() for name in theirs} == theirs
    manifest = json.loads((out / "manifest.json").read_text())
    assert [p["sha256"] for p in manifest["partitions"]] == [p["sha256"] for p in two_workers.manifest["partitions"]]


def test_another_run_into_the_same_folder_is_refused(files, two_workers):
    model, data = files
    with pytest.raises(StudioError, match="holds the results of a different run") as exc:
        studio.batch(model, data, "shap", params={"seed": 5}, out=two_workers.out, partition_rows=PARTITION_ROWS)
    assert "\n" not in str(exc.value)


def test_a_hostile_model_fails_with_one_message(ray_address, tmp_path):
    """A skops tree that segfaults when run: the sandbox in the Ray worker holds, and the run stops with one sentence."""
    from tests.sandbox.hostile import crashing_tree

    path = crashing_tree(tmp_path / "crash.skops")
    pd.DataFrame(np.random.default_rng(0).normal(size=(50, 2)), columns=["a", "b"]).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(StudioError, match="segmentation fault") as exc:
        studio.batch(path, tmp_path / "d.csv", "shap", out=tmp_path / "out", partition_rows=25, workers=1)
    assert "\n" not in str(exc.value) and "Traceback" not in str(exc.value)
    assert not list((tmp_path / "out").glob("part-*.parquet"))


def test_rows_and_arguments_are_checked():
    from studio.batch import parse_rows

    assert parse_rows("all", 5).tolist() == [0, 1, 2, 3, 4]
    assert parse_rows("3:,0,1:2", 5).tolist() == [0, 1, 3, 4]
    assert parse_rows([4, 4, 2], 5).tolist() == [2, 4]
    assert parse_rows("0:5", 5).tolist() == [0, 1, 2, 3, 4]
    for bad, match in (("7", "out of range"), ("a:b", "START:STOP"), ("", "no rows"), ("0:99", "ends past")):
        with pytest.raises(StudioError, match=match):
            parse_rows(bad, 5)


def test_global_methods_and_unknown_files_are_refused(files, tmp_path):
    model, data = files
    with pytest.raises(StudioError, match="global method"):
        studio.batch(model, data, "permutation_importance", out=tmp_path / "a")
    (tmp_path / "d.npz").write_bytes(b"x")
    with pytest.raises(StudioError, match="convert it to Parquet"):
        studio.batch(model, tmp_path / "d.npz", "shap", out=tmp_path / "b")


def test_the_manifest_validates_against_its_json_schema(two_workers):
    import jsonschema

    schema = json.loads((ROOT / "docs" / "schemas" / "batch-1.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    manifest = json.loads((two_workers.out / "manifest.json").read_text())
    validator.validate(manifest)
    for broken in ({**manifest, "schema": "studio.batch/2"},
                   {**manifest, "partitions": [{**manifest["partitions"][0], "sha256": "x"}]}):
        assert not validator.is_valid(broken)


def test_import_studio_loads_neither_ray_nor_duckdb():
    code = "import sys, studio; studio.batch; print(','.join(m for m in ('ray', 'duckdb', 'pyarrow') if m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert run.stdout.strip() == "", run.stdout
