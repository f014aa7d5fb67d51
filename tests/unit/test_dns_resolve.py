"""Lookups through resolvers on loopback: certsmith's own validation DNS server, and a small recursive-resolver stub
(CNAMEs followed in the answer, SERVFAIL on demand) for CNAME chains and CAA climbing."""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from certsmith.dns.resolve import DnsLookupError, Lookup, Resolvers, parse_resolvers
from certsmith.dns.server import ValidationDnsServer


class Stub:
    """A recursive resolver as clients see one: it follows CNAMEs into the answer, from records held in memory."""

    def __init__(self, records: dict[str, list[str]], *, servfail: tuple[str, ...] = ()) -> None:
        self.rrsets: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}
        self.names: set[dns.name.Name] = set()
        for key, texts in records.items():
            owner, rdtype = key.rsplit(" ", 1)
            name = dns.name.from_text(owner)
            self.rrsets[(name, dns.rdatatype.from_text(rdtype))] = dns.rrset.from_text_list(name, 60, "IN", rdtype, texts)
            while name != dns.name.root:
                self.names.add(name)
                name = name.parent()
        self.servfail = {dns.name.from_text(name) for name in servfail}
        self.queries: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query, recursion_available=True)
        name, rdtype = query.question[0].name, query.question[0].rdtype
        self.queries.append(f"{name} {dns.rdatatype.to_text(rdtype)}")
        for _ in range(10):
            if name in self.servfail:
                response.set_rcode(dns.rcode.SERVFAIL)
            elif (name, rdtype) in self.rrsets:
                response.answer.append(self.rrsets[(name, rdtype)])
            elif (name, dns.rdatatype.CNAME) in self.rrsets:
                cname = self.rrsets[(name, dns.rdatatype.CNAME)]
                response.answer.append(cname)
                name = cname[0].target
                continue
            elif name not in self.names:
                response.set_rcode(dns.rcode.NXDOMAIN)
            break
        return response

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                if selector.select(timeout=0.05):
                    wire, peer = self.sock.recvfrom(65535)
                    self.sock.sendto(self.answer(dns.message.from_wire(wire)).to_wire(), peer)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


WORLD = {
    "_acme-challenge.example.test. CNAME": ["Abc.Acme.Test."],
    "_acme-challenge.www.example.test. CNAME": ["hop1.example.test."],
    "hop1.example.test. CNAME": ["hop2.example.test."],
    "hop2.example.test. CNAME": ["final.other.test."],
    "final.other.test. TXT": ['"chained"'],
    "long0.example.test. CNAME": ["long1.example.test."],
    "long1.example.test. CNAME": ["long2.example.test."],
    "long2.example.test. CNAME": ["long3.example.test."],
    "long3.example.test. CNAME": ["long4.example.test."],
    "long4.example.test. CNAME": ["long5.example.test."],
    "long5.example.test. CNAME": ["long6.example.test."],
    "loop-a.example.test. CNAME": ["loop-b.example.test."],
    "loop-b.example.test. CNAME": ["loop-a.example.test."],
    "broken.example.test. CNAME": ["sick.example.test."],
    "sick.example.test. CNAME": ["never.example.test."],
    "www.example.test. A": ["192.0.2.1"],
    "example.test. CAA": ['0 issue "letsencrypt.org"', '128 iodef "mailto:sec@example.test"'],
    "shop.example.test. CAA": ['0 issue ";"'],
    "alias.plain.test. CNAME": ["target.example.test."],
    "target.example.test. CAA": ['0 issuewild "pki.example"'],
    "host.plain.test. A": ["192.0.2.2"],
    "deep.sick.test. A": ["192.0.2.3"],
}


