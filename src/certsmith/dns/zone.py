"""Answers for the validation zone, from memory: a query's bytes and the zone's content in, the response's bytes out.

The zone holds an SOA and NS records at its apex, the TXT records certsmith publishes for DNS-01 challenges and,
optionally, A/AAAA records for its own name servers. Answers are authoritative. Choices where the RFCs leave room:
classes other than IN are REFUSED; zone transfers (AXFR, IXFR) are REFUSED; other meta types (MAILA, MAILB, TKEY,
TSIG, OPT) are NOTIMP; ANY answers every record at the name (the zone is small); a signed query (TSIG) is NOTAUTH,
as certsmith knows no keys; a query with records in its answer or authority section is FORMERR; EDNS versions
above 0 get BADVERS. A UDP answer that does not fit the client's payload (EDNS, 512 to 1232 bytes; 512 without
EDNS) is sent empty with TC set, so that the client asks again over TCP; over TCP the limit is 65,535 bytes.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

__all__ = ["NEGATIVE_TTL", "TXT_TTL", "UDP_PAYLOAD_CAP", "ZoneContent", "answer", "normalise_name", "validation_owner"]

TXT_TTL = 0  # challenge values change with every order: a resolver between the CA and certsmith must not keep them
NEGATIVE_TTL = 5  # SOA minimum and the SOA's TTL in negative answers (RFC 2308): a label asked about before its
# values are published must not stay "nonexistent" in a resolver's cache for long
SOA_TTL = 300
NS_TTL = 3600
UDP_PAYLOAD_CAP = 1232  # the DNS flag day 2020 value: no fragmentation
CLASSIC_UDP = 512
TCP_MAX = 65535
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_IN = dns.rdataclass.IN


def normalise_name(name: str) -> str:
    """A domain name as certsmith keys it: lowercase, without the trailing dot."""
    return name.strip().rstrip(".").lower()


def validation_owner(label: str, zone: str) -> str:
    """The owner name "<label>.<zone>" (lowercase, no trailing dot) where a challenge's TXT values are published."""
    if not _LABEL.fullmatch(label):
        raise ValueError(f"label: {label!r} is not a DNS label (1 to 63 letters, digits, '-' or '_')")
    return f"{label}.{normalise_name(zone)}".lower()


def _name(text: str, what: str) -> dns.name.Name:
    try:
        name = dns.name.from_text(normalise_name(text) + ".")
    except (dns.exception.DNSException, ValueError) as error:
        raise ValueError(f"{what}: {text!r} is not a domain name ({error})") from error
    return name


def _txt_rdata(value: str) -> dns.rdtypes.ANY.TXT.TXT:
    data = value.encode("utf-8")
    chunks = [data[start:start + 255] for start in range(0, len(data), 255)] or [b""]
    return dns.rdtypes.ANY.TXT.TXT(_IN, dns.rdatatype.TXT, chunks)


@dataclass(frozen=True, slots=True)
class _Index:
    origin: dns.name.Name
    rrsets: dict[tuple[dns.name.Name, int], dns.rrset.RRset]
    names: frozenset[dns.name.Name]  # every name that exists, empty non-terminals included
    negative_soa: dns.rrset.RRset
    glue: tuple[dns.rrset.RRset, ...]


