"""`certsmith worker` processes for tests and benchmarks: start them with a given environment, learn their
worker ids from their logs, stop them (SIGTERM) or kill them (SIGKILL).

A process is ``python -m certsmith worker --threads N`` with its output appended to its own log file; its
settings come from the environment (CERTSMITH_DATA_DIR, CERTSMITH_DATABASE_URL, CERTSMITH_RENEWAL_SWEEP_SECONDS,
CERTSMITH_JOB_LEASE_SECONDS ...). Each worker thread logs ``worker-<id> started`` as its loop begins.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .processes import log_tail, spawn
from .server import logged_errors

__all__ = ["WorkerProcess", "start_worker", "worker_environment"]

_STARTED = re.compile(r"\b(worker-[0-9a-f]+) started\b")


def worker_environment(data_dir: Path, database_url: str | None = None, **settings: object) -> dict[str, str]:
    """This process's environment (without its CERTSMITH_* variables) with a worker's settings: the data dir, the
    database, and each of ``settings`` as CERTSMITH_<NAME> (``job_lease_seconds=3`` → CERTSMITH_JOB_LEASE_SECONDS=3)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTSMITH_")}
    env["CERTSMITH_DATA_DIR"] = str(data_dir)
    if database_url:
        env["CERTSMITH_DATABASE_URL"] = database_url
    for name, value in settings.items():
        env[f"CERTSMITH_{name.upper()}"] = str(value)
    return env


@dataclass
class WorkerProcess:
    """One running ``certsmith worker`` process and its log."""

    process: subprocess.Popen[bytes]
    log_path: Path
    threads: int = 1

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def worker_ids(self) -> list[str]:
        """The ids of the worker threads that have started so far (from the log)."""
        return list(dict.fromkeys(_STARTED.findall(self.log())))

    def wait_started(self, within: float = 60.0) -> list[str]:
        """Wait until every thread has logged its start; returns their worker ids (the jobs' ``leased_by``).

        Raises RuntimeError with the log's tail when the process exits or is not ready in time.
        """
        deadline = time.monotonic() + within
        while True:
            ids = self.worker_ids()
            if len(ids) >= self.threads:
                return ids
            if self.process.poll() is not None:
                raise RuntimeError(f"certsmith worker exited with status {self.process.returncode}:\n"
                                   f"{log_tail(self.log_path)}")
            if time.monotonic() >= deadline:
                raise RuntimeError(f"certsmith worker did not start within {within:.0f} s:\n{log_tail(self.log_path)}")
            time.sleep(0.05)

    def errors(self) -> list[str]:
        """The log's ERROR records and tracebacks."""
        return logged_errors(self.log())

    def kill(self) -> None:
        """SIGKILL: the process dies at once, holding whatever it had leased."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait for a clean stop; SIGKILL after ``timeout`` seconds. Returns the exit status, or None
        when it had to be killed."""
        if self.process.poll() is not None:
            return self.process.returncode
        self.process.terminate()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None


def start_worker(log_path: Path, env: Mapping[str, str], threads: int = 1) -> WorkerProcess:
    """Start ``python -m certsmith worker --threads N`` with ``env`` (see :func:`worker_environment`), its output
    appended to ``log_path``. It does not wait: call :meth:`WorkerProcess.wait_started`."""
    args = [sys.executable, "-m", "certsmith", "worker", "--threads", str(threads)]
    return WorkerProcess(spawn(args, log_path, env), log_path, threads)
