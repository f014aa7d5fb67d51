"""The validation zone's answers, from crafted queries (no sockets)."""

from __future__ import annotations

import struct

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certsmith.dns.zone import NEGATIVE_TTL, TXT_TTL, ZoneContent, answer, validation_owner

ZONE = "acme.test"
CONTENT = ZoneContent(ZONE, {"abc.acme.test": ("value-one", "value-two"), "x.deep.acme.test": ("deep",)})


def ask(name: str, rdtype: str | int = "TXT", content: ZoneContent = CONTENT, *, transport: str = "udp",
        rdclass: str | int = "IN", **query_args: object) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, rdclass, **query_args)  # type: ignore[arg-type]
    wire = answer(query.to_wire(), content, transport=transport)
    assert wire is not None
    response = dns.message.from_wire(wire)
    assert response.id == query.id and response.flags & dns.flags.QR
    return response


def raw(wire: bytes, content: ZoneContent = CONTENT) -> dns.message.Message:
    reply = answer(wire, content)
    assert reply is not None
    return dns.message.from_wire(reply)


def txt_values(response: dns.message.Message) -> set[str]:
    return {b"".join(rd.strings).decode() for rrset in response.answer for rd in rrset}


def many(count: int, size: int = 43) -> ZoneContent:
    return ZoneContent(ZONE, {"big.acme.test": tuple(f"{i:05d}".ljust(size, "x") for i in range(count))})


def test_txt_values_are_answered_with_authority() -> None:
    response = ask("abc.acme.test")
    assert response.rcode() == dns.rcode.NOERROR and response.flags & dns.flags.AA
    assert txt_values(response) == {"value-one", "value-two"}
    assert response.answer[0].ttl == TXT_TTL and not response.authority


def test_soa_and_ns_at_the_apex() -> None:
    soa = ask(ZONE, "SOA").answer[0]
    assert soa.rdtype == dns.rdatatype.SOA and soa[0].mname == dns.name.from_text("ns.acme.test.")
    assert soa[0].serial == 1 and soa[0].minimum == NEGATIVE_TTL
    assert [rd.target.to_text() for rd in ask(ZONE, "NS").answer[0]] == ["ns.acme.test."]


def test_named_nameservers_their_addresses_and_serial() -> None:
    content = ZoneContent("Acme.Test.", {}, ("NS1.acme.test.", "ns2.elsewhere.test"), 7,
                          {"ns1.acme.test": ("192.0.2.1", "2001:db8::1")})
    response = ask(ZONE, "NS", content)
    assert sorted(rd.target.to_text() for rd in response.answer[0]) == ["ns1.acme.test.", "ns2.elsewhere.test."]
    assert sorted(rd.to_text() for rrset in response.additional for rd in rrset) == ["192.0.2.1", "2001:db8::1"]
    assert ask("ns1.acme.test", "A", content).answer[0][0].to_text() == "192.0.2.1"
    assert ask(ZONE, "SOA", content).answer[0][0].serial == 7
    assert content.zone == "acme.test" and content.nameservers == ("ns1.acme.test", "ns2.elsewhere.test")


def test_nodata_for_an_existing_name_and_another_type() -> None:
    for name, rdtype in (("abc.acme.test", "A"), ("abc.acme.test", "AAAA"), (ZONE, "TXT"), (ZONE, "A"),
                         ("abc.acme.test", "CNAME")):
        response = ask(name, rdtype)
        assert response.rcode() == dns.rcode.NOERROR and response.flags & dns.flags.AA, (name, rdtype)
        assert not response.answer
        assert response.authority[0].rdtype == dns.rdatatype.SOA and response.authority[0].ttl == NEGATIVE_TTL


def test_an_empty_non_terminal_is_nodata_not_nxdomain() -> None:
    response = ask("deep.acme.test", "TXT")
    assert response.rcode() == dns.rcode.NOERROR and not response.answer and response.authority
    assert txt_values(ask("x.deep.acme.test")) == {"deep"}


