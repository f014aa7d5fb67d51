"""A real HAProxy on loopback in master-worker mode, terminating TLS with one or more crt files (chosen by SNI).

It listens on 127.0.0.1:``port`` (``ssl crt a.pem crt b.pem ...``: the first file is the default, the others are
picked by the names in their certificates) and answers every request with 200 "ok". The runtime API is on
``admin.sock`` (level admin) and the master CLI on ``master.sock``, both in its folder. A crt file that does not
exist yet gets a self-signed placeholder first (HAProxy does not start without it).
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certsmith.deploy.targets.base import serial_text
from certsmith.deploy.targets.haproxy import haproxy_command

from .nginx import worker_pids
from .processes import launch, log_tail
from .server import stop_process

__all__ = ["Haproxy", "served_serial", "start_haproxy", "write_placeholder_crt"]

READY_WITHIN = 15.0
_HOST = "127.0.0.1"
_UNSAFE = " \"'#\\\n\t"


def write_placeholder_crt(path: Path, names: Sequence[str] = ("localhost",)) -> str:
    """A self-signed certificate for ``names`` with its key (one PEM file, as HAProxy loads it); returns its serial."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key_pem)
    path.chmod(0o600)
    return serial_text(cert.serial_number)


def served_serial(host: str, port: int, server_name: str | None, timeout: float = 5.0) -> str:
    """The serial (colon hex) of the leaf certificate a new TLS connection to ``host:port`` is given (SNI as named)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as sock, \
            context.wrap_socket(sock, server_hostname=server_name) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return serial_text(x509.load_der_x509_certificate(der).serial_number)


@dataclass
class Haproxy:
    """A running HAProxy master: its folder, port and crt files, and its two sockets."""

    home: Path
    port: int
    crt_files: tuple[Path, ...]
    process: subprocess.Popen[bytes] | None
    binary: str = "haproxy"
    host: str = _HOST

    @property
    def conf_path(self) -> Path:
        return self.home / "haproxy.cfg"

    @property
    def log_path(self) -> Path:
        return self.home / "haproxy.log"

    @property
    def admin_socket(self) -> Path:
        return self.home / "admin.sock"

    @property
    def master_socket(self) -> Path:
        return self.home / "master.sock"

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def admin(self, line: str, payload: str | None = None, timeout: float = 5.0) -> str:
        """One runtime API command on the admin socket (served by the current worker); HAProxy's answer."""
        return haproxy_command(str(self.admin_socket), line, payload, timeout=timeout)

    def master(self, line: str, timeout: float = 5.0) -> str:
        """One command on the master CLI (``show proc``, ``reload``, ``@1 show info``); its answer."""
        return haproxy_command(str(self.master_socket), line, timeout=timeout)

    def workers(self) -> set[int]:
        """The worker processes of the master (a reload starts new ones; old ones leave once their connections end)."""
        return set() if self.process is None else worker_pids(self.process.pid)

    def serial(self, server_name: str | None = "localhost") -> str:
        """The serial the listener presents to a new connection with this SNI."""
        return served_serial(self.host, self.port, server_name)

    def target_options(self, crt: Path | int = 0, *, via: str = "socket") -> dict[str, str]:
        """A haproxy binding's options for one of the crt files (by path or index): swapped live through the admin
        socket (``via="socket"``) or reloaded through the master CLI (``via="master"``)."""
        path = self.crt_files[crt] if isinstance(crt, int) else Path(crt).resolve()
        if path not in self.crt_files:
            raise ValueError(f"{path} is not one of this HAProxy's crt files")
        if via not in ("socket", "master"):
            raise ValueError(f"via must be 'socket' or 'master', not {via!r}")
        sock = {"socket": str(self.admin_socket)} if via == "socket" else {"master_socket": str(self.master_socket)}
        return {"path": str(path.parent), "crt_name": path.name, **sock}

    def reload(self) -> None:
        """Reload through the master CLI (HAProxy reads its files again); returns once a new worker serves."""
        before = self._current_worker()
        try:
            self.master("reload")
        except OSError:
            pass  # the master re-executes itself and may close the connection without an answer
        self._wait_ready(lambda pid: pid != before)

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    # -- helpers

    def write_config(self) -> None:
        """(Re)write haproxy.cfg as started (a test that breaks it puts it back with this, then reloads)."""
        crts = " ".join(f"crt {path}" for path in self.crt_files)
        lines = [
            "global",
            f"    stats socket {self.admin_socket} mode 600 level admin",
            "    log stderr format short local0 notice",
            "    hard-stop-after 10s",
            "defaults",
            "    mode http",
            "    log global",
            "    timeout connect 5s",
            "    timeout client 30s",
            "    timeout server 30s",
            "frontend tls_in",
            f"    bind {self.host}:{self.port} ssl {crts}",
            '    http-request return status 200 content-type text/plain string "ok"',
        ]
        self.conf_path.write_text("\n".join(lines) + "\n")

    def _current_worker(self) -> int | None:
        try:
            for line in self.admin("show info", timeout=1.0).splitlines():
                if line.startswith("Pid: "):
                    return int(line[5:])
        except (OSError, ValueError):
            pass
        return None

    def _wait_ready(self, new: Callable[[int], bool] | None = None) -> None:
        """Poll until the admin socket is served by a worker of the master (a new one when ``new`` says so) and a
        TLS handshake succeeds; raise with the log's tail if HAProxy exits or the deadline passes."""
        deadline = time.monotonic() + READY_WITHIN
        while True:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited:\n{self.log_tail()}")
            pid = self._current_worker()
            if pid is not None and pid in self.workers() and (new is None or new(pid)):
                try:
                    self.serial(None)
                    return
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"haproxy was not ready within {READY_WITHIN:.0f} s:\n{self.log_tail()}")
            time.sleep(0.02)


def start_haproxy(home: Path, port: int, crt_files: Sequence[Path] | Mapping[Path, Sequence[str]] = (), *,
                  binary: str = "haproxy", host: str = _HOST) -> Haproxy:
    """Start HAProxy (``-W -S master.sock``) on ``host:port`` with its files in ``home``, serving ``crt_files``
    (default: ``home/haproxy.pem``; the first is the default certificate); each missing one gets a placeholder first,
    for the names ``crt_files`` maps it to, or "localhost".

    Returns once a worker answers on the admin socket and completes a TLS handshake; RuntimeError with the log's tail
    if HAProxy exits or is not ready in time.
    """
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    names = {Path(path).resolve(): tuple(crt_files[path]) if isinstance(crt_files, Mapping) else ("localhost",)
             for path in crt_files} or {home / "haproxy.pem": ("localhost",)}
    files = tuple(names)
    for path in (home, *files):
        if any(c in str(path) for c in _UNSAFE):
            raise ValueError(f"{str(path)!r} must not contain spaces, quotes, hashes or backslashes")
    for path in files:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_placeholder_crt(path, names[path])
    haproxy = Haproxy(home, port, files, None, binary, host)
    haproxy.write_config()
    check = subprocess.run([binary, "-c", "-f", str(haproxy.conf_path)], capture_output=True, text=True, timeout=30,
                           check=False)
    if check.returncode != 0:
        raise RuntimeError(f"haproxy -c refused its configuration:\n{check.stdout}{check.stderr}")
    launch(haproxy, [binary, "-W", "-S", f"{haproxy.master_socket},mode,600", "-f", str(haproxy.conf_path)],
           haproxy._wait_ready)
    return haproxy
