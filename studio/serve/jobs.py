"""Jobs: explain and assess runs in a bounded pool of threads, with progress and cancel.

A job's work is a studio verb (``studio.explain``, ``studio.assess``) whose
model calls go to the model's sandboxed worker; the thread here only waits on
the worker's pipe, so a few threads serve many clients. At most
``workers`` jobs run at once and at most ``queued`` wait; more are refused
(429) rather than queued without bound.
"""

from __future__ import annotations

import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from studio.errors import StudioError, last_line


class JobCancelled(StudioError):
    """Raised from a job's progress callback once its cancel was asked for."""


class Busy(StudioError):
    """The server holds as many jobs as it takes (HTTP 429)."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Job:
    """One submitted run. ``result`` holds the finished result's JSON text."""

    kind: str
    id: str = field(default_factory=lambda: "j-" + secrets.token_hex(8))
    status: str = "queued"
    progress: float = 0.0
    message: str = "waiting for a free worker"
    error: str | None = None
    created: str = field(default_factory=_now)
    started: str | None = None
    finished: str | None = None
    result: str | None = None
    uses: tuple = ()  # the upload ids it reads (they cannot be deleted while it is active)
    cancel_event: threading.Event = field(default_factory=threading.Event)

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")

    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def report(self, fraction, message="") -> None:
        """``studio.explain``'s ``progress`` callback (never raises: it is called while a worker's reply is read)."""
        try:
            self.progress = min(1.0, max(self.progress, float(fraction)))
        except (TypeError, ValueError):
            pass
        if message:
            self.message = str(message)[:200]

    def report_or_stop(self, fraction, message="") -> None:
        """``studio.assess``'s ``progress`` callback, called between its steps: raises :class:`JobCancelled` once
        cancel was asked for, so the assessment stops at its next step."""
        if self.cancel_event.is_set():
            raise JobCancelled("the job was cancelled")
        self.report(fraction, message)

    def cancel(self) -> None:
        self.cancel_event.set()
        if self.status == "queued":
            self._finish("cancelled", "cancelled before it started")

    def _finish(self, status: str, message: str, error: str | None = None) -> None:
        self.status, self.message, self.error, self.finished = status, message, error, _now()

    def run(self, work) -> None:
        """Run ``work(job) -> JSON text`` and record how it ended (never raises)."""
        if self.cancel_event.is_set():
            return
        self.status, self.started, self.message = "running", _now(), "started"
        try:
            text = work(self)
        except StudioError as exc:
            if self.cancel_event.is_set():
                self._finish("cancelled", "cancelled while running")
            else:
                self._finish("failed", "failed", " ".join(str(exc).split()))
            return
        except Exception as exc:  # noqa: BLE001 -- a job's failure is its status, never the server's
            self._finish("failed", "failed",
                         f"unexpected {type(exc).__name__}: {last_line(exc)} (report it with the job's request)")
            return
        if self.cancel_event.is_set():
            self._finish("cancelled", "cancelled while running")
            return
        self.result, self.progress = text, 1.0
        self._finish("done", "done")


class JobRunner:
    """A bounded pool: ``workers`` threads, at most ``queued`` jobs waiting or running."""

    def __init__(self, workers: int, queued: int):
        self.queued = max(1, int(queued))
        self._pool = ThreadPoolExecutor(max_workers=max(1, int(workers)), thread_name_prefix="studio-job")
        self._active: list[Job] = []
        self._lock = threading.Lock()

    def submit(self, job: Job, work) -> Job:
        with self._lock:
            self._active = [j for j in self._active if j.active]
            if len(self._active) >= self.queued:
                raise Busy(f"{len(self._active)} jobs are queued or running, the most this server takes; "
                                  "wait for one to finish or cancel one")
            self._active.append(job)
        self._pool.submit(job.run, work)
        return job

    def shutdown(self) -> None:
        with self._lock:
            for job in self._active:
                job.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