def test_nxdomain_for_other_names_in_the_zone() -> None:
    for name in ("nothing.acme.test", "y.abc.acme.test", "ns.acme.test"):
        response = ask(name, "TXT")
        assert response.rcode() == dns.rcode.NXDOMAIN and response.flags & dns.flags.AA, name
        assert response.authority[0].name == dns.name.from_text("acme.test.") and not response.answer


def test_names_outside_the_zone_are_refused() -> None:
    for name in ("example.com", "test", "xacme.test", "acme.test.example"):
        response = ask(name, "TXT")
        assert response.rcode() == dns.rcode.REFUSED and not response.flags & dns.flags.AA, name
        assert not response.answer and not response.authority


def test_classes_other_than_in_are_refused() -> None:
    for rdclass in ("CH", "HS", "ANY", "NONE", 1234):
        response = ask("abc.acme.test", "TXT", rdclass=rdclass)
        assert response.rcode() == dns.rcode.REFUSED and not response.answer, rdclass


def test_zone_transfers_are_refused_and_other_meta_types_not_implemented() -> None:
    assert ask(ZONE, "AXFR").rcode() == dns.rcode.REFUSED
    assert ask(ZONE, "IXFR").rcode() == dns.rcode.REFUSED
    for rdtype in ("MAILA", "MAILB", "TKEY", 41, 200):
        assert ask(ZONE, rdtype).rcode() == dns.rcode.NOTIMP, rdtype


def test_any_answers_what_exists() -> None:
    assert txt_values(ask("abc.acme.test", "ANY")) == {"value-one", "value-two"}
    assert {rrset.rdtype for rrset in ask(ZONE, "ANY").answer} == {dns.rdatatype.SOA, dns.rdatatype.NS}
    assert ask("deep.acme.test", "ANY").authority and ask("nothing.acme.test", "ANY").rcode() == dns.rcode.NXDOMAIN


def test_names_are_case_insensitive_and_the_question_is_echoed_as_asked() -> None:
    query = dns.message.make_query("AbC.aCmE.TeSt", "TXT")
    reply = answer(query.to_wire(), CONTENT)
    assert reply is not None and b"\x03AbC\x04aCmE\x04TeSt\x00" in reply
    response = dns.message.from_wire(reply)
    assert response.question[0].name.labels[:3] == (b"AbC", b"aCmE", b"TeSt")
    assert txt_values(response) == {"value-one", "value-two"}
    content = ZoneContent("ACME.test.", {"ABC.Acme.Test.": ("v",)})
    assert content.txt == {"abc.acme.test": ("v",)} and txt_values(ask("abc.acme.test", content=content)) == {"v"}


def test_long_values_are_split_into_strings_of_255_bytes() -> None:
    content = ZoneContent(ZONE, {"abc.acme.test": ("a" * 255, "b" * 256, "c" * 600, "")})
    response = ask("abc.acme.test", content=content, use_edns=0, payload=1232)
    strings = {rd.strings[0][:1] or b"": [len(s) for s in rd.strings] for rd in response.answer[0]}
    assert strings == {b"a": [255], b"b": [255, 1], b"c": [255, 255, 90], b"": [0]}
    assert txt_values(response) == {"a" * 255, "b" * 256, "c" * 600, ""}


def test_many_values_fit_the_edns_payload() -> None:
    response = ask("big.acme.test", content=many(20), use_edns=0, payload=1232)
    assert len(txt_values(response)) == 20 and not response.flags & dns.flags.TC
    assert response.edns == 0 and response.payload == 1232


def test_without_edns_answers_over_512_bytes_are_truncated() -> None:
    response = ask("big.acme.test", content=many(20))
    assert response.flags & dns.flags.TC and not response.answer and response.edns < 0
    assert response.question[0].name == dns.name.from_text("big.acme.test.")
    assert len(txt_values(ask("big.acme.test", content=many(8)))) == 8  # about 400 bytes: fits 512


