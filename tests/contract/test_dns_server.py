"""The validation DNS server on real sockets (127.0.0.1, a free port), asked by dig and by dnspython over UDP and TCP."""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from certsmith.dns.server import ValidationDnsServer

from ..conftest import need_binary

ZONE = "acme.test"
OWNER = "abc.acme.test"


class Records:
    """What `load` returns, changed by the tests; it can be made to fail."""

    def __init__(self, txt: Mapping[str, Sequence[str]]) -> None:
        self.txt = {owner: list(values) for owner, values in txt.items()}
        self.failing = False
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> Mapping[str, Sequence[str]]:
        with self._lock:
            self.calls += 1
            if self.failing:
                raise ConnectionError("database unavailable")
            return {owner: list(values) for owner, values in self.txt.items()}


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


@pytest.fixture
def records() -> Records:
    return Records({OWNER: ["value-one", "value-two"], "many.acme.test": [f"{i:03d}" + "v" * 40 for i in range(60)]})


@pytest.fixture
def server(records: Records) -> Iterator[ValidationDnsServer]:
    srv = ValidationDnsServer(ZONE, "127.0.0.1", 0, records, refresh_seconds=3600.0)  # only poke() reloads
    srv.start()
    yield srv
    srv.stop()


def dig(server: ValidationDnsServer, *args: str) -> str:
    run = subprocess.run([need_binary("dig"), "-p", str(server.port), "@127.0.0.1", "+time=2", "+tries=1", *args],
                         capture_output=True, text=True, timeout=20)
    return run.stdout


def query(server: ValidationDnsServer, name: str, rdtype: str = "TXT", *, tcp: bool = False,
          **args: object) -> dns.message.Message:
    message = dns.message.make_query(name, rdtype, **args)  # type: ignore[arg-type]
    if tcp:
        return dns.query.tcp(message, "127.0.0.1", port=server.port, timeout=5)
    return dns.query.udp(message, "127.0.0.1", port=server.port, timeout=5)


def values(response: dns.message.Message) -> set[str]:
    return {b"".join(rd.strings).decode() for rrset in response.answer for rd in rrset}


def test_dig_over_udp_and_tcp(server: ValidationDnsServer) -> None:
    for transport in ("+notcp", "+tcp"):
        assert sorted(dig(server, transport, "+short", OWNER, "TXT").split()) == ['"value-one"', '"value-two"']
        soa = dig(server, transport, ZONE, "SOA")
        assert "status: NOERROR" in soa and "flags: qr aa" in soa and "hostmaster.acme.test." in soa
        assert "status: NXDOMAIN" in dig(server, transport, "nothing.acme.test", "TXT")
        assert "status: REFUSED" in dig(server, transport, "example.com", "A")
        assert "status: REFUSED" in dig(server, transport, "version.bind", "CH", "TXT")


def test_dig_sees_the_question_as_asked(server: ValidationDnsServer) -> None:
    out = dig(server, "AbC.AcMe.TeSt", "TXT")
    assert ";AbC.AcMe.TeSt.\t" in out and "WARNING" not in out.replace("WARNING: recursion requested", "")
    assert '"value-one"' in out


def test_dig_falls_back_to_tcp_when_truncated(server: ValidationDnsServer) -> None:
    out = dig(server, "+noedns", "many.acme.test", "TXT")
    assert "Truncated, retrying in TCP mode" in out and out.count("\tTXT\t") == 60
    assert len(dig(server, "+ignore", "+noedns", "+short", "many.acme.test", "TXT").split()) == 0


def test_dnspython_over_udp_and_tcp(server: ValidationDnsServer) -> None:
    for tcp in (False, True):
        response = query(server, OWNER, tcp=tcp)
        assert response.flags & dns.flags.AA and values(response) == {"value-one", "value-two"}
        assert query(server, ZONE, "NS", tcp=tcp).answer[0][0].target.to_text() == "ns.acme.test."
    truncated = query(server, "many.acme.test", use_edns=0, payload=1232)
    assert truncated.flags & dns.flags.TC
    assert len(values(query(server, "many.acme.test", tcp=True))) == 60
    response, used_tcp = dns.query.udp_with_fallback(dns.message.make_query("many.acme.test", "TXT"), "127.0.0.1",
                                                     port=server.port, timeout=5)
    assert used_tcp and len(values(response)) == 60


