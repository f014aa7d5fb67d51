"""Pebble, the ACME test CA, on loopback: for the tests and the benchmarks.

Pebble ships no TLS certificate, so :func:`start_pebble` makes a self-signed one (what clients must
trust: :attr:`Pebble.tls_cert_pem`). Pebble makes a new root and intermediate at every start; read them
with :meth:`Pebble.roots_pem` and :meth:`Pebble.intermediates_pem` after each start.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .processes import is_running, log_tail, spawn
from .server import free_port, stop_process

__all__ = ["ARI_ENV", "DEFAULT_ENV", "ChallTestSrv", "Pebble", "ari_pebble_binary", "make_tls_cert", "start_challtestsrv",
           "start_pebble"]

DEFAULT_ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
READY_WITHIN = 15.0
ARI_ENV = "CERTSMITH_PEBBLE_ARI"  # a Pebble with ACME Renewal Information (2.6 or later), when not in .peers/
_FETCHED_ARI = Path(__file__).resolve().parents[3] / ".peers" / "pebble-ari" / "usr" / "bin" / "pebble"


def ari_pebble_binary() -> str | None:
    """A Pebble that serves renewalInfo: ``$CERTSMITH_PEBBLE_ARI``, else the one scripts/fetch_pebble_ari.sh unpacked."""
    configured = os.environ.get(ARI_ENV)
    if configured:
        return configured
    return str(_FETCHED_ARI) if _FETCHED_ARI.is_file() else None


@dataclass
class Pebble:
    home: Path
    port: int
    management_port: int
    process: subprocess.Popen[bytes] | None
    directory_url: str
    tls_cert_pem: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def log_path(self) -> Path:
        return self.home / "pebble.log"

    def _management(self, path: str) -> str:
        with _http(self.tls_cert_pem) as client:
            response = client.get(f"https://127.0.0.1:{self.management_port}{path}")
            response.raise_for_status()
            return response.text

    def roots_pem(self) -> str:
        """The current root (a new one at every start)."""
        return self._management("/roots/0")

    def intermediates_pem(self) -> str:
        return self._management("/intermediates/0")

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def start(self) -> None:
        """(Re)start with the same configuration, ports and environment; returns once /dir answers."""
        if is_running(self.process):
            return
        self.process = spawn(self.args, self.log_path, self.env, cwd=self.home)
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + READY_WITHIN
        urls = (self.directory_url, f"https://127.0.0.1:{self.management_port}/roots/0")
        with _http(self.tls_cert_pem, timeout=1.0) as client:
            while True:
                if self.process.poll() is not None:
                    code, self.process = self.process.returncode, None
                    raise RuntimeError(f"pebble exited with status {code}:\n{self.log_tail()}")
                try:
                    if all(client.get(url).status_code == 200 for url in urls):
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"pebble did not answer within {READY_WITHIN:.0f} s:\n{self.log_tail()}")
                time.sleep(0.02)


def start_pebble(home: Path, dns_server: str | None, *, env: Mapping[str, str] | None = None,
                 always_valid: bool = False, binary: str = "pebble", config: Mapping[str, Any] | None = None,
                 validity_seconds: int | None = None) -> Pebble:
    """Start Pebble on free loopback ports, with its files in ``home``.

    ``config`` adds keys to Pebble's configuration (``externalAccountBindingRequired``,
    ``externalAccountMACKeys``, ``domainBlocklist``, ...). ``env`` overrides or extends :data:`DEFAULT_ENV`.
    ``validity_seconds`` sets the certificates' validity (``certificateValidityPeriod``; Pebble 2.5 and later).
    """
    if validity_seconds is not None and validity_seconds <= 0:
        raise ValueError(f"validity_seconds: must be positive, got {validity_seconds}")
    home.mkdir(parents=True, exist_ok=True)
    cert_pem, key_pem = make_tls_cert()
    (home / "cert.pem").write_text(cert_pem)
    key_path = home / "key.pem"
    key_path.touch(mode=0o600)
    key_path.write_bytes(key_pem)
    port, management_port = free_port(), free_port()
    while management_port == port:
        management_port = free_port()
    settings: dict[str, Any] = {
        "listenAddress": f"127.0.0.1:{port}",
        "managementListenAddress": f"127.0.0.1:{management_port}",
        "certificate": str(home / "cert.pem"),
        "privateKey": str(key_path),
        "httpPort": 5002,
        "tlsPort": 5001,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
    }
    if validity_seconds is not None:
        settings["certificateValidityPeriod"] = validity_seconds
    settings.update(config or {})
    (home / "pebble-config.json").write_text(json.dumps({"pebble": settings}, indent=2))
    args = [binary, "-config", str(home / "pebble-config.json")]
    if dns_server:
        args += ["-dnsserver", dns_server]
    process_env = dict(os.environ)
    process_env.update(DEFAULT_ENV)
    if always_valid:
        process_env["PEBBLE_VA_ALWAYS_VALID"] = "1"
    process_env.update(env or {})
    pebble = Pebble(home, port, management_port, None, f"https://127.0.0.1:{port}/dir", cert_pem, args, process_env)
    pebble.start()
    return pebble


def _http(ca_pem: str, timeout: float = 5.0) -> httpx.Client:
    context = ssl.create_default_context(cadata=ca_pem)
    return httpx.Client(verify=context, timeout=timeout, trust_env=False)


def make_tls_cert() -> tuple[str, bytes]:
    """A self-signed P-256 certificate for localhost, 127.0.0.1 and ::1, and its key: (cert PEM, PKCS#8 key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                    x509.IPAddress(ipaddress.ip_address("::1"))]
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


@dataclass
class ChallTestSrv:
    """``pebble-challtestsrv`` as a DNS server only: TXT records set over its HTTP management port."""

    dns_address: str  # "127.0.0.1:<port>", for start_pebble(dns_server=...)
    management_port: int
    process: subprocess.Popen[bytes] | None
    log_path: Path

    def _call(self, path: str, body: Mapping[str, str]) -> None:
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            client.post(f"http://127.0.0.1:{self.management_port}{path}", json=dict(body)).raise_for_status()

    def add_txt(self, name: str, value: str) -> None:
        """Add a TXT value (several values per name add up)."""
        self._call("/set-txt", {"host": name.rstrip(".") + ".", "value": value})

    def clear_txt(self, name: str) -> None:
        self._call("/clear-txt", {"host": name.rstrip(".") + "."})

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None


def start_challtestsrv(home: Path, binary: str = "pebble-challtestsrv") -> ChallTestSrv:
    """Start the mock DNS server of Pebble's package on free loopback ports (HTTP-01 and TLS-ALPN-01 off)."""
    home.mkdir(parents=True, exist_ok=True)
    dns_port, management_port = free_port(), free_port()
    log_path = home / "challtestsrv.log"
    args = [binary, "-dns01", f"127.0.0.1:{dns_port}", "-management", f"127.0.0.1:{management_port}",
            "-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv6", ""]
    process = spawn(args, log_path, cwd=home)
    server = ChallTestSrv(f"127.0.0.1:{dns_port}", management_port, process, log_path)
    deadline = time.monotonic() + READY_WITHIN
    with httpx.Client(timeout=1.0, trust_env=False) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"pebble-challtestsrv exited with status {process.returncode}:\n{log_path.read_text()}")
            try:
                client.get(f"http://127.0.0.1:{management_port}/")
                return server
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"pebble-challtestsrv did not answer within {READY_WITHIN:.0f} s")
            time.sleep(0.02)
