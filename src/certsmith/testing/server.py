"""A real `certsmith serve` on loopback, for benchmarks and tools that must not import the tests.

It is the same process a user runs: ``python -m certsmith serve --port P --data-dir D``; the first
start writes the access key to ``D/credentials``, which :attr:`RunningServer.access_key` reads.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = ["RunningServer", "free_port", "logged_errors", "read_access_key", "start_server"]

_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (\w+) ")


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL once ``timeout`` seconds have passed; wait until it has exited."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_access_key(credentials: Path) -> tuple[str, str]:
    """(access key id, secret) from a credentials file in the AWS format that `certsmith serve` writes."""
    values: dict[str, str] = {}
    for line in credentials.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values["aws_access_key_id"], values["aws_secret_access_key"]


def logged_errors(log: str) -> list[str]:
    """The log's records of level ERROR or CRITICAL, each with the traceback under it (and uvicorn's own)."""
    records: list[list[str]] = []
    for line in log.splitlines():
        if _RECORD.match(line) or line.startswith(("ERROR:", "INFO:", "WARNING:")) or not records:
            records.append([line])
        else:
            records[-1].append(line)
    errors = []
    for lines in records:
        header = _RECORD.match(lines[0])
        level = header.group(1) if header else lines[0].partition(":")[0]
        if level in ("ERROR", "CRITICAL") or any(line.startswith("Traceback") for line in lines):
            errors.append("\n".join(lines))
    return errors


@dataclass
class RunningServer:
    endpoint: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def access_key(self) -> tuple[str, str]:
        return read_access_key(self.data_dir / "credentials")

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client of this server (us-east-1 unless ``region_name`` says otherwise); ``certsmith`` is
        certsmith's own API, from the model shipped in the package."""
        import boto3  # a test and benchmark dependency, not certsmith's

        from ..models import MODELS_PATH

        key_id, secret = self.access_key
        session = boto3.session.Session()
        session._session.get_component("data_loader").search_paths.append(str(MODELS_PATH))
        return session.client(service, endpoint_url=self.endpoint,
                                              region_name=kwargs.pop("region_name", "us-east-1"),
                                              aws_access_key_id=key_id, aws_secret_access_key=secret, **kwargs)

    def errors(self) -> list[str]:
        return logged_errors(self.log_path.read_text(errors="replace"))

    def stop(self) -> None:
        stop_process(self.process, 15)


def start_server(folder: Path, database_url: str | None = None, extra: list[str] | None = None,
                 ready_within: float = 60.0, settings: Mapping[str, object] | None = None) -> RunningServer:
    """Start `certsmith serve` with its data in ``folder/data`` and its output in ``folder/server.log``;
    ``settings`` by name (``{"renewal_sweep_seconds": 1}``), given to it as ``CERTSMITH_*`` variables."""
    port = free_port()
    data_dir, log_path = folder / "data", folder / "server.log"
    args = [sys.executable, "-m", "certsmith", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    if database_url:
        args += ["--database-url", database_url]
    args += extra or []
    with open(log_path, "wb") as log:
        environment = dict(os.environ) | {f"CERTSMITH_{name.upper()}": str(value) for name, value in (settings or {}).items()}
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=environment)
    tls = any(arg.startswith("--tls") for arg in extra or [])
    endpoint = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"certsmith serve exited: {log_path.read_text()}")
        try:  # readiness only: whoever needs to trust the server's certificate checks it
            if httpx.get(f"{endpoint}/healthz", timeout=1, verify=False).status_code == 200:
                return RunningServer(endpoint, data_dir, process, log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise RuntimeError(f"certsmith serve did not become ready within {ready_within:.0f} s: {log_path.read_text()}")
