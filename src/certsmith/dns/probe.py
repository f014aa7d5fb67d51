"""Asking certsmith's own DNS server whether it serves a TXT value yet (it may run in another process)."""

from __future__ import annotations

import time

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

__all__ = ["serves_txt", "split_listen"]


def split_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` → (host, port); ValueError in plain words."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"dns_listen {listen!r} must be HOST:PORT, e.g. 127.0.0.1:5300 or [::1]:5300")
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(f"dns_listen {listen!r}: port {number} is out of range")
    return host.strip("[]"), number


def serves_txt(host: str, port: int, owner: str, value: str, timeout: float) -> bool:
    """Poll the server (backoff from 5 ms) until a TXT query for ``owner`` answers ``value``; False past ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            answer = dns.query.udp(dns.message.make_query(owner, dns.rdatatype.TXT), host, port=port, timeout=1.0)
            for rrset in answer.answer:
                for record in rrset:
                    if b"".join(getattr(record, "strings", ())).decode("ascii", "replace") == value:
                        return True
        except (dns.exception.DNSException, OSError):
            pass
        if time.monotonic() + delay > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.25)
