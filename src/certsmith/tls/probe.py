"""A TLS probe of a monitored endpoint: one handshake, the chain as served, and OpenSSL's verdict on its trust.

The handshake verifies the chain against the trust anchors given (a PEM bundle, or the system's: ssl's default
verify paths) with OpenSSL itself, as the endpoint's clients do, but leaves the name and the validity period to
the caller (``domain/endpoints.py`` judges both, so that an expired or misnamed certificate is told as such, not
as untrusted). The chain is read from the connection: the public ``get_unverified_chain`` from Python 3.13, the
same method of the private ``SSLSocket._sslobj`` in 3.10 to 3.12, else the leaf alone. A chain that does not verify
is read from a second handshake that verifies nothing.
"""

from __future__ import annotations

import _ssl
import socket
import ssl
import time
from typing import Any

from ..domain.endpoints import Observation

__all__ = ["PROBE_TIMEOUT", "probe_tls"]

PROBE_TIMEOUT = 5.0
_NO_CHECK_TIME = 0x200000  # OpenSSL's X509_V_FLAG_NO_CHECK_TIME: validity periods are judged by the caller
_DER: int = getattr(_ssl, "ENCODING_DER", 2)  # how the private chain API is asked for DER


def _verifying(trust_pem: str | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    if trust_pem:
        context.load_verify_locations(cadata=trust_pem)
    else:
        context.load_default_certs()
    # A bundle may hold an intermediate CA only: it is an anchor as it stands.
    context.verify_flags = ssl.VerifyFlags(int(context.verify_flags) | int(ssl.VERIFY_X509_PARTIAL_CHAIN)
                                           | _NO_CHECK_TIME)
    return context


def _unverified() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _handshake(host: str, port: int, server_name: str, context: ssl.SSLContext,
               deadline: float) -> tuple[ssl.SSLSocket, float]:
    """A connected, handshaken socket and the handshake's milliseconds (the TCP connection not counted)."""
    remaining = max(0.05, deadline - time.monotonic())
    sock = socket.create_connection((host, port), timeout=remaining)
    try:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        started = time.perf_counter()
        # An IP address as server_hostname sends no SNI (Python's rule), as a client given the address does.
        tls = context.wrap_socket(sock, server_hostname=server_name)
        return tls, (time.perf_counter() - started) * 1000.0
    except BaseException:
        sock.close()
        raise


def _served_chain(tls: ssl.SSLSocket) -> tuple[bytes, ...]:
    getter: Any = getattr(tls, "get_unverified_chain", None)  # public from Python 3.13
    if getter is None:
        getter = getattr(getattr(tls, "_sslobj", None), "get_unverified_chain", None)  # private, 3.10 to 3.12
    if getter is not None:
        try:
            chain = tuple(item if isinstance(item, bytes) else item.public_bytes(_DER) for item in getter() or [])
        except (AttributeError, TypeError, ValueError, ssl.SSLError):
            chain = ()
        if chain and all(isinstance(item, bytes) for item in chain):
            return chain
    leaf = tls.getpeercert(binary_form=True)
    return (leaf,) if leaf else ()


def _error(exc: BaseException, where: str, timeout: float) -> str:
    if isinstance(exc, socket.gaierror):
        return f"{where}: the host name does not resolve ({exc.strerror or exc})"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"{where}: no answer within {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return f"{where}: connection refused"
    if isinstance(exc, ssl.SSLError):
        reason = str(exc.reason or exc.strerror or exc)
        hint = " (is it a plain-HTTP port?)" if "WRONG_VERSION_NUMBER" in reason.upper() else ""
        return f"{where}: TLS handshake failed ({reason}){hint}"
    if isinstance(exc, OSError):
        return f"{where}: {exc.strerror or exc}"
    return f"{where}: {exc}"


def probe_tls(host: str, port: int, server_name: str, trust_pem: str | None,
              timeout: float = PROBE_TIMEOUT) -> Observation:
    """Connect to ``host``:``port`` sending ``server_name`` (SNI) and report what was served; never raises for
    the endpoint's faults (they are the Observation's ``error``). ``timeout`` bounds the whole probe."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    deadline = time.monotonic() + timeout
    trust_error: str | None = None
    try:
        tls, elapsed = _handshake(host, port, server_name, _verifying(trust_pem), deadline)
    except ssl.SSLCertVerificationError as exc:
        trust_error = exc.verify_message or exc.reason or str(exc)
    except (OSError, ValueError) as exc:
        return Observation(None, error=_error(exc, where, timeout))
    else:
        with tls:
            return Observation(elapsed, _served_chain(tls), True)
    try:
        tls, elapsed = _handshake(host, port, server_name, _unverified(), deadline)
    except (OSError, ValueError) as exc:
        return Observation(None, error=_error(exc, where, timeout))
    with tls:
        return Observation(elapsed, _served_chain(tls), False, trust_error)
