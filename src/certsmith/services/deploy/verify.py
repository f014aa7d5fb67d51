"""Verification after a deployment: a TLS handshake with the endpoint a binding names, until it serves the serial."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from ...deploy.targets.base import same_serial, serial_text
from ...domain.endpoints import check_host, check_port, check_server_name, is_ip
from ...domain.errors import ValidationError
from ...tls.probe import probe_tls

__all__ = ["Endpoint", "Verdict", "check_verify", "leaf_name", "verify_all", "verify_one"]

PROBE_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    server_name: str

    @classmethod
    def of(cls, stored: dict[str, Any]) -> Endpoint:
        return cls(str(stored["Host"]), int(stored["Port"]), str(stored.get("ServerName") or stored["Host"]))

    def __str__(self) -> str:
        where = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        return where if self.server_name == self.host else f"{where} (server name {self.server_name})"


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the endpoint served ``expected``; ``served`` what it served last, ``error`` why not."""

    ok: bool
    served: str | None
    error: str | None


def check_verify(verify: dict[str, Any] | None, domain_name: str | None = None) -> dict[str, Any] | None:
    """The Verify of a binding as stored: Host, Port (default 443), ServerName; ValidationError.

    ServerName defaults to the host, or to the certificate's ``domain_name`` when the host is an IP address (TLS
    sends no IP address as the server name); a wildcard domain name cannot be sent, so it must then be given."""
    if not verify:
        return None
    if not isinstance(verify.get("Host"), str):
        raise ValidationError("Verify.Host is required: the host (or IP address) that serves the certificate",
                              field="Verify.Host")
    host = check_host(verify["Host"], "Verify.Host")
    port = check_port(verify["Port"] if verify.get("Port") is not None else 443, "Verify.Port")
    if verify.get("ServerName"):
        server_name = check_server_name(verify["ServerName"], "Verify.ServerName")
    elif is_ip(host) and domain_name:
        if domain_name.startswith("*."):
            raise ValidationError(f"give Verify.ServerName: the certificate is a wildcard ({domain_name}) and Verify.Host "
                                  f"{host} is an IP address, which TLS does not send as a server name (a name it "
                                  f"covers, such as www.{domain_name[2:]})", field="Verify.ServerName")
        server_name = check_server_name(domain_name, "Verify.ServerName")
    else:
        server_name = host
    return {"Host": host, "Port": port, "ServerName": server_name}


def _served(chain: Sequence[bytes]) -> tuple[str | None, str]:
    """The leaf's serial and, to tell which site answered, " (CN=...)" or " (DNS:...)" (its first SAN)."""
    if not chain:
        return None, ""
    try:
        leaf = x509.load_der_x509_certificate(chain[0])
    except ValueError:
        return None, ""
    return serial_text(leaf.serial_number), leaf_name(leaf)


def leaf_name(leaf: x509.Certificate) -> str:
    """Which site a certificate is for: ' (CN=...)', else its first SAN (' (DNS:...)', ' (IP:...)'), else ''."""
    try:
        names = leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        if names and isinstance(names[0].value, str) and names[0].value:
            return f" (CN={names[0].value[:128]})"
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return ""
    for san in sans:
        if isinstance(san, x509.DNSName):
            return f" (DNS:{san.value[:253]})"
        if isinstance(san, x509.IPAddress):
            return f" (IP:{san.value})"
    return ""


def _shown(serial: str) -> str:
    try:
        return serial_text(int(serial.replace(":", "").strip(), 16))
    except ValueError:
        return serial


def _without_where(text: str, endpoint: Endpoint) -> str:
    """The probe's error without the host and port it starts with (the message names them once)."""
    where = f"[{endpoint.host}]:{endpoint.port}" if ":" in endpoint.host else f"{endpoint.host}:{endpoint.port}"
    return text.removeprefix(f"{where}: ") or text


def verify_one(endpoint: Endpoint, expected: str, attempts: int, delay: float, *,
               sleep: Callable[[float], None] = time.sleep, timeout: float = PROBE_TIMEOUT) -> Verdict:
    """Handshake up to ``attempts`` times, ``delay`` seconds apart, until the leaf's serial is ``expected``."""
    served: str | None = None
    error: str | None = None
    for attempt in range(max(1, attempts)):
        if attempt:
            sleep(delay)
        observation = probe_tls(endpoint.host, endpoint.port, endpoint.server_name, None, timeout)
        if observation.error is not None:
            error = f"{endpoint} could not be reached: {_without_where(observation.error, endpoint)}"
            continue
        served, named = _served(observation.chain)
        if same_serial(served, expected):
            return Verdict(True, served, None)
        error = f"{endpoint} served serial {served or 'none'}{named}, expected {_shown(expected)}"
    return Verdict(False, served, error)


def verify_all(checks: Sequence[tuple[Endpoint, str]], attempts: int, delay: float, parallel: int) -> list[Verdict]:
    """:func:`verify_one` for each (endpoint, expected serial), several at once."""
    if not checks:
        return []
    if len(checks) == 1:
        return [verify_one(checks[0][0], checks[0][1], attempts, delay)]
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(checks)))) as pool:
        return list(pool.map(lambda check: verify_one(check[0], check[1], attempts, delay), checks))
