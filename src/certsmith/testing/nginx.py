"""A real nginx on loopback that redirects ACME HTTP-01 paths, as a user's web server does for HTTP validation.

Each server name gets one server block with exactly the one rule a user adds, sending every path under
``/.well-known/acme-challenge/`` to the same last segment under the name's redirect target; everything else
(and every other name) is a 404.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .processes import launch, log_tail
from .server import stop_process

__all__ = ["Nginx", "start_nginx", "worker_pids"]

READY_WITHIN = 15.0
_HOST = "127.0.0.1"
_NAME = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*$")
_URL = re.compile(r"^https?://[^\s\"'`;{}$\\]+$")
_PROBE = "nginx-ready-probe"


def _checked(redirects: Mapping[str, str]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for raw, target in redirects.items():
        name = raw.strip().lower().rstrip(".")
        if not _NAME.match(name):
            raise ValueError(f"redirects: {raw!r} is not a server name")
        if not _URL.match(target):
            raise ValueError(f"redirects: the target of {name} ({target!r}) must be an http(s) URL without spaces, "
                             "quotes, semicolons, braces, dollars or backslashes")
        checked[name] = target
    return checked


@dataclass
class Nginx:
    """A running nginx master process: its folder, port and the redirects it carries."""

    home: Path
    port: int
    process: subprocess.Popen[bytes] | None
    redirects: dict[str, str] = field(default_factory=dict)
    binary: str = "nginx"

    @property
    def conf_path(self) -> Path:
        return self.home / "nginx.conf"

    @property
    def log_path(self) -> Path:
        return self.home / "logs" / "error.log"

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines) + "\n" + log_tail(self.home / "logs" / "stderr.log", lines)

    def set_redirects(self, redirects: Mapping[str, str]) -> None:
        """Carry these redirects instead (server name -> target); returns once nginx answers with them."""
        checked = _checked(redirects)
        self._write(checked)
        old_workers = self._workers()
        done = subprocess.run(self._command("-s", "reload"), capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"nginx -s reload failed: {done.stderr.strip()}\n{self.log_tail()}")
        gone = {name: "" for name in self.redirects if name not in checked}
        self.redirects = checked
        self._wait_until_serving({**gone, **checked}, old_workers)

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    # -- helpers

    def _command(self, *args: str) -> list[str]:
        return [self.binary, "-p", str(self.home), "-c", str(self.conf_path), "-e", "stderr", *args]

    def _write(self, redirects: Mapping[str, str]) -> None:
        home = self.home
        lines = [
            "worker_processes 1;",
            f"pid {home}/nginx.pid;",
            f"error_log {home}/logs/error.log info;",
            "events { worker_connections 64; }",
            "http {",
            f"    access_log {home}/logs/access.log;",
            *(f"    {kind}_temp_path {home}/tmp/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
            "    server {",
            f"        listen {_HOST}:{self.port} default_server;",
            "        location / { return 404; }",
            "    }",
        ]
        for name, target in redirects.items():
            lines += [
                "    server {",
                f"        listen {_HOST}:{self.port};",
                f"        server_name {name};",
                f'        location ~ ^/\\.well-known/acme-challenge/(.*)$ {{ return 302 "{target}$1"; }}',
                "        location / { return 404; }",
                "    }",
            ]
        lines.append("}")
        self.conf_path.write_text("\n".join(lines) + "\n")

    def _workers(self) -> set[int]:
        return set() if self.process is None else worker_pids(self.process.pid)

    def _wait_until_serving(self, expected: Mapping[str, str], old_workers: set[int] | None = None) -> None:
        """Poll until the workers of an earlier configuration have exited and each name answers as configured
        ("" means: a 404); raise if nginx exits or the deadline passes."""
        deadline = time.monotonic() + READY_WITHIN
        url = f"http://{_HOST}:{self.port}/.well-known/acme-challenge/{_PROBE}"
        with httpx.Client(timeout=1.0, trust_env=False, follow_redirects=False) as client:
            while True:
                if self.process is None or self.process.poll() is not None:
                    raise RuntimeError(f"nginx exited:\n{self.log_tail()}")
                try:
                    if old_workers and old_workers & self._workers():
                        raise httpx.TransportError("workers of the earlier configuration are still running")
                    answers = {name: client.get(url, headers={"Host": name or "unknown.invalid"})
                               for name in [*expected, ""]}
                    if all((answer.headers.get("location") == expected[name] + _PROBE) if expected.get(name)
                           else answer.status_code == 404 for name, answer in answers.items()):
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not serve its configuration within {READY_WITHIN:.0f} s:\n"
                                       f"{self.log_tail()}")
                time.sleep(0.02)


def start_nginx(home: Path, port: int, redirects: Mapping[str, str], *, binary: str = "nginx") -> Nginx:
    """Start nginx on 127.0.0.1:``port`` with its files in ``home``, redirecting each server name's HTTP-01 paths.

    ``redirects`` maps a server name to its target (``RedirectTo``: the last path segment is appended). Returns once
    nginx answers as configured; raises RuntimeError with the log's tail if it exits or is not ready in time.
    """
    checked = _checked(redirects)
    home = home.resolve()
    if any(c in str(home) for c in " \"';{}$\\\n"):
        raise ValueError(f"home {str(home)!r} must not contain spaces, quotes, semicolons, braces or dollars")
    for folder in ("logs", "tmp"):
        (home / folder).mkdir(parents=True, exist_ok=True)
    nginx = Nginx(home, port, None, checked, binary)
    nginx._write(checked)
    launch(nginx, nginx._command("-g", "daemon off;"), lambda: nginx._wait_until_serving(checked),
           log_path=home / "logs" / "stderr.log")
    return nginx


def worker_pids(master: int) -> set[int]:
    """The worker processes of an nginx master (read from /proc: nginx runs on Linux here); a reload replaces them."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if fields and int(fields[1]) == master:
                found.add(int(entry.name))
    return found
