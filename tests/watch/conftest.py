"""A real training process (tests/watch/trainer.py) for the watch tests, started and ended by the fixture."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

import pytest

TRAINER = Path(__file__).with_name("trainer.py")


def start_trainer(log: Path | None, *args: str, timeout: float = 60.0, script: Path = TRAINER):
    """Start a training script (the trainer, or ``models/train_images.py --watch``); return (process, address,
    token) once it printed its watcher line. ``log`` is the trainer's ``--log`` (None: no ``--log``)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    logs = ["--log", str(log)] if log is not None else []
    proc = subprocess.Popen([sys.executable, str(script), *logs, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        if not sel.select(timeout=0.5):
            if proc.poll() is not None:
                break
            continue
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith("studio.watch:"):
            parts = line.split()
            return proc, parts[parts.index("at") + 1], parts[parts.index("token") + 1]
    proc.kill()
    raise AssertionError(f"the trainer did not print its watcher line: {''.join(seen)[-2000:]}")


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    log = tmp_path_factory.mktemp("trainer") / "run.jsonl"
    proc, address, token = start_trainer(log, "--sleep", "0.002", "--max-seconds", "90")
    yield {"proc": proc, "address": address, "token": token, "log": log}
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