@dataclass(frozen=True, slots=True)
class ZoneContent:
    """What the validation zone holds; names are normalised (lowercase, no trailing dot) on construction."""

    zone: str
    txt: Mapping[str, tuple[str, ...]]  # owner name -> TXT values; owners outside the zone are never answered
    nameservers: tuple[str, ...] = ()  # the apex's NS host names; default ("ns.<zone>",)
    serial: int = 1
    addresses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # name server -> its IP addresses
    _index: _Index = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        origin = _name(self.zone, "zone")
        if origin == dns.name.root:
            raise ValueError("zone: the validation zone cannot be the root")
        zone = normalise_name(self.zone)
        if not 0 <= self.serial <= 0xFFFFFFFF:
            raise ValueError(f"serial: {self.serial} is not a 32-bit unsigned number")
        txt = {normalise_name(owner): (values,) if isinstance(values, str) else tuple(values)
               for owner, values in self.txt.items()}
        nameservers = tuple(normalise_name(ns) for ns in self.nameservers) or (f"ns.{zone}",)
        addresses = {normalise_name(owner): (ips,) if isinstance(ips, str) else tuple(ips)
                     for owner, ips in self.addresses.items()}
        object.__setattr__(self, "zone", zone)
        object.__setattr__(self, "txt", txt)
        object.__setattr__(self, "nameservers", nameservers)
        object.__setattr__(self, "addresses", addresses)
        object.__setattr__(self, "_index", self._build(origin))

    def _build(self, origin: dns.name.Name) -> _Index:
        rrsets: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}
        names = {origin}

        def add(owner: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> None:
            key = (owner, int(rdata.rdtype))
            if key not in rrsets:
                rrsets[key] = dns.rrset.RRset(owner, _IN, rdata.rdtype)
            rrsets[key].add(rdata, ttl)
            while owner != origin and owner not in names:  # the owner and the empty non-terminals above it
                names.add(owner)
                owner = owner.parent()

        ns_names = [_name(ns, "nameservers") for ns in self.nameservers]
        soa = dns.rdata.from_text(_IN, dns.rdatatype.SOA, f"{ns_names[0]} hostmaster.{origin} {self.serial} 3600 600 86400 "
                                                          f"{NEGATIVE_TTL}")
        add(origin, SOA_TTL, soa)
        for ns in ns_names:
            add(origin, NS_TTL, dns.rdata.from_text(_IN, dns.rdatatype.NS, ns.to_text()))
        for owner_text, values in self.txt.items():
            owner = _name(owner_text, "txt owner")
            if owner.is_subdomain(origin):
                for value in values:
                    add(owner, TXT_TTL, _txt_rdata(value))
        for owner_text, ips in self.addresses.items():
            owner = _name(owner_text, "addresses owner")
            for ip in ips:
                try:
                    address = ipaddress.ip_address(ip)
                except ValueError as error:
                    raise ValueError(f"addresses: {ip!r} of {owner_text} is not an IP address") from error
                if owner.is_subdomain(origin):
                    rdtype = dns.rdatatype.A if address.version == 4 else dns.rdatatype.AAAA
                    add(owner, NS_TTL, dns.rdata.from_text(_IN, rdtype, str(address)))
        negative_soa = dns.rrset.RRset(origin, _IN, dns.rdatatype.SOA)
        negative_soa.add(soa, NEGATIVE_TTL)
        glue = tuple(rrsets[(ns, rdtype)] for ns in ns_names for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
                     if (ns, rdtype) in rrsets)
        return _Index(origin, rrsets, frozenset(names), negative_soa, glue)


def _header_only(wire: bytes, rcode: int) -> bytes | None:
    """A response of a header alone (id, opcode and RD copied), for queries that cannot be parsed or served."""
    if len(wire) < 2 or (len(wire) >= 3 and wire[2] & 0x80):
        return None
    copied = wire[2] & 0x79 if len(wire) >= 3 else 0  # opcode and RD
    return wire[:2] + bytes((0x80 | copied, rcode & 0x0F)) + bytes(8)


def _payload_limit(query: dns.message.Message, transport: str) -> int:
    if transport == "tcp":
        return TCP_MAX
    if query.edns < 0:
        return CLASSIC_UDP
    return max(CLASSIC_UDP, min(int(query.payload), UDP_PAYLOAD_CAP))


def _render(response: dns.message.Message, limit: int) -> bytes:
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        response.answer, response.authority, response.additional = [], [], []
        response.flags |= dns.flags.TC
        return response.to_wire(max_size=limit)


def _fill(response: dns.message.Message, query: dns.message.Message, index: _Index) -> None:
    """The answer to a parsed, well-formed query of opcode QUERY: rcode, AA and sections."""
    question = query.question[0]
    qname, qtype = question.name, int(question.rdtype)
    if question.rdclass != _IN or not qname.is_subdomain(index.origin):
        response.set_rcode(dns.rcode.REFUSED)
        return
    if qtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
        response.set_rcode(dns.rcode.REFUSED)
        return
    if dns.rdatatype.is_metatype(dns.rdatatype.RdataType.make(qtype)) and qtype != dns.rdatatype.ANY:
        response.set_rcode(dns.rcode.NOTIMP)
        return
    response.flags |= dns.flags.AA
    if qname not in index.names:
        response.set_rcode(dns.rcode.NXDOMAIN)
        response.authority = [index.negative_soa]
        return
    if qtype == dns.rdatatype.ANY:
        found = [rrset for (owner, _), rrset in index.rrsets.items() if owner == qname]
    else:
        found = [index.rrsets[(qname, qtype)]] if (qname, qtype) in index.rrsets else []
    if not found:
        response.authority = [index.negative_soa]  # NODATA
        return
    response.answer = found
    if qname == index.origin and qtype in (dns.rdatatype.NS, dns.rdatatype.ANY):
        response.additional = list(index.glue)


def _answer(wire: bytes, content: ZoneContent, transport: str) -> bytes | None:
    if len(wire) < 12:
        return _header_only(wire, dns.rcode.FORMERR)
    if wire[2] & 0x80:
        return None  # a response: never answered, so that two servers cannot loop
    _, flags, qdcount, ancount, nscount, _ = struct.unpack("!6H", wire[:12])
    if dns.opcode.from_flags(flags) != dns.opcode.QUERY:
        return _header_only(wire, dns.rcode.NOTIMP)
    if qdcount != 1 or ancount or nscount:
        return _header_only(wire, dns.rcode.FORMERR)
    try:
        query = dns.message.from_wire(wire)
    except dns.message.UnknownTSIGKey:
        return _header_only(wire, dns.rcode.NOTAUTH)
    except Exception:  # noqa: BLE001 - dnspython raises many kinds on garbage; all of them are a malformed query
        return _header_only(wire, dns.rcode.FORMERR)
    response = dns.message.make_response(query, our_payload=UDP_PAYLOAD_CAP, pad=0)
    response.flags |= query.flags & dns.flags.CD
    if query.edns >= 0:
        response.ednsflags |= query.ednsflags & dns.flags.DO
    if query.edns > 0:
        response.set_rcode(dns.rcode.BADVERS)
    else:
        _fill(response, query, content._index)
    return _render(response, _payload_limit(query, transport))


def answer(wire: bytes, content: ZoneContent, *, transport: str = "udp") -> bytes | None:
    """The response to the query `wire`, or None when nothing should be sent; never raises.

    `transport` is "udp" or "tcp" (the size limit); a failure of certsmith's own answers SERVFAIL.
    """
    try:
        return _answer(wire, content, transport)
    except Exception:  # noqa: BLE001 - never raises on any input: the query gets SERVFAIL instead
        try:
            return _header_only(wire, dns.rcode.SERVFAIL)
        except Exception:  # noqa: BLE001 - not even bytes (a wrong type): nothing to send
            return None
