"""The worker behind a sandboxed model: same answers as in process, warm across calls, ended with the model."""

from __future__ import annotations

import gc
import os
import time

import numpy as np
import pytest

import studio
from studio.errors import StudioError
from studio.sandbox import launcher
from studio.sandbox.client import WorkerError
from tests.conftest import MODELS
from tests.sandbox import hostile

KIND = launcher.choose("auto")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def remote_gbt():
    model = studio.load_model(MODELS / "tabular_gbt.skops", sandbox=KIND)
    yield model
    model.close()


def test_the_model_runs_in_a_separate_warm_worker(remote_gbt, table):
    assert remote_gbt.sandbox == KIND and remote_gbt.native is None  # nothing of the file in this process
    pid = remote_gbt.worker_pid
    assert pid != os.getpid()
    remote_gbt.predict(table.x[:3])
    remote_gbt.predict(table.x[3:9])
    assert remote_gbt.worker_pid == pid


def test_answers_equal_the_in_process_model(remote_gbt, gbt, table):
    assert remote_gbt.fingerprint == gbt.fingerprint and remote_gbt.cache_id == gbt.cache_id
    assert (remote_gbt.task, remote_gbt.feature_names, remote_gbt.class_names, remote_gbt.kind) == (
        gbt.task, gbt.feature_names, gbt.class_names, gbt.kind)
    np.testing.assert_array_equal(remote_gbt.predict_proba(table.x), gbt.predict_proba(table.x))
    for method, kw in (("shap", {"rows": [0, 7]}), ("permutation_importance", {"params": {"n_repeats": 2}}),
                       ("pdp", {"params": {"features": [table.feature_names[0]]}})):
        remote = studio.explain(remote_gbt, table, method, cache=False, **kw)
        local = studio.explain(gbt, table, method, cache=False, **kw)
        assert remote.kind == local.kind and remote.checks == pytest.approx(local.checks)
        if remote.kind == "attribution":
            np.testing.assert_array_equal(remote.values, local.values)
        elif remote.kind == "importance":
            assert [i.mean for i in remote.importances] == [i.mean for i in local.importances]
        else:
            np.testing.assert_array_equal(remote.curves[0].average, local.curves[0].average)
    assert [(m.name, m.available) for m in studio.methods(remote_gbt, table)] == [
        (m.name, m.available) for m in studio.methods(gbt, table)]


def test_image_gradients_equal_the_in_process_model(cnn, digits):
    remote = studio.load_model(MODELS / "image_cnn.pt", sandbox=KIND)
    for method in ("integrated_gradients", "grad_cam"):
        a = studio.explain(remote, digits, method, rows=[0, 1], cache=False)
        b = studio.explain(cnn, digits, method, rows=[0, 1], cache=False)
        np.testing.assert_allclose(a.values, b.values, rtol=1e-5, atol=1e-7)
    remote.close()


def test_a_cached_result_is_served_without_the_worker(table, isolated_cache):
    model = studio.load_model(MODELS / "tabular_gbt.skops", sandbox=KIND)
    first = studio.explain(model, table, "shap", rows=[2])
    model.close()
    again = studio.load_model(MODELS / "tabular_gbt.skops", sandbox=KIND)
    hit = studio.explain(again, table, "shap", rows=[2])
    assert (first.cache, hit.cache) == ("miss", "hit")
    np.testing.assert_array_equal(first.values, hit.values)
    again.close()


def test_the_worker_ends_with_the_model(table):
    model = studio.load_model(MODELS / "tabular_gbt.skops", sandbox=KIND)
    pid = model.worker_pid
    model.predict(table.x[:2])
    del model
    gc.collect()
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


def test_a_run_past_its_time_limit_is_stopped(table):
    model = studio.load_model(MODELS / "tabular_gbt.skops", sandbox=KIND)
    start = time.monotonic()
    with pytest.raises(StudioError, match="time limit"):
        studio.explain(model, table, "lime", rows=list(range(40)), params={"num_samples": 20000}, cache=False,
                       timeout=1.0)
    assert time.monotonic() - start < 1.0 + 10
    np.testing.assert_array_equal(model.predict(table.x[:3]), model.predict(table.x[:3]))  # still usable
    model.close()


