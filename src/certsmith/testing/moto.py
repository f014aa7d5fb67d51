"""A real `moto_server` (AWS service emulator) on loopback, for tests of the Route 53 provider.

moto accepts any credentials unless its IAM checks are on: :meth:`Moto.require_auth` turns them on after a given
number of further requests (so a test can first create an IAM user and its access key without credentials).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from .processes import is_running, launch, log_tail
from .server import free_port, stop_process

__all__ = ["DUMMY_KEYS", "Moto", "moto_binary", "start_moto"]

DUMMY_KEYS = {"access_key_id": "AKIDCERTSMITHTEST", "secret_access_key": "certsmith-test-secret"}
_HOST = "127.0.0.1"


def moto_binary() -> Path:
    """The `moto_server` beside this Python (the venv's)."""
    return Path(sys.executable).parent / "moto_server"


@dataclass
class Moto:
    """A running `moto_server`: its folder, port and process."""

    home: Path
    port: int
    process: subprocess.Popen[bytes] | None
    binary: str
    env: dict[str, str] = field(default_factory=dict)
    ready_within: float = 15.0

    @property
    def endpoint(self) -> str:
        return f"http://{_HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / "moto.log"

    @property
    def running(self) -> bool:
        return is_running(self.process)

    def start(self) -> None:
        """(Re)start on the same port (moto keeps nothing across restarts); returns once it answers."""
        launch(self, [self.binary, "-H", _HOST, "-p", str(self.port)], self._wait_ready, env=self.env)

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def reset(self) -> None:
        """Forget every resource (moto's /moto-api/reset)."""
        httpx.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()

    def require_auth(self, after: int = 0) -> None:
        """Check signatures and IAM permissions of every request after the next ``after`` ones."""
        httpx.post(f"{self.endpoint}/moto-api/reset-auth", content=str(after).encode(), timeout=10).raise_for_status()

    def allow_all(self) -> None:
        """Turn the checks of :meth:`require_auth` off again."""
        httpx.post(f"{self.endpoint}/moto-api/reset-auth", content=b"inf", timeout=10).raise_for_status()

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_within
        while True:
            if not self.running:
                raise RuntimeError(f"moto_server exited:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.endpoint}/moto-api/", timeout=0.5).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() >= deadline:
                raise RuntimeError(f"moto_server did not answer within {self.ready_within:.0f} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def __enter__(self) -> Moto:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def start_moto(home: Path, *, port: int | None = None, binary: str | None = None, env: Mapping[str, str] | None = None,
               ready_within: float = 15.0) -> Moto:
    """Start `moto_server` on 127.0.0.1 (a free port unless ``port`` is given), its log in ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    environment.update(env or {})
    moto = Moto(home, port or free_port(), None, binary or str(moto_binary()), environment, ready_within)
    moto.start()
    return moto