def test_the_client_payload_is_honoured_between_512_and_1232() -> None:
    content = many(15)  # 56 bytes a record: about 900 bytes
    assert not ask("big.acme.test", content=content, use_edns=0, payload=1000).flags & dns.flags.TC
    assert ask("big.acme.test", content=content, use_edns=0, payload=800).flags & dns.flags.TC
    assert ask("big.acme.test", content=content, use_edns=0, payload=100).flags & dns.flags.TC  # at least 512
    assert len(txt_values(ask("big.acme.test", content=many(8), use_edns=0, payload=100))) == 8
    big = many(30)  # about 1,500 bytes: more than the cap, whatever the client offers
    assert ask("big.acme.test", content=big, use_edns=0, payload=4096).flags & dns.flags.TC


def test_tcp_answers_up_to_65535_bytes() -> None:
    response = ask("big.acme.test", content=many(1000), transport="tcp")
    assert len(txt_values(response)) == 1000 and not response.flags & dns.flags.TC
    too_big = ask("big.acme.test", content=many(300, 250), transport="tcp")
    assert too_big.flags & dns.flags.TC and not too_big.answer


def test_edns_do_bit_is_copied_and_versions_above_0_get_badvers() -> None:
    response = ask("abc.acme.test", use_edns=0, want_dnssec=True)
    assert response.ednsflags & dns.flags.DO and response.edns == 0
    assert not ask("abc.acme.test", use_edns=0).ednsflags & dns.flags.DO
    badvers = ask("abc.acme.test", use_edns=1)
    assert badvers.rcode() == dns.rcode.BADVERS and badvers.edns == 0 and not badvers.answer


def test_rd_and_cd_are_copied_and_ra_is_not_set() -> None:
    query = dns.message.make_query("abc.acme.test", "TXT")
    query.flags |= dns.flags.CD
    reply = answer(query.to_wire(), CONTENT)
    assert reply is not None
    flags = dns.message.from_wire(reply).flags
    assert flags & dns.flags.RD and flags & dns.flags.CD and not flags & dns.flags.RA
    query.flags &= ~(dns.flags.RD | dns.flags.CD)
    reply = answer(query.to_wire(), CONTENT)
    assert reply is not None and not dns.message.from_wire(reply).flags & (dns.flags.RD | dns.flags.CD)


def header(qid: int = 0x1234, flags: int = 0x0100, counts: tuple[int, int, int, int] = (1, 0, 0, 0)) -> bytes:
    return struct.pack("!6H", qid, flags, *counts)


QUESTION = b"\x03abc\x04acme\x04test\x00\x00\x10\x00\x01"


def test_malformed_queries_get_formerr_with_their_id() -> None:
    cases = {
        "no question": header(counts=(0, 0, 0, 0)),
        "two questions": header(counts=(2, 0, 0, 0)) + QUESTION + QUESTION,
        "count says one, none there": header(),
        "cut question": header() + QUESTION[:7],
        "trailing junk": header() + QUESTION + b"junk",
        "answer section in a query": header(counts=(1, 1, 0, 0)) + QUESTION + b"\xc0\x0c\x00\x10\x00\x01" + bytes(6),
        "label over 63": header() + b"\x40" + b"a" * 64 + b"\x00\x00\x10\x00\x01",
        "pointer loop": header() + b"\xc0\x0c\x00\x10\x00\x01",
        "forward pointer": header() + b"\xc0\x20\x00\x10\x00\x01",
        "name over 255": header() + b"\x3f" + b"a" * 63 + (b"\x3f" + b"b" * 63) * 4 + b"\x00\x00\x10\x00\x01",
        "two OPT records": header(counts=(1, 0, 0, 2)) + QUESTION + (b"\x00\x00\x29\x04\xd0" + bytes(6)) * 2,
        "OPT not at the root": header(counts=(1, 0, 0, 1)) + QUESTION + b"\x01a\x00\x00\x29\x04\xd0" + bytes(6),
    }
    for what, wire in cases.items():
        response = raw(wire)
        assert response.rcode() == dns.rcode.FORMERR and response.id == 0x1234, what
        assert response.flags & dns.flags.RD and not response.answer, what