def test_a_cancelled_run_stops(table):
    model = studio.load_model(MODELS / "tabular_gbt.skops", sandbox=KIND)
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(StudioError, match="cancel"):
        studio.explain(model, table, "lime", rows=list(range(40)), params={"num_samples": 20000}, cache=False,
                       cancel=cancel)
    model.close()


def test_a_progress_callback_that_raises_leaves_the_pipe_clean(remote_gbt, table):
    """A caller may stop a run by raising from its progress callback: the worker's reply to that run is read
    (the run is cancelled) before the exception goes on, so the next request gets its own reply, not that one."""

    class Stop(Exception):
        pass

    def progress(fraction, message):
        raise Stop(message)

    with pytest.raises(Stop):
        studio.explain(remote_gbt, table, "lime", rows=list(range(40)), params={"num_samples": 20000}, cache=False,
                       progress=progress)
    expected = studio.load_model(MODELS / "tabular_gbt.skops", sandbox="off").predict_proba(table.x[:4])
    np.testing.assert_array_equal(remote_gbt.predict_proba(table.x[:4]), expected)


def test_a_model_that_crashes_on_predict_gives_one_error_per_call(tmp_path, remote_gbt, table):
    path = hostile.crashing_tree(tmp_path / "crash.skops")
    model = studio.load_model(path, card={"feature_names": ["a", "b"]}, sandbox=KIND)
    for _ in range(2):  # the second call starts a fresh worker, which crashes again
        with pytest.raises(WorkerError, match="segmentation fault"):
            model.predict(np.zeros((3, 2)))
    assert remote_gbt.predict(table.x[:1]).shape == (1,)  # another model is untouched


def test_a_model_loaded_in_a_thread_outlives_the_thread(table):
    """Streamlit runs each page script in a thread; the kernel's parent-death signal follows the forking thread."""
    import threading

    box = {}
    thread = threading.Thread(target=lambda: box.update(m=studio.load_model(MODELS / "tabular_gbt.skops", sandbox=KIND)))
    thread.start()
    thread.join()
    time.sleep(1.0)
    assert box["m"].predict(table.x[:2]).shape == (2,)
    box["m"].close()


def test_a_studio_that_lives_under_tmp_starts_its_worker(tmp_path, monkeypatch):
    """CI clones the repository into a temporary folder: the sandbox's private /tmp must not hide the package."""
    import shutil

    from studio.sandbox.client import WorkerProcess

    shutil.copytree(launcher.PACKAGE_ROOT + "/studio", tmp_path / "studio",
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(launcher, "PACKAGE_ROOT", str(tmp_path))
    worker = WorkerProcess(KIND)
    try:
        worker.wait_ready(120)
    finally:
        worker.kill()


def test_a_spare_worker_serves_the_next_load_with_the_limits_of_that_moment(monkeypatch, tmp_path):
    """A server keeps a spare worker ready; the limits the caller sets later still apply to the model it loads."""
    from studio.sandbox import client

    monkeypatch.setenv("STUDIO_SANDBOX_SPARE", "1")
    client.keep_spare(True)
    try:
        deadline = time.monotonic() + 120
        while not (client._spares.get(KIND) and client._spares[KIND].ready) and time.monotonic() < deadline:
            time.sleep(0.1)
        spare = client._spares[KIND]
        monkeypatch.setenv("STUDIO_MAX_JSON_BYTES", "1000")
        (tmp_path / "big.json").write_bytes(b'{"learner": {"pad": "' + b"x" * 4000 + b'"}}')
        with pytest.raises(StudioError, match="STUDIO_MAX_JSON_BYTES"):
            studio.load_model(tmp_path / "big.json", sandbox=KIND)
        assert not spare.alive  # the spare served that load (and was ended with its failure)
        model = studio.load_model(MODELS / "tabular_gbt.skops", sandbox=KIND)
        assert model.predict(np.zeros((1, 30))).shape == (1,)
        model.close()
    finally:
        client.keep_spare(False)
        for worker in list(client._spares.values()):
            worker.kill()
        client._spares.clear()
