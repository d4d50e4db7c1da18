"""The real API server for tests: ``python -m studio serve`` in a subprocess on a free loopback port."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running server: ``url``, ``token``, ``folder`` (its TMPDIR, where its private folder is made)."""

    def __init__(self, url: str, token: str, folder: Path, proc: subprocess.Popen):
        self.url, self.token, self.folder, self.proc = url, token, folder, proc
        self.client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120)

    def stored(self) -> list:
        """Every file in the server's private folder (uploads and partial uploads)."""
        return sorted(p for d in self.folder.glob("studio-serve-*") for p in d.rglob("*") if p.is_file())

    def wait_job(self, job_id: str, seconds: float = 120) -> dict:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            job = self.client.get(f"/v1/jobs/{job_id}").json()
            if job["status"] not in ("queued", "running"):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not finish in {seconds} s: {job}")

    def stop(self) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode


@contextmanager
def running(folder: Path, *args: str, env: dict | None = None):
    """Start ``python -m studio serve`` with its own TMPDIR ``folder``; stop it (SIGTERM) on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)  # may begin with "-": passed as --token=VALUE, which argparse always reads
    port = free_port()
    environ = {**os.environ, "TMPDIR": str(folder), **(env or {})}
    log = open(folder.parent / f"{folder.name}.log", "wb")  # noqa: SIM115 -- closed below
    proc = subprocess.Popen([sys.executable, "-m", "studio", "serve", "--port", str(port), f"--token={token}", *args],
                            cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT)

    url = f"http://127.0.0.1:{port}"
    server = Server(url, token, folder, proc)
    server.log = Path(log.name)
    try:
        end = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited with {proc.returncode}: {server.log.read_text()[-2000:]}")
            try:
                if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > end:
                raise AssertionError("the server did not answer in 90 s")
            time.sleep(0.1)
        yield server
    finally:
        server.stop()
        log.close()
