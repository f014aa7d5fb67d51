"""A bounded fuzz run against the validation DNS server on real sockets: it must keep answering, and answer well.

Random bytes, mutated queries, crafted malformed names and EDNS, every opcode and class, bad TCP framing, half-open
and reset connections, and a flood of UDP queries. Every reply must parse as a DNS response that is not SERVFAIL
(SERVFAIL means certsmith's own code failed), nothing may be logged as an error, and afterwards the server must
still answer normal queries over UDP and TCP with all its threads alive. Set CERTSMITH_DNS_FUZZ_SEED to replay a run.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import struct
import time
from collections.abc import Callable, Iterator

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from certsmith.dns.server import MAX_TCP_MESSAGE, ValidationDnsServer

SEED = int(os.environ.get("CERTSMITH_DNS_FUZZ_SEED", random.randrange(2**32)))
ZONE = "acme.test"
TXT = {"abc.acme.test": ["value-one", "value-two"], "x.deep.acme.test": ["deep"],
       "many.acme.test": [f"{i:03d}" + "v" * 40 for i in range(40)]}
NAMES = ["abc.acme.test", "ABC.Acme.TEST", "acme.test", "deep.acme.test", "nothing.acme.test", "many.acme.test",
         "example.com", "."]
TYPES = ["TXT", "SOA", "NS", "A", "AAAA", "ANY", "CNAME", "AXFR", "IXFR", "MAILA", "CAA", 0, 65535]


@pytest.fixture
def server(caplog: pytest.LogCaptureFixture) -> Iterator[ValidationDnsServer]:
    caplog.set_level(logging.INFO, logger="certsmith.dns")
    srv = ValidationDnsServer(ZONE, "127.0.0.1", 0, lambda: TXT, refresh_seconds=0.05, tcp_idle_seconds=2.0)
    srv.start()
    yield srv
    srv.stop()


def header(qid: int, flags: int, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack("!6H", qid, flags, qd, an, ns, ar)


def valid_query(rng: random.Random) -> bytes:
    name, rdtype = rng.choice(NAMES), rng.choice(TYPES)
    if rng.random() < 0.5:
        return dns.message.make_query(name, rdtype, use_edns=0, payload=rng.choice([0, 512, 1232, 4096, 65535])).to_wire()
    return dns.message.make_query(name, rdtype).to_wire()


def opt(rng: random.Random, options_size: int) -> bytes:
    options = b""
    while len(options) < options_size:
        data = rng.randbytes(rng.randrange(0, min(4000, options_size) + 1))
        options += struct.pack("!HH", rng.randrange(65536), len(data)) + data
    version_flags = rng.choice([0, 0, 0x00010000, rng.randrange(2**32)])
    return b"\x00" + struct.pack("!HHIH", 41, rng.randrange(65536), version_flags, len(options)) + options


QUESTION = b"\x03abc\x04acme\x04test\x00\x00\x10\x00\x01"


def mutations(rng: random.Random, udp: bool) -> list[Callable[[], bytes]]:
    def random_bytes() -> bytes:
        return rng.randbytes(rng.randrange(0, 600))

    def bit_flips() -> bytes:
        wire = bytearray(valid_query(rng))
        for _ in range(rng.randrange(1, 9)):
            wire[rng.randrange(len(wire))] ^= 1 << rng.randrange(8)
        return bytes(wire)

    def truncated() -> bytes:
        wire = valid_query(rng)
        return wire[:rng.randrange(len(wire))]

    def wrong_counts() -> bytes:
        wire = valid_query(rng)
        return wire[:4] + struct.pack("!4H", *(rng.choice([0, 1, 2, 255, 65535]) for _ in range(4))) + wire[12:]

    def pointer_loop() -> bytes:
        loops = [b"\xc0\x0c", b"\x01a\xc0\x0c", b"\xc0\x0e\xc0\x0c", b"\xc0\xff", b"\xff\xff", b"\x01a\xc0\x0e"]
        return header(rng.randrange(65536), 0x0100) + rng.choice(loops) + b"\x00\x10\x00\x01"

    def long_labels() -> bytes:
        label = rng.randrange(64, 256)
        return header(rng.randrange(65536), 0x0100) + bytes([label]) + b"a" * label + b"\x00\x00\x10\x00\x01"

    def long_names() -> bytes:
        labels = b"".join(bytes([size]) + b"b" * size for size in (rng.randrange(1, 64) for _ in range(rng.randrange(4, 12))))
        return header(rng.randrange(65536), 0x0100) + labels + b"\x04acme\x04test\x00\x00\x10\x00\x01"

    def wrong_class() -> bytes:
        return header(rng.randrange(65536), 0x0100) + QUESTION[:-2] + struct.pack("!H", rng.randrange(65536))

    def every_opcode() -> bytes:
        flags = (rng.randrange(16) << 11) | rng.randrange(0x800)  # the rest of the flags random too, QR clear
        return header(rng.randrange(65536), flags) + QUESTION

    def huge_edns() -> bytes:
        size = rng.randrange(0, 1400 if udp else MAX_TCP_MESSAGE - 100)
        return header(rng.randrange(65536), 0x0100, ar=1) + QUESTION + opt(rng, size)

    def signed_or_extra_records() -> bytes:
        extra = b"\x00\x00\xfa\x00\xff\x00\x00\x00\x00\x00\x04junk"  # a TSIG-typed record of garbage
        return header(rng.randrange(65536), 0x0100, ar=rng.choice([1, 2])) + QUESTION + extra * rng.choice([1, 2])

    def a_response() -> bytes:
        return header(rng.randrange(65536), 0x8100 | rng.randrange(0x7fff)) + QUESTION

    return [random_bytes, bit_flips, truncated, wrong_counts, pointer_loop, long_labels, long_names, wrong_class,
            every_opcode, huge_edns, signed_or_extra_records, a_response, lambda: valid_query(rng)]


def check_reply(wire: bytes, limit: int, seed_note: str) -> dns.message.Message:
    assert len(wire) <= limit, seed_note
    reply = dns.message.from_wire(wire)
    assert reply.flags & dns.flags.QR, seed_note
    assert reply.rcode() != dns.rcode.SERVFAIL, f"{seed_note}: SERVFAIL, the server's own code failed"
    return reply


def drain(sock: socket.socket, seed_note: str) -> int:
    count = 0
    while True:
        try:
            wire = sock.recv(65535)
        except BlockingIOError:
            return count
        check_reply(wire, 1232, seed_note)
        count += 1


def test_fuzzed_packets_never_stop_the_server(server: ValidationDnsServer, caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(SEED)
    note = f"seed {SEED}"
    started = time.monotonic()
    address = ("127.0.0.1", server.port)

    # UDP: 3,000 fuzzed packets, replies checked as they come
    replies = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.setblocking(False)
        makers = mutations(rng, udp=True)
        for index in range(3000):
            udp.sendto(rng.choice(makers)(), address)
            if index % 20 == 19:
                time.sleep(0.001)  # lets the replies come back rather than fill the buffer
                replies += drain(udp, note)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            replies += drain(udp, note)
            time.sleep(0.01)
    assert replies > 1500, f"{note}: only {replies} replies to 3,000 fuzzed packets"

    tcp_fuzz(server, rng, note)
    udp_flood(server, note)

    # afterwards: normal answers over both protocols, threads alive, nothing logged as an error
    ask = dns.message.make_query("ABC.acme.test", "TXT")
    for send in (dns.query.udp, dns.query.tcp):
        response = send(ask, "127.0.0.1", port=server.port, timeout=5)
        assert {rd.strings[0] for rrset in response.answer for rd in rrset} == {b"value-one", b"value-two"}, note
    assert server.threads_alive(), note
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, f"{note}: {errors}"
    assert time.monotonic() - started < 20.0, note


def tcp_fuzz(server: ValidationDnsServer, rng: random.Random, note: str) -> None:
    address = ("127.0.0.1", server.port)
    makers = mutations(rng, udp=False)

    # framed fuzzed messages on a few connections, several per connection
    for _ in range(40):
        with socket.create_connection(address, timeout=5) as sock:
            messages = [rng.choice(makers)() for _ in range(rng.randrange(1, 10))]
            messages = [m for m in messages if 0 < len(m) <= MAX_TCP_MESSAGE]
            sock.sendall(b"".join(len(m).to_bytes(2, "big") + m for m in messages))
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            while data:
                length = int.from_bytes(data[:2], "big")
                check_reply(data[2:2 + length], 65535, note)
                data = data[2 + length:]

    # bad length prefixes and raw garbage: the server closes the connection, never hangs on it
    bad_streams = [b"\x00\x00", b"\xff\xff" + b"x" * 100, (MAX_TCP_MESSAGE + 1).to_bytes(2, "big") + b"y" * 50,
                   b"\x00", b"\x00\x05ab", rng.randbytes(3000)]
    for stream in bad_streams:
        with socket.create_connection(address, timeout=5) as sock:
            try:
                sock.sendall(stream)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):
                    pass
            except ConnectionResetError:
                pass

    # half-open connections beyond the cap, and connections reset mid-message
    held = []
    try:
        for _ in range(80):
            sock = socket.create_connection(address, timeout=5)
            sock.sendall(b"\x00\x30" + rng.randbytes(rng.randrange(0, 40)))  # a message that never completes
            held.append(sock)
        for _ in range(20):
            with socket.create_connection(address, timeout=5) as sock:
                sock.sendall(b"\x00\x30abc")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
    finally:
        for sock in held:
            sock.close()


def udp_flood(server: ValidationDnsServer, note: str) -> None:
    queries = [dns.message.make_query(name, "TXT").to_wire() for name in ("abc.acme.test", "nothing.acme.test")]
    answered = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        udp.setblocking(False)
        started = time.monotonic()
        for index in range(5000):
            try:
                udp.sendto(queries[index % 2], ("127.0.0.1", server.port))
            except BlockingIOError:
                pass
            if index % 500 == 499:
                answered += drain(udp, note)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and answered < 5000:
            answered += drain(udp, note)
            time.sleep(0.01)
        elapsed = time.monotonic() - started
    assert answered > 2000, f"{note}: {answered} of 5,000 flooded queries answered in {elapsed:.1f} s"
