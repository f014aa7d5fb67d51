"""The BIND test peer: signed RFC 2136 updates through `nsupdate`, and a CNAME into a forwarded zone
answered together with the forwarder's TXT records in one response (what an ACME server reading a
single answer needs).

The forwarded zone ``acme.test`` is served by a small dnspython server (UDP and TCP) started here.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import dns.update
import pytest

from certsmith.testing.bind import Bind, free_dns_port, start_bind

from ..conftest import need_binary


def stub_records(apex: str) -> dict[tuple[dns.name.Name, dns.rdatatype.RdataType], str]:
    """The stub's zone: SOA and NS at the apex, the NS's address, and TXT "hello" at x1.<apex>."""
    return {
        (dns.name.from_text(apex), dns.rdatatype.SOA): f"ns.{apex} hostmaster.{apex} 1 60 60 3600 60",
        (dns.name.from_text(apex), dns.rdatatype.NS): f"ns.{apex}",
        (dns.name.from_text(f"ns.{apex}"), dns.rdatatype.A): "127.0.0.1",
        (dns.name.from_text(f"x1.{apex}"), dns.rdatatype.TXT): '"hello"',
    }


def untimed(lines: Iterable[str]) -> list[str]:
    """Answer lines without their TTLs (BIND caches the forwarder's records for at most 1 s, so it counts down)."""
    return [" ".join(part for index, part in enumerate(line.split(" ")) if index != 1) for line in lines]


def stub_answer(wire: bytes, apex: str, asked: list[str]) -> bytes:
    """The stub's authoritative answer to one query for its zone."""
    records = stub_records(apex)
    query = dns.message.from_wire(wire)
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    question = query.question[0]
    asked.append(f"{question.name} {dns.rdatatype.to_text(question.rdtype)}")
    rdata = records.get((question.name, question.rdtype))
    if rdata is not None:
        response.answer.append(dns.rrset.from_text(question.name, 60, "IN", question.rdtype, rdata))
    else:
        if not any(name == question.name for name, _ in records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        soa = records[(dns.name.from_text(apex), dns.rdatatype.SOA)]
        response.authority.append(dns.rrset.from_text(apex, 60, "IN", "SOA", soa))
    return response.to_wire()


class StubDns:
    """A tiny authoritative server for ``apex`` on 127.0.0.1:<port>, UDP and TCP; records the questions it got."""

    def __init__(self, apex: str = "acme.test.") -> None:
        self.port = free_dns_port()
        self.asked: list[str] = []
        asked = self.asked

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                sock.sendto(stub_answer(data, apex, asked), self.client_address)

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while len(head := self.rfile.read(2)) == 2:
                    reply = stub_answer(self.rfile.read(struct.unpack("!H", head)[0]), apex, asked)
                    self.wfile.write(struct.pack("!H", len(reply)) + reply)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.servers: list[socketserver.BaseServer] = [
            socketserver.ThreadingUDPServer(("127.0.0.1", self.port), Udp),
            socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Tcp),
        ]
        for server in self.servers:
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def stub() -> Iterator[StubDns]:
    server = StubDns()
    yield server
    server.close()


@pytest.fixture(scope="module")
def bind(tmp_path_factory: pytest.TempPathFactory, stub: StubDns) -> Iterator[Bind]:
    need_binary("named")
    need_binary("nsupdate")
    need_binary("tsig-keygen")
    started = time.monotonic()
    running = start_bind(tmp_path_factory.mktemp("bind"), zones=("example.test",),
                         forwards={"acme.test": ("127.0.0.1", stub.port)})
    assert time.monotonic() - started < 5, "BIND took too long to start"
    yield running
    running.stop()


def test_the_stub_answers_on_its_own(stub: StubDns) -> None:
    answer = dns.query.tcp(dns.message.make_query("x1.acme.test.", "TXT"), "127.0.0.1", port=stub.port, timeout=2)
    assert [rrset.to_text() for rrset in answer.answer] == ['x1.acme.test. 60 IN TXT "hello"']


def test_a_cname_into_the_forwarded_zone_comes_back_with_its_txt_in_one_answer(bind: Bind, stub: StubDns) -> None:
    bind.set_cname("_acme-challenge.example.test", "x1.acme.test")
    bind.wait_visible("_acme-challenge.example.test", "CNAME", "x1.acme.test.")

    response = bind.query_message("_acme-challenge.example.test", "TXT")  # one UDP query, as an ACME server sends
    assert response.rcode() == dns.rcode.NOERROR
    assert untimed(line for rrset in response.answer for line in rrset.to_text().splitlines()) == [
        "_acme-challenge.example.test. IN CNAME x1.acme.test.",
        'x1.acme.test. IN TXT "hello"',
    ]
    assert "x1.acme.test. TXT" in stub.asked, "BIND answered without asking the forwarder"
    assert bind.query("_acme-challenge.example.test", "TXT")[-1].endswith('IN TXT "hello"')


def test_set_cname_replaces_and_delete_removes(bind: Bind) -> None:
    name = "_acme-challenge.www.example.test"
    bind.set_cname(name, "old.acme.test")
    bind.set_cname(name, "x1.acme.test.", zone="example.test")
    bind.wait_visible(name, "CNAME", "X1.acme.test")
    assert bind.query(name, "CNAME") == [f"{name}. 60 IN CNAME x1.acme.test."]
    assert untimed(bind.query(name, "TXT")) == [f"{name}. IN CNAME x1.acme.test.", 'x1.acme.test. IN TXT "hello"']
    bind.delete(name, "CNAME")
    response = bind.query_message(name, "CNAME")
    assert response.answer == []
    assert response.rcode() == dns.rcode.NOERROR  # the wildcard * A record still covers the name


def test_the_user_zone_has_its_records(bind: Bind) -> None:
    assert bind.query("example.test", "A") == ["example.test. 60 IN A 127.0.0.1"]
    assert bind.query("anything.example.test", "A") == ["anything.example.test. 60 IN A 127.0.0.1"]
    assert bind.query("ns1.example.test", "A") == ["ns1.example.test. 60 IN A 127.0.0.1"]
    assert bind.query("example.test", "NS") == ["example.test. 60 IN NS ns1.example.test."]
    assert bind.query("nowhere.invalid", "A") == []  # answered from the local root zone, never from outside


def test_an_unsigned_update_is_refused(bind: Bind) -> None:
    update = dns.update.UpdateMessage("example.test")
    update.replace("evil", 60, "TXT", '"x"')
    response = dns.query.tcp(update, "127.0.0.1", port=bind.port, timeout=5)
    assert response.rcode() == dns.rcode.REFUSED
    assert bind.query("evil.example.test", "TXT") == []


def test_an_update_signed_with_the_key_from_the_peer_is_accepted(bind: Bind) -> None:
    keyring = dns.tsigkeyring.from_text({bind.tsig_name: ("hmac-sha256", bind.tsig_secret)})
    update = dns.update.UpdateMessage("example.test", keyring=keyring, keyalgorithm=dns.tsig.HMAC_SHA256)
    update.replace("signed", 60, "TXT", '"ok"')
    assert dns.query.tcp(update, "127.0.0.1", port=bind.port, timeout=5).rcode() == dns.rcode.NOERROR
    bind.wait_visible("signed.example.test", "TXT", "ok")


def test_a_failed_nsupdate_raises_with_its_output(bind: Bind) -> None:
    with pytest.raises(RuntimeError, match=r"nsupdate to zone acme\.test failed.*(NOTAUTH|REFUSED)"):
        bind.update("acme.test", ["update add y.acme.test. 60 IN TXT \"no\""])
    with pytest.raises(ValueError, match="in none of BIND's zones"):
        bind.set_cname("_acme-challenge.other.test", "x1.acme.test")
    with pytest.raises(ValueError, match="single line"):
        bind.update("example.test", ["update add a.example.test. 60 IN TXT \"x\"\nsend"])


def test_caa_records_are_set_and_read_back(bind: Bind) -> None:
    records = [(0, "issue", "certsmith.test"), (0, "issuewild", ";"), (128, "iodef", "mailto:sec@example.test")]
    bind.set_caa("caa.example.test", records)
    bind.wait_visible("caa.example.test", "CAA", '0 issuewild ";"')
    assert sorted(bind.query("caa.example.test", "CAA")) == sorted([
        'caa.example.test. 60 IN CAA 0 issue "certsmith.test"',
        'caa.example.test. 60 IN CAA 0 issuewild ";"',
        'caa.example.test. 60 IN CAA 128 iodef "mailto:sec@example.test"',
    ])
    bind.set_caa("caa.example.test", [(0, "issue", "other.test")])
    assert bind.query("caa.example.test", "CAA") == ['caa.example.test. 60 IN CAA 0 issue "other.test"']
    bind.delete("caa.example.test", "CAA")
    assert bind.query("caa.example.test", "CAA") == []


def test_stop_frees_the_port_and_a_restart_on_it_works(tmp_path: Path, stub: StubDns) -> None:
    need_binary("named")
    first = start_bind(tmp_path / "bind", zones=("example.test", "sub.example.test"))
    port = first.port
    first.set_cname("_acme-challenge.sub.example.test", "x1.acme.test")  # goes to the longest zone
    assert first.query("_acme-challenge.sub.example.test", "CNAME")
    first.stop()
    assert first.process is not None and first.process.returncode is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        udp.bind(("127.0.0.1", port))
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind(("127.0.0.1", port))
    with start_bind(tmp_path / "bind", zones=("example.test",), port=port,
                    forwards={"acme.test": ("127.0.0.1", stub.port)}) as second:
        assert second.port == port
        assert second.query("_acme-challenge.sub.example.test", "CNAME") == []  # a fresh zone, no old journal
        assert untimed(second.query("x1.acme.test", "TXT")) == ['x1.acme.test. IN TXT "hello"']


def test_a_forwarded_zone_below_a_user_zone_is_delegated_in_it(tmp_path: Path) -> None:
    need_binary("named")
    nested = StubDns("acme.example.test.")
    try:
        with start_bind(tmp_path, forwards={"acme.example.test": ("127.0.0.1", nested.port)}) as bind:
            bind.set_cname("_acme-challenge.example.test", "x1.acme.example.test")
            assert untimed(bind.query("_acme-challenge.example.test", "TXT")) == [
                "_acme-challenge.example.test. IN CNAME x1.acme.example.test.", 'x1.acme.example.test. IN TXT "hello"']
            with pytest.raises(ValueError, match="forwards and cannot update"):
                bind.set_cname("_acme-challenge.x1.acme.example.test", "x1.acme.test")
    finally:
        nested.close()


def test_bad_settings_are_refused_before_named_starts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="zone 'bad zone'"):
        start_bind(tmp_path, zones=("bad zone",))
    with pytest.raises(ValueError, match="not an IPv4 address"):
        start_bind(tmp_path, forwards={"acme.test": ("localhost", 53)})
    with pytest.raises(ValueError, match="both primary and forwarded"):
        start_bind(tmp_path, forwards={"example.test": ("127.0.0.1", 5300)})


def test_a_named_that_exits_is_reported(tmp_path: Path) -> None:
    need_binary("tsig-keygen")
    with pytest.raises(RuntimeError, match="named exited with status"):
        start_bind(tmp_path, binary="false")