def test_short_and_response_packets() -> None:
    assert answer(b"", CONTENT) is None and answer(b"\x12", CONTENT) is None
    short = answer(b"\x12\x34\x01", CONTENT)
    assert short is not None and short[:2] == b"\x12\x34" and short[3] & 0x0F == dns.rcode.FORMERR and short[2] & 0x80
    assert answer(b"\x12\x34", CONTENT) is not None
    response_wire = dns.message.make_response(dns.message.make_query("abc.acme.test", "TXT")).to_wire()
    assert answer(response_wire, CONTENT) is None  # never answers a response
    assert answer(b"\x12\x34\x80", CONTENT) is None


@pytest.mark.parametrize("opcode", [op for op in range(1, 16)])
def test_opcodes_other_than_query_are_not_implemented(opcode: int) -> None:
    response = raw(header(flags=0x0100 | (opcode << 11)) + QUESTION)
    assert response.rcode() == dns.rcode.NOTIMP and response.opcode() == opcode and not response.answer


def test_a_signed_query_is_notauth() -> None:
    query = dns.message.make_query("abc.acme.test", "TXT")
    query.use_tsig(dns.tsigkeyring.from_text({"key.": "c2VjcmV0c2VjcmV0c2VjcmV0"}))
    assert raw(query.to_wire()).rcode() == dns.rcode.NOTAUTH


def test_validation_owner() -> None:
    assert validation_owner("Ab-c_1", "Acme.Test.") == "ab-c_1.acme.test"
    for bad in ("", "a.b", "a" * 64, "-a", "a b", "é"):
        with pytest.raises(ValueError, match="label"):
            validation_owner(bad, ZONE)


def test_bad_content_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="zone"):
        ZoneContent("", {})
    with pytest.raises(ValueError, match="zone"):
        ZoneContent("a..b", {})
    with pytest.raises(ValueError, match="txt owner"):
        ZoneContent(ZONE, {"a" * 64 + ".acme.test": ("v",)})
    with pytest.raises(ValueError, match=r"addresses: '300\.1\.1\.1'"):
        ZoneContent(ZONE, {}, (), 1, {"ns.acme.test": ("300.1.1.1",)})
    with pytest.raises(ValueError, match="serial"):
        ZoneContent(ZONE, {}, (), -1)


def test_owners_outside_the_zone_are_never_answered() -> None:
    content = ZoneContent(ZONE, {"evil.example.com": ("v",), "a.acme.test": ("w",)})
    assert ask("evil.example.com", content=content).rcode() == dns.rcode.REFUSED
    assert txt_values(ask("a.acme.test", content=content)) == {"w"}


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_get_a_well_formed_answer_or_none(wire: bytes) -> None:
    reply = answer(wire, CONTENT)
    assert reply is None or (len(wire) >= 2 and reply[:2] == wire[:2] and reply[2] & 0x80)
    if reply is not None:
        dns.message.from_wire(reply)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_queries_never_break_the_answer(data: st.DataObject) -> None:
    wire = bytearray(dns.message.make_query("abc.acme.test", "TXT", use_edns=0, payload=1232).to_wire())
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(wire) - 1))
        wire[position] = data.draw(st.integers(0, 255))
    wire = wire[:data.draw(st.integers(0, len(wire)))]
    for transport in ("udp", "tcp"):
        reply = answer(bytes(wire), CONTENT, transport=transport)
        if reply is not None:
            assert len(reply) <= (1232 if transport == "udp" else 65535)
            dns.message.from_wire(reply)


def test_opcode_and_rcode_of_header_only_answers_are_plain() -> None:
    response = raw(header(flags=dns.opcode.to_flags(dns.opcode.UPDATE)) + QUESTION)
    assert response.opcode() == dns.opcode.UPDATE and not response.flags & dns.flags.RD
