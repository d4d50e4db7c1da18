"""Hostile model files run in the sandbox: no host file read or written, no network, crashes and hangs contained.

Each attack is run under every isolating launcher this machine offers (bubblewrap in CI; unshare + Landlock
where the kernel has it). Each ends in one StudioError, no file outside the sandbox changes, and the test
process (the "server") goes on serving another sandboxed model.
"""

from __future__ import annotations

import faulthandler
import os
import socket
import time

import numpy as np
import pytest

import studio
from studio.errors import StudioError
from studio.sandbox import launcher
from studio.sandbox.client import WorkerError
from tests.conftest import MODELS, SAMPLE_DATA
from tests.sandbox import hostile

ISOLATING = [k for k in launcher.ISOLATING if not launcher.why_not(k)]
if not ISOLATING:
    pytest.skip(f"no isolating sandbox here: {launcher.why_not('bubblewrap')}", allow_module_level=True)

CARD3 = {"feature_names": ["a", "b", "c"], "task": "classification"}


@pytest.fixture(params=ISOLATING)
def kind(request, monkeypatch):
    monkeypatch.setenv("STUDIO_SANDBOX", request.param)
    return request.param


@pytest.fixture(scope="module")
def bystander():
    """A sandboxed model loaded before the attacks; it must keep answering after each of them."""
    model = studio.load_model(MODELS / "tabular_gbt.skops", sandbox=ISOLATING[0])
    data = studio.load_dataset(SAMPLE_DATA / "breast_cancer.csv")
    expected = studio.load_model(MODELS / "tabular_gbt.skops", sandbox="off").predict_proba(data.x[:5])
    yield model, data, expected
    model.close()


def _still_serving(bystander):
    model, data, expected = bystander
    np.testing.assert_array_equal(model.predict_proba(data.x[:5]), expected)


def _one_line(exc) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def _worker_children() -> list:
    """Live model workers started by this test process (their launcher is our child)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if b"studio.sandbox.worker" in cmd and ppid == os.getpid():
            found.append(int(pid))
    from studio.sandbox import client

    spares = {w.proc.pid for w in list(client._spares.values())}
    return [p for p in found if p not in spares]


def test_a_program_cannot_read_a_host_file(kind, tmp_path, bystander):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    path = hostile.scripted("read", tmp_path / "reader.pt", str(secret))
    with pytest.raises(StudioError) as exc:
        studio.load_model(path, card=CARD3)
    assert "TOP" not in _one_line(exc)
    _still_serving(bystander)


def test_in_process_the_same_program_does_read_it(tmp_path):
    """The attack is real: trusted and run in this process, it reads the secret's bytes into its outputs."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    path = hostile.scripted("read", tmp_path / "reader.pt", str(secret))
    model = studio.load_model(path, card=dict(CARD3, outputs="probabilities"), sandbox="off")
    assert model.output(np.zeros((1, 3))).tolist() == [[ord("T"), ord("O")]]


def test_a_program_cannot_write_a_host_file(kind, tmp_path, bystander):
    victim = tmp_path / "victim.txt"
    victim.write_text("original")
    path = hostile.scripted("write", tmp_path / "writer.pt", str(victim))
    try:
        model = studio.load_model(path, card=CARD3)
        model.output(np.zeros((2, 3)))
    except StudioError:
        pass
    assert victim.read_text() == "original"
    _still_serving(bystander)


def test_pickled_code_runs_only_in_the_sandbox(kind, tmp_path, bystander):
    marker = tmp_path / "pwned"
    path = hostile.pickled(tmp_path / "m.pkl", exec, f"open({str(marker)!r}, 'w').write('x')")
    with pytest.raises(StudioError):
        studio.load_model(path, trust_pickle=True)
    assert not marker.exists()
    _still_serving(bystander)


def test_no_network_from_the_sandbox(kind, tmp_path, bystander):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    path = hostile.pickled(tmp_path / "m.pkl", socket.create_connection, ("127.0.0.1", port), 2)
    with pytest.raises(StudioError):
        studio.load_model(path, trust_pickle=True)
    with pytest.raises(socket.timeout):
        server.accept()  # nobody came
    server.close()
    _still_serving(bystander)


def test_a_crash_is_one_error_and_the_server_goes_on(kind, tmp_path, bystander):
    path = hostile.pickled(tmp_path / "m.pkl", faulthandler._sigsegv)
    before = set(_worker_children())
    with pytest.raises(WorkerError) as exc:
        studio.load_model(path, trust_pickle=True)
    assert "segmentation fault" in _one_line(exc)
    assert set(_worker_children()) <= before  # the crashed worker was reaped
    _still_serving(bystander)


def test_an_endless_loop_is_stopped_at_the_load_timeout(kind, tmp_path, monkeypatch, bystander):
    monkeypatch.setenv("STUDIO_SANDBOX_TIMEOUT", "4")
    path = hostile.scripted("loop", tmp_path / "loop.pt")
    before = set(_worker_children())
    start = time.monotonic()
    with pytest.raises(WorkerError) as exc:
        studio.load_model(path, card=CARD3)
    assert "time limit" in _one_line(exc)
    assert time.monotonic() - start < 30
    assert set(_worker_children()) <= before  # the looping worker was ended
    _still_serving(bystander)


@pytest.mark.parametrize("attack", ["bomb", "loop"])
def test_onnx_memory_bomb_and_endless_loop_are_bounded(kind, attack, tmp_path, monkeypatch, bystander):
    monkeypatch.setenv("STUDIO_SANDBOX_TIMEOUT", "6")
    monkeypatch.setenv("STUDIO_SANDBOX_MEMORY", str(2**30))
    path = hostile.onnx_model(attack, tmp_path / f"{attack}.onnx")
    with pytest.raises(StudioError) as exc:
        model = studio.load_model(path, card={"feature_names": ["a", "b"]})
        model.output(np.ones((1, 2)))
    _one_line(exc)
    _still_serving(bystander)


def test_python_memory_bomb_is_bounded(kind, tmp_path, monkeypatch, bystander):
    monkeypatch.setenv("STUDIO_SANDBOX_MEMORY", str(2**30))
    path = hostile.pickled(tmp_path / "m.pkl", bytearray, 8 * 2**30)
    with pytest.raises(StudioError) as exc:
        studio.load_model(path, trust_pickle=True)
    assert "memory" in _one_line(exc)
    _still_serving(bystander)


def test_the_worker_gets_thread_settings_but_no_secrets(monkeypatch):
    """A server's thread settings (``OMP_WAIT_POLICY=PASSIVE`` on shared cores, README) reach the model's worker;
    its other variables (credentials) do not."""
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "TOPSECRET")
    env = launcher.worker_env("/tmp/studio-worker")
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert "AWS_SECRET_ACCESS_KEY" not in env and "TOPSECRET" not in env.values()