def test_several_queries_on_one_tcp_connection(server: ValidationDnsServer) -> None:
    queries = [dns.message.make_query(name, "TXT") for name in (OWNER, "nothing.acme.test", OWNER)]
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"".join(q.to_wire(prepend_length=True) for q in queries))  # pipelined
        answers = [read_framed(sock) for _ in queries]
        sock.sendall(queries[0].to_wire(prepend_length=True)[:5])  # a query in two pieces
        time.sleep(0.05)
        sock.sendall(queries[0].to_wire(prepend_length=True)[5:])
        answers.append(read_framed(sock))
    assert [a.id for a in answers] == [q.id for q in queries] + [queries[0].id]
    assert [a.rcode() for a in answers] == [dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.NOERROR, dns.rcode.NOERROR]


def read_framed(sock: socket.socket) -> dns.message.Message:
    def exactly(count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = sock.recv(count - len(data))
            assert chunk, "the server closed the connection"
            data += chunk
        return data

    return dns.message.from_wire(exactly(int.from_bytes(exactly(2), "big")))


def test_a_half_closed_connection_still_gets_its_answer(server: ValidationDnsServer) -> None:
    q = dns.message.make_query(OWNER, "TXT")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(q.to_wire(prepend_length=True))
        sock.shutdown(socket.SHUT_WR)
        assert values(read_framed(sock)) == {"value-one", "value-two"}
        assert sock.recv(10) == b""  # then the server closes


def test_poke_makes_a_new_value_visible_at_once(server: ValidationDnsServer, records: Records) -> None:
    records.txt["new.acme.test"] = ["fresh"]
    assert not server.wait_serving("new.acme.test", "fresh", 0.3)  # no refresh for an hour: not yet
    serial = query(server, ZONE, "SOA").answer[0][0].serial
    server.poke()
    assert server.wait_serving("New.Acme.Test.", "fresh", 5.0)
    assert values(query(server, "new.acme.test")) == {"fresh"}
    assert query(server, ZONE, "SOA").answer[0][0].serial == serial + 1  # the serial follows changes
    server.poke()
    assert eventually(lambda: records.calls >= 3)
    assert query(server, ZONE, "SOA").answer[0][0].serial == serial + 1  # and only changes
    del records.txt["new.acme.test"]
    server.poke()
    assert eventually(lambda: query(server, "new.acme.test").rcode() == dns.rcode.NXDOMAIN)


def test_content_is_refreshed_without_poke(records: Records) -> None:
    srv = ValidationDnsServer(ZONE, "127.0.0.1", 0, records, refresh_seconds=0.05)
    srv.start()
    try:
        records.txt[OWNER].append("later")
        assert srv.wait_serving(OWNER, "later", 5.0)
        assert "later" in values(query(srv, OWNER))
    finally:
        srv.stop()


def test_a_failing_load_keeps_the_last_content_and_warns_once(server: ValidationDnsServer, records: Records,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="certsmith.dns")
    records.failing = True
    records.txt[OWNER] = ["changed"]
    for _ in range(5):
        calls = records.calls
        server.poke()
        assert eventually(lambda calls=calls: records.calls > calls)  # type: ignore[misc]
    assert values(query(server, OWNER)) == {"value-one", "value-two"}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ConnectionError: database unavailable" in warnings[0].getMessage()
    records.failing = False
    server.poke()
    assert server.wait_serving(OWNER, "changed", 5.0) and values(query(server, OWNER)) == {"changed"}
    assert any("works again" in r.getMessage() for r in caplog.records)


def test_a_load_failing_at_start_serves_an_empty_zone(records: Records, caplog: pytest.LogCaptureFixture) -> None:
    records.failing = True
    srv = ValidationDnsServer(ZONE, "127.0.0.1", 0, records, refresh_seconds=0.05)
    srv.start()
    try:
        assert query(srv, OWNER).rcode() == dns.rcode.NXDOMAIN and query(srv, ZONE, "SOA").answer
        records.failing = False
        assert srv.wait_serving(OWNER, "value-one", 5.0)
    finally:
        srv.stop()
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 1


def test_stop_frees_the_port_and_ends_the_threads(records: Records) -> None:
    srv = ValidationDnsServer(ZONE, "127.0.0.1", 0, records)
    srv.start()
    port = srv.port
    with socket.create_connection(("127.0.0.1", port), timeout=5):  # an open connection does not keep it
        query(srv, OWNER)
        srv.stop()
    assert not srv.threads_alive()
    assert not [t for t in threading.enumerate() if t.name.startswith("certsmith-dns") and t.is_alive()]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        udp.bind(("127.0.0.1", port))
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind(("127.0.0.1", port))
        tcp.listen()
    again = ValidationDnsServer(ZONE, "127.0.0.1", port, records)
    again.start()
    try:
        assert again.port == port and values(query(again, OWNER, tcp=True)) == {"value-one", "value-two"}
    finally:
        again.stop()


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM])
def test_a_taken_port_is_an_oserror_naming_it(records: Records, kind: int) -> None:
    with socket.socket(socket.AF_INET, kind) as taken:
        taken.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            taken.listen()
        port = taken.getsockname()[1]
        srv = ValidationDnsServer(ZONE, "127.0.0.1", port, records)
        with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            srv.start()
    with pytest.raises(OSError, match=r"no-such-host\.invalid:53"):
        ValidationDnsServer(ZONE, "no-such-host.invalid", 53, records).start()