@pytest.fixture(scope="module")
def stub() -> Iterator[Stub]:
    srv = Stub(WORLD, servfail=("sick.example.test.", "sick.test."))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def validation_server() -> Iterator[ValidationDnsServer]:
    txt = {"abc.acme.test": ["value-one", "value-two"], "long.acme.test": ["L" * 600],
           "many.acme.test": [f"{i:03d}" + "v" * 40 for i in range(60)]}
    srv = ValidationDnsServer("acme.test", "127.0.0.1", 0, lambda: txt)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A UDP port where nobody answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_parse_resolvers() -> None:
    assert parse_resolvers("") == [] and parse_resolvers("  ") == []
    assert parse_resolvers("192.0.2.1, 192.0.2.2:5353,[::1]:5300, ::1 ,[2001:DB8::1],") == [
        ("192.0.2.1", 53), ("192.0.2.2", 5353), ("::1", 5300), ("::1", 53), ("2001:db8::1", 53)]


@pytest.mark.parametrize(("text", "message"), [
    ("1.2.3", "resolvers: '1.2.3' is not an IP address"),
    ("dns.google", "resolvers: 'dns.google' is not an IP address"),
    ("192.0.2.1,example.com:53", "resolvers: 'example.com:53' is not an IP address"),
    ("192.0.2.1:x", "resolvers: '192.0.2.1:x' has an invalid port 'x'"),
    ("192.0.2.1:0", "resolvers: '192.0.2.1:0' has an invalid port '0'"),
    ("192.0.2.1:65536", "invalid port '65536'"),
    ("[::1]5353", r"'\[::1\]5353' is not an IP address"),
    ("[::1", "is not an IP address"),
    ("[192.0.2.1]:", "invalid port ''"),
])
def test_parse_resolvers_names_the_bad_entry(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_resolvers(text)


def test_txt_from_the_validation_server(validation_server: ValidationDnsServer) -> None:
    resolvers = Resolvers([("127.0.0.1", validation_server.port)])
    label = f"127.0.0.1:{validation_server.port}"
    [found] = resolvers.txt("ABC.acme.test.")
    assert found.server == label and sorted(found.values) == ["value-one", "value-two"] and found.error is None
    assert resolvers.txt("long.acme.test") == [Lookup(label, ("L" * 600,))]  # strings joined
    assert len(resolvers.txt("many.acme.test")[0].values) == 60  # truncated over UDP, asked again over TCP
    assert resolvers.txt("nothing.acme.test") == [Lookup(label, (), "NXDOMAIN")]
    assert resolvers.txt("acme.test") == [Lookup(label, (), "no answer")]
    assert resolvers.txt("example.com") == [Lookup(label, (), "REFUSED")]
    assert resolvers.cname("abc.acme.test") == [Lookup(label, (), "no answer")]
    with pytest.raises(DnsLookupError, match=rf"DNS lookup of test at {label} failed: REFUSED"):
        resolvers.caa("abc.acme.test")  # no CAA in the zone: it climbs out of it, where the server refuses


def test_each_resolver_answers_for_itself(validation_server: ValidationDnsServer, stub: Stub, silent_port: int) -> None:
    resolvers = Resolvers([("127.0.0.1", validation_server.port), ("127.0.0.1", stub.port),
                           ("127.0.0.1", silent_port)], timeout=0.3)
    started = time.monotonic()
    found = resolvers.txt("abc.acme.test")
    assert time.monotonic() - started < 2.0  # asked side by side
    assert [lookup.server for lookup in found] == resolvers.servers == [
        f"127.0.0.1:{validation_server.port}", f"127.0.0.1:{stub.port}", f"127.0.0.1:{silent_port}"]
    assert sorted(found[0].values) == ["value-one", "value-two"]
    assert found[1] == Lookup(f"127.0.0.1:{stub.port}", (), "NXDOMAIN")
    assert found[2] == Lookup(f"127.0.0.1:{silent_port}", (), "timeout after 0.3 s")


def test_cname_chains(stub: Stub) -> None:
    resolvers = Resolvers([("127.0.0.1", stub.port)])

    def chain(name: str) -> Lookup:
        [lookup] = resolvers.cname(name)
        return lookup

    assert chain("_acme-challenge.example.test").values == ("abc.acme.test",)  # lowercase, target unknown here
    assert chain("_acme-challenge.www.example.test") == Lookup(
        f"127.0.0.1:{stub.port}", ("hop1.example.test", "hop2.example.test", "final.other.test"))
    assert chain("long0.example.test").values == tuple(f"long{i}.example.test" for i in range(1, 6))  # 5 hops
    loop = chain("loop-a.example.test")
    assert loop.values == ("loop-b.example.test", "loop-a.example.test") and loop.error == "CNAME loop at loop-a.example.test"
    assert chain("www.example.test") == Lookup(f"127.0.0.1:{stub.port}", (), "no answer")
    assert chain("nothing.example.test").error == "NXDOMAIN"
    assert chain("sick.example.test") == Lookup(f"127.0.0.1:{stub.port}", (), "SERVFAIL")
    assert chain("broken.example.test") == Lookup(f"127.0.0.1:{stub.port}", ("sick.example.test",), "SERVFAIL")


def test_a_cname_chain_stops_at_the_expected_target(stub: Stub) -> None:
    resolvers = Resolvers([("127.0.0.1", stub.port)])
    asked = len(stub.queries)
    [found] = resolvers.cname("_acme-challenge.www.example.test", until="Hop1.Example.Test.")
    assert found.values == ("hop1.example.test",) and found.error is None
    assert stub.queries[asked:] == ["_acme-challenge.www.example.test. CNAME"]  # the target itself is not asked
    [found] = resolvers.cname("_acme-challenge.www.example.test", until="elsewhere.test")
    assert found.values == ("hop1.example.test", "hop2.example.test", "final.other.test")


def test_txt_follows_cnames_as_the_resolver_does(stub: Stub) -> None:
    [found] = Resolvers([("127.0.0.1", stub.port)]).txt("_acme-challenge.www.example.test")
    assert found.values == ("chained",) and found.error is None


def test_caa_climbs_to_the_closest_node_with_records(stub: Stub) -> None:
    resolvers = Resolvers([("127.0.0.1", stub.port)])
    expected = [(0, "issue", "letsencrypt.org"), (128, "iodef", "mailto:sec@example.test")]
    found = resolvers.caa("www.example.test")
    assert found is not None and found[0] == "example.test" and found[1] == expected
    found = resolvers.caa("*.a.b.example.test")  # wildcard removed, NXDOMAIN nodes climbed past
    assert found is not None and found[0] == "example.test"
    assert resolvers.caa("example.test.") == found
    assert resolvers.caa("Shop.Example.Test") == ("shop.example.test", [(0, "issue", ";")])
    assert resolvers.caa("*.shop.example.test") == ("shop.example.test", [(0, "issue", ";")])
    assert resolvers.caa("alias.plain.test") == ("alias.plain.test", [(0, "issuewild", "pki.example")])  # via CNAME
    assert resolvers.caa("host.plain.test") is None
    assert stub.queries[-3:] == ["host.plain.test. CAA", "plain.test. CAA", "test. CAA"]  # never the root


def test_caa_failures_raise_naming_the_name_and_server(stub: Stub, silent_port: int) -> None:
    failed = rf"DNS lookup of sick\.test at 127\.0\.0\.1:{stub.port} failed: SERVFAIL"
    with pytest.raises(DnsLookupError, match=failed) as caught:
        Resolvers([("127.0.0.1", stub.port)]).caa("deep.sick.test")
    assert caught.value.name == "sick.test" and caught.value.reason == "SERVFAIL"
    with pytest.raises(DnsLookupError, match=r"example\.test at 127\.0\.0\.1:\d+ failed: timeout after 0\.2 s"):
        Resolvers([("127.0.0.1", silent_port), ("127.0.0.1", stub.port)], timeout=0.2).caa("example.test")


def test_ipv6_resolvers_are_labelled_in_brackets() -> None:
    assert Resolvers([("::1", 5353)]).servers == ["[::1]:5353"]


def test_the_system_resolver() -> None:
    try:
        resolvers = Resolvers()
    except ValueError as error:
        assert "no DNS resolver configured" in str(error)
        pytest.skip("no resolv.conf here")
    assert resolvers.servers == ["system"]  # not asked: the tests stay on loopback


def test_dnspython_sees_the_stub_as_recursive(stub: Stub) -> None:
    response = stub.answer(dns.message.make_query("_acme-challenge.www.example.test", "TXT"))
    assert response.flags & dns.flags.RA and len(response.answer) == 4
