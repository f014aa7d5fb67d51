"""A client that handshakes with a TLS server in a loop, on threads, while something changes what it serves.

Each handshake is a new TCP connection and a full TLS handshake with the server name given (SNI); the served
leaf's serial is recorded, and so is every failure (refused, reset, timed out, a handshake error, a chain that
does not verify against ``trust_pem``). A deployment that swaps certificates without a gap shows no failure and,
at the end, the new serial. The loop is bounded: it stops by itself after ``max_seconds`` or ``max_handshakes``.

    with HandshakeLoop("127.0.0.1", 8443, "www.example.test", trust_pem=ca_pem) as loop:
        ...  # deploy
        loop.wait_for_serial(new_serial, within=30)
    assert not loop.failures
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass

from cryptography import x509

from ..deploy.targets.base import same_serial, serial_text

__all__ = ["Failure", "HandshakeLoop", "Seen", "served_serial"]

KEPT_FAILURES = 1000
FAILURE_PAUSE = 0.01  # after a failed handshake, so a server that is down is not hammered


@dataclass(frozen=True, slots=True)
class Failure:
    """One handshake that failed: when (seconds since the loop started), on which thread, and why."""

    at: float
    thread: int
    error: str


@dataclass(frozen=True, slots=True)
class Seen:
    """A serial the server presented (colon hex, as certsmith shows it): first and last seen, and how often."""

    serial: str
    first: float
    last: float
    count: int


def _context(trust_pem: str | None, check_name: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if trust_pem:
        context.load_verify_locations(cadata=trust_pem)
        context.check_hostname = check_name
        context.verify_mode = ssl.CERT_REQUIRED
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _handshake(host: str, port: int, server_name: str, context: ssl.SSLContext, timeout: float) -> str:
    """One handshake; the served leaf's serial (colon hex). Raises OSError (ssl.SSLError included) on failure."""
    with socket.create_connection((host, port), timeout=timeout) as sock, \
            context.wrap_socket(sock, server_hostname=server_name) as tls:
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("the server presented no certificate")
    return serial_text(x509.load_der_x509_certificate(der).serial_number)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {exc.verify_message or exc.reason or exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


def served_serial(host: str, port: int, server_name: str, trust_pem: str | None = None,
                  timeout: float = 2.0) -> str | None:
    """The serial (colon hex) the server presents for ``server_name`` now, or None when no handshake succeeds."""
    try:
        return _handshake(host, port, server_name, _context(trust_pem, False), timeout)
    except (OSError, ValueError):
        return None


class HandshakeLoop:
    """``threads`` threads handshaking with ``host``:``port`` (SNI ``server_name``) until :meth:`stop`.

    ``interval`` is a pause between one thread's handshakes (0: back to back). With ``trust_pem`` the chain must
    verify against it (and the name too when ``check_name``). The counters are safe to read while it runs.
    """

    def __init__(self, host: str, port: int, server_name: str, *, threads: int = 2, trust_pem: str | None = None,
                 check_name: bool = False, timeout: float = 2.0, interval: float = 0.0, max_seconds: float = 300.0,
                 max_handshakes: int = 1_000_000) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        self.host, self.port, self.server_name = host, port, server_name
        self.threads, self.timeout, self.interval = threads, timeout, interval
        self.max_seconds, self.max_handshakes = max_seconds, max_handshakes
        self._context = _context(trust_pem, check_name)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._started = 0.0
        self._handshakes = 0
        self._failures: list[Failure] = []  # the first KEPT_FAILURES of them
        self._failed = 0
        self._seen: dict[str, Seen] = {}
        self._order: list[str] = []  # serials in the order they were first seen

    # -- control

    def start(self) -> HandshakeLoop:
        """Start the threads; returns once each has finished one handshake (or failed one), so the loop is live."""
        if self._workers:
            raise RuntimeError("the handshake loop is already running")
        self._stop.clear()
        self._started = time.monotonic()
        ready = [threading.Event() for _ in range(self.threads)]
        self._workers = [threading.Thread(target=self._run, args=(index, ready[index]), daemon=True,
                                          name=f"handshakes-{self.server_name}-{index}") for index in range(self.threads)]
        for worker in self._workers:
            worker.start()
        for event in ready:
            event.wait(self.timeout * 2 + 1)
        return self

    def stop(self) -> HandshakeLoop:
        """Stop the threads and wait for them; the counters stay readable."""
        self._stop.set()
        for worker in self._workers:
            worker.join(self.timeout * 2 + 1)
        self._workers = []
        return self

    def __enter__(self) -> HandshakeLoop:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return any(worker.is_alive() for worker in self._workers)

    # -- what was seen

    @property
    def handshakes(self) -> int:
        """Handshakes attempted so far (failed ones included)."""
        with self._lock:
            return self._handshakes

    @property
    def failures(self) -> list[Failure]:
        """The failed handshakes (the first KEPT_FAILURES of them; :attr:`failed` counts them all)."""
        with self._lock:
            return list(self._failures)

    @property
    def failed(self) -> int:
        with self._lock:
            return self._failed

    @property
    def seen(self) -> list[Seen]:
        """Every serial presented, in the order each was first seen."""
        with self._lock:
            return [self._seen[serial] for serial in self._order]

    @property
    def serials(self) -> list[str]:
        with self._lock:
            return list(self._order)

    def saw(self, serial: str | int) -> bool:
        with self._lock:
            return any(same_serial(serial, known) for known in self._order)

    def wait_for_serial(self, serial: str | int, within: float) -> None:
        """Return once a handshake has presented ``serial``; TimeoutError naming what was seen if not within time."""
        deadline = time.monotonic() + within
        while not self.saw(serial):
            if time.monotonic() > deadline or (not self.running and not self.saw(serial)):
                raise TimeoutError(f"{self.server_name} at {self.host}:{self.port} did not present serial {serial} "
                                   f"within {within:g} s; {self.summary()}")
            time.sleep(0.02)

    def summary(self) -> str:
        """A line for messages: handshakes, failures (the first few), serials seen."""
        with self._lock:
            failures = self._failures[:3]
            text = (f"{self._handshakes} handshakes, {self._failed} failed, serials seen "
                    f"{[f'{s} x{self._seen[s].count}' for s in self._order]}")
        if failures:
            text += "; first failures: " + "; ".join(f"{f.at:.3f}s {f.error}" for f in failures)
        return text

    # -- the threads

    def _run(self, index: int, ready: threading.Event) -> None:
        try:
            while not self._stop.is_set():
                if time.monotonic() - self._started > self.max_seconds:
                    return
                with self._lock:
                    if self._handshakes >= self.max_handshakes:
                        return
                    self._handshakes += 1
                self._one(index)
                ready.set()
                if self.interval:
                    self._stop.wait(self.interval)
        finally:
            ready.set()

    def _one(self, index: int) -> None:
        try:
            serial = _handshake(self.host, self.port, self.server_name, self._context, self.timeout)
        except (OSError, ValueError) as exc:
            at = time.monotonic() - self._started
            with self._lock:
                self._failed += 1
                if len(self._failures) < KEPT_FAILURES:
                    self._failures.append(Failure(at, index, _describe(exc)))
            self._stop.wait(FAILURE_PAUSE)
            return
        at = time.monotonic() - self._started
        with self._lock:
            known = self._seen.get(serial)
            if known is None:
                self._seen[serial] = Seen(serial, at, at, 1)
                self._order.append(serial)
            else:
                self._seen[serial] = Seen(serial, known.first, at, known.count + 1)

