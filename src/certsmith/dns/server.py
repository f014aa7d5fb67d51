"""The validation zone's authoritative DNS server: UDP and TCP on one port, in daemon threads, content in memory.

Three threads: one reads UDP and answers inline (answers are small and come from memory); one serves TCP
connections through a selector (2-byte length framing, several queries per connection, an idle timeout, a cap on
connections and on message size); one reloads the content from `load` (the database) every `refresh_seconds`,
at once after `poke()`. No asyncio loop: it runs beside uvicorn's without touching it.
"""

from __future__ import annotations

import errno
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from certsmith.dns.zone import ZoneContent, answer, normalise_name

__all__ = ["ValidationDnsServer"]

log = logging.getLogger("certsmith.dns")

MAX_TCP_CONNECTIONS = 64
TCP_IDLE_SECONDS = 10.0
MAX_TCP_MESSAGE = 16384  # a query is a few hundred bytes; longer ones close the connection
_OUTPUT_HIGH_WATER = 65536  # stop reading a connection whose answers are not being read
_UDP_BATCH = 256


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class _Connection:
    sock: socket.socket
    last_active: float
    inbox: bytearray = field(default_factory=bytearray)
    outbox: bytearray = field(default_factory=bytearray)
    eof: bool = False


class _AnswerCache:
    """Answers by query bytes without the id, for the content they were made from: a flood of alike queries is
    answered without parsing each. Small queries only; emptied when full or when the content changes."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._content: ZoneContent | None = None
        self._answers: dict[bytes, bytes | None] = {}

    def answer(self, wire: bytes, content: ZoneContent, transport: str) -> bytes | None:
        if len(wire) < 12 or len(wire) > 512:
            return answer(wire, content, transport=transport)
        if content is not self._content or len(self._answers) >= self._size:
            self._content, self._answers = content, {}
        key = wire[2:]
        if key in self._answers:
            reply = self._answers[key]
            return None if reply is None else wire[:2] + reply[2:]
        reply = answer(wire, content, transport=transport)
        if reply is None or len(reply) <= 2048:  # large answers (over TCP) are not kept
            self._answers[key] = reply
        return reply


class _RateLimitedLog:
    """Logs an unexpected failure at most once a minute, with how many were not logged."""

    def __init__(self) -> None:
        self._next = 0.0
        self._skipped = 0

    def __call__(self, what: str, error: BaseException) -> None:
        now = time.monotonic()
        if now < self._next:
            self._skipped += 1
            return
        log.error("validation DNS: %s failed (%d similar failures not logged)", what, self._skipped, exc_info=error)
        self._next, self._skipped = now + 60.0, 0


class ValidationDnsServer:
    """Authoritative DNS for the validation zone; TXT values come from `load` (owner name -> values)."""

    def __init__(self, zone: str, host: str, port: int, load: Callable[[], Mapping[str, Sequence[str]]], *,
                 refresh_seconds: float = 0.25, nameservers: Sequence[str] = (),
                 addresses: Mapping[str, Sequence[str]] | None = None,
                 max_tcp_connections: int = MAX_TCP_CONNECTIONS, tcp_idle_seconds: float = TCP_IDLE_SECONDS) -> None:
        self._host, self._requested_port, self._load = host, port, load
        self._refresh = refresh_seconds
        self._nameservers = tuple(nameservers)
        self._addresses = {owner: tuple(ips) for owner, ips in (addresses or {}).items()}
        self._max_connections, self._idle = max_tcp_connections, tcp_idle_seconds
        self._content = ZoneContent(zone, {}, self._nameservers, int(time.time()) & 0xFFFFFFFF, self._addresses)
        self._changed = threading.Condition()
        self._poked = threading.Event()
        self._stopping = threading.Event()
        self._failing = False
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._wake_r: socket.socket | None = None  # written by stop() to wake the serving threads
        self._wake_w: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._port = 0
        self._report = _RateLimitedLog()
        self._udp_answers, self._tcp_answers = _AnswerCache(), _AnswerCache()

    @property
    def port(self) -> int:
        """The port both protocols are bound to (known after start)."""
        return self._port

    @property
    def content(self) -> ZoneContent:
        """The content being served."""
        return self._content

    def start(self) -> None:
        """Binds UDP and TCP, reads the content once and starts serving; OSError naming host:port if it cannot bind."""
        if self._threads:
            raise RuntimeError("the validation DNS server is already started")
        self._udp, self._tcp = self._bind()
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping.clear()
        self._port = int(self._udp.getsockname()[1])
        self._reload()
        for name, target in (("udp", self._serve_udp), ("tcp", self._serve_tcp), ("reload", self._reload_loop)):
            thread = threading.Thread(target=target, name=f"certsmith-dns-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("validation DNS server for %s listening on %s (UDP and TCP)", self._content.zone,
                 _host_port(self._host, self._port))

    def poke(self) -> None:
        """Reads the content again now (in the reload thread); `wait_serving` tells when a value is served."""
        self._poked.set()

    def wait_serving(self, owner: str, value: str, timeout: float) -> bool:
        """True once the content served has `value` among the TXT values at `owner`; False after `timeout` seconds."""
        owner = normalise_name(owner)
        deadline = time.monotonic() + timeout
        with self._changed:
            while value not in self._content.txt.get(owner, ()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    def stop(self) -> None:
        """Stops serving: the threads are joined and both sockets closed (the port is free again)."""
        self._stopping.set()
        self._poked.set()
        if self._wake_w is not None:
            try:
                self._wake_w.send(b"x")
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=10.0)
            if thread.is_alive():
                log.warning("validation DNS: thread %s did not stop within 10 s", thread.name)
        self._threads = []
        for sock in (self._udp, self._tcp, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._udp = self._tcp = self._wake_r = self._wake_w = None

    def threads_alive(self) -> bool:
        """True while every serving thread runs."""
        return bool(self._threads) and all(thread.is_alive() for thread in self._threads)

    # -- binding

    def _bind(self) -> tuple[socket.socket, socket.socket]:
        where = _host_port(self._host, self._requested_port)
        try:
            infos = socket.getaddrinfo(self._host, self._requested_port, type=socket.SOCK_DGRAM,
                                       flags=socket.AI_PASSIVE | socket.AI_NUMERICSERV)
        except OSError as error:
            raise OSError(error.errno, f"cannot bind the validation DNS server to {where}: {error.strerror}") from error
        family, address = infos[0][0], infos[0][4]
        attempts = 20 if self._requested_port == 0 else 1
        for attempt in range(attempts):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # room for bursts (the system may cap it)
            try:
                udp.bind(address)
            except OSError as error:
                udp.close()
                raise OSError(error.errno, f"cannot bind the validation DNS server to {where} (UDP): "
                                           f"{error.strerror}") from error
            port = int(udp.getsockname()[1])
            tcp = socket.socket(family, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((address[0], port, *address[2:]))
                tcp.listen(128)
            except OSError as error:
                tcp.close()
                udp.close()
                if error.errno == errno.EADDRINUSE and attempt + 1 < attempts:
                    continue  # port 0: UDP's free port is taken over TCP; another one
                raise OSError(error.errno, f"cannot bind the validation DNS server to {_host_port(self._host, port)} "
                                           f"(TCP): {error.strerror}") from error
            udp.setblocking(False)
            tcp.setblocking(False)
            return udp, tcp
        raise AssertionError("unreachable")  # pragma: no cover

    # -- content

    def _reload(self) -> None:
        current = self._content
        try:
            txt = {owner: (values,) if isinstance(values, str) else tuple(values) for owner, values in self._load().items()}
            content = ZoneContent(current.zone, txt, self._nameservers, current.serial, self._addresses)
            if content.txt != current.txt:
                content = ZoneContent(current.zone, txt, self._nameservers, (current.serial + 1) & 0xFFFFFFFF,
                                      self._addresses)
        except Exception as error:  # noqa: BLE001 - e.g. the database is away: the last content is served meanwhile
            if not self._failing:
                log.warning("validation DNS: reading the challenge records failed, serving the last ones until it works "
                            "again: %s: %s", type(error).__name__, error)
            self._failing = True
            return
        if self._failing:
            log.info("validation DNS: reading the challenge records works again")
        self._failing = False
        with self._changed:
            self._content = content
            self._changed.notify_all()

    def _reload_loop(self) -> None:
        while not self._stopping.is_set():
            self._poked.wait(self._refresh)
            if self._stopping.is_set():
                return
            self._poked.clear()
            self._reload()

    # -- UDP

    def _serve_udp(self) -> None:
        udp, waker = self._udp, self._wake_r
        assert udp is not None and waker is not None
        with selectors.DefaultSelector() as selector:
            selector.register(udp, selectors.EVENT_READ)
            selector.register(waker, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is udp:
                        self._drain_udp(udp)

    def _drain_udp(self, udp: socket.socket) -> None:
        for _ in range(_UDP_BATCH):
            try:
                data, peer = udp.recvfrom(65535)
            except OSError:  # BlockingIOError: nothing more to read; others: try again at the next event
                return
            try:
                reply = self._udp_answers.answer(data, self._content, "udp")
                if reply is not None:
                    udp.sendto(reply, peer)
            except OSError:
                pass  # the peer is gone or the send buffer is full: UDP drops it
            except Exception as error:  # noqa: BLE001 - one packet must not stop the server
                self._report("answering a UDP query", error)

    # -- TCP

    def _serve_tcp(self) -> None:
        listener, waker = self._tcp, self._wake_r
        assert listener is not None and waker is not None
        connections: dict[socket.socket, _Connection] = {}
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(waker, selectors.EVENT_READ)
            try:
                while not self._stopping.is_set():
                    for key, events in selector.select(timeout=min(1.0, self._idle / 4)):
                        if key.fileobj is listener:
                            self._accept(listener, selector, connections)
                        elif key.data is not None:
                            self._service(key.data, events, selector, connections)
                    self._close_idle(selector, connections)
            finally:
                for conn in list(connections.values()):
                    self._close(conn, selector, connections)

    def _accept(self, listener: socket.socket, selector: selectors.BaseSelector,
                connections: dict[socket.socket, _Connection]) -> None:
        for _ in range(self._max_connections):
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # e.g. out of file descriptors: the listener stays readable, so pause a little
                self._report("accepting a TCP connection", error)
                time.sleep(0.05)
                return
            if len(connections) >= self._max_connections:
                sock.close()  # over the cap: refused by closing
                continue
            sock.setblocking(False)
            conn = _Connection(sock, time.monotonic())
            connections[sock] = conn
            selector.register(sock, selectors.EVENT_READ, conn)

    def _service(self, conn: _Connection, events: int, selector: selectors.BaseSelector,
                 connections: dict[socket.socket, _Connection]) -> None:
        try:
            if events & selectors.EVENT_READ:
                self._read(conn)
            self._write(conn)
        except OSError:
            self._close(conn, selector, connections)
            return
        except Exception as error:  # noqa: BLE001 - one connection must not stop the server
            self._report("serving a TCP connection", error)
            self._close(conn, selector, connections)
            return
        if conn.sock not in connections:
            return
        if conn.eof and not conn.outbox:
            self._close(conn, selector, connections)
            return
        wanted = 0 if conn.eof or len(conn.outbox) > _OUTPUT_HIGH_WATER else selectors.EVENT_READ
        if conn.outbox:
            wanted |= selectors.EVENT_WRITE
        if wanted != selector.get_key(conn.sock).events:
            selector.modify(conn.sock, wanted, conn)

    def _read(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        conn.last_active = time.monotonic()
        if not data:
            conn.eof = True  # half-closed: the answers already due are still sent
            return
        conn.inbox += data
        while len(conn.inbox) >= 2:
            length = int.from_bytes(conn.inbox[:2], "big")
            if length == 0 or length > MAX_TCP_MESSAGE:
                raise ConnectionError(f"a TCP message of {length} bytes")  # closes the connection
            if len(conn.inbox) < 2 + length:
                return
            message = bytes(conn.inbox[2:2 + length])
            del conn.inbox[:2 + length]
            reply = self._tcp_answers.answer(message, self._content, "tcp")
            if reply is not None:
                conn.outbox += len(reply).to_bytes(2, "big") + reply

    def _write(self, conn: _Connection) -> None:
        if not conn.outbox:
            return
        try:
            sent = conn.sock.send(conn.outbox)
        except BlockingIOError:
            return
        if sent:
            del conn.outbox[:sent]
            conn.last_active = time.monotonic()

    def _close_idle(self, selector: selectors.BaseSelector, connections: dict[socket.socket, _Connection]) -> None:
        cutoff = time.monotonic() - self._idle
        for conn in [conn for conn in connections.values() if conn.last_active < cutoff]:
            self._close(conn, selector, connections)

    @staticmethod
    def _close(conn: _Connection, selector: selectors.BaseSelector,
               connections: dict[socket.socket, _Connection]) -> None:
        connections.pop(conn.sock, None)
        try:
            selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
