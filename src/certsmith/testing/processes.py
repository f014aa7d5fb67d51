"""The process handling the test peers share: start a binary with its output in a log, read the log's tail,
and wait for a DNS server to answer."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import dns.exception
import dns.message
import dns.query

__all__ = ["Peer", "is_running", "launch", "log_tail", "spawn", "wait_dns_ready"]

_HOST = "127.0.0.1"


class Peer(Protocol):
    """A test peer that owns one process: what :func:`launch` starts and stops."""

    process: subprocess.Popen[bytes] | None

    @property
    def log_path(self) -> Path: ...

    def stop(self) -> None: ...


def is_running(process: subprocess.Popen[bytes] | None) -> bool:
    """Whether ``process`` has been started and has not exited."""
    return process is not None and process.poll() is None


def spawn(args: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``args`` with stdout and stderr appended to ``log_path`` and stdin from /dev/null."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(list(args), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=None if env is None else dict(env), cwd=cwd)


def launch(peer: Peer, args: Sequence[str], ready: Callable[[], None], *, env: Mapping[str, str] | None = None,
           log_path: Path | None = None) -> None:
    """Start ``args`` as ``peer.process`` unless it is running, then call ``ready``; stop the peer if that raises.

    The output goes to ``log_path``, or to the peer's own log when it is not given.
    """
    if is_running(peer.process):
        return
    peer.process = spawn(args, log_path or peer.log_path, env)
    try:
        ready()
    except BaseException:
        peer.stop()
        raise


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of the log at ``path``, or "(no log)" if it cannot be read."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_dns_ready(what: str, process: subprocess.Popen[bytes] | None, port: int, zone: str, log_path: Path,
                   within: float, host: str = _HOST) -> None:
    """Poll ``zone``'s SOA over UDP at ``host``:``port`` until it answers.

    Raises RuntimeError with the log's tail if ``process`` (the server, named ``what``) exits or is not ready
    within ``within`` seconds.
    """
    deadline = time.monotonic() + within
    request = dns.message.make_query(zone.rstrip(".") + ".", "SOA")
    while True:
        if process is None or process.poll() is not None:
            status = None if process is None else process.returncode
            raise RuntimeError(f"{what} exited with status {status}:\n{log_tail(log_path)}")
        try:
            if dns.query.udp(request, host, port=port, timeout=0.2).answer:
                return
        except (dns.exception.DNSException, OSError):
            pass
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{what} did not answer within {within:.0f} s:\n{log_tail(log_path)}")
        time.sleep(0.02)