def test_ipv6_loopback(records: Records) -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    srv = ValidationDnsServer(ZONE, "::1", 0, records)
    srv.start()
    try:
        for tcp in (False, True):
            message = dns.message.make_query(OWNER, "TXT")
            ask = dns.query.tcp if tcp else dns.query.udp
            assert values(ask(message, "::1", port=srv.port, timeout=5)) == {"value-one", "value-two"}
    finally:
        srv.stop()


def test_idle_tcp_connections_are_closed(records: Records) -> None:
    srv = ValidationDnsServer(ZONE, "127.0.0.1", 0, records, tcp_idle_seconds=0.3)
    srv.start()
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
            started = time.monotonic()
            sock.sendall(b"\x00")  # half a length prefix, then nothing
            assert sock.recv(10) == b""
            assert 0.25 < time.monotonic() - started < 3.0
    finally:
        srv.stop()


def test_connections_over_the_cap_are_closed(records: Records) -> None:
    srv = ValidationDnsServer(ZONE, "127.0.0.1", 0, records, max_tcp_connections=4)
    srv.start()
    held = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(4)]
    try:
        q = dns.message.make_query(OWNER, "TXT")
        for sock in held:
            sock.sendall(q.to_wire(prepend_length=True))
            assert read_framed(sock).id == q.id
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as extra:
            try:
                extra.sendall(q.to_wire(prepend_length=True))
                assert extra.recv(10) == b""
            except ConnectionResetError:
                pass
        held.pop().close()

        def a_new_connection_is_served() -> bool:
            try:
                return values(query(srv, OWNER, tcp=True)) == {"value-one", "value-two"}
            except (OSError, EOFError):
                return False

        assert eventually(a_new_connection_is_served)
        assert values(query(srv, OWNER)) == {"value-one", "value-two"}  # UDP is not affected by the cap
    finally:
        for sock in held:
            sock.close()
        srv.stop()


def test_wait_serving_times_out(server: ValidationDnsServer) -> None:
    started = time.monotonic()
    assert not server.wait_serving(OWNER, "never", 0.2)
    assert 0.15 < time.monotonic() - started < 2.0
    assert server.wait_serving(OWNER, "value-one", 0)


def test_alike_queries_get_their_own_ids_and_fresh_content(server: ValidationDnsServer, records: Records) -> None:
    wire = bytearray(dns.message.make_query(OWNER, "TXT").to_wire())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        for qid in (1, 2, 65535, 2):
            wire[:2] = qid.to_bytes(2, "big")
            sock.sendto(bytes(wire), ("127.0.0.1", server.port))
            reply = dns.message.from_wire(sock.recv(2048))
            assert reply.id == qid and values(reply) == {"value-one", "value-two"}
        records.txt[OWNER] = ["replaced"]
        server.poke()
        assert server.wait_serving(OWNER, "replaced", 5.0)
        sock.sendto(bytes(wire), ("127.0.0.1", server.port))
        assert values(dns.message.from_wire(sock.recv(2048))) == {"replaced"}
