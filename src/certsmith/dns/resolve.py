"""What the world sees: CNAME, TXT, CAA and address lookups through chosen resolvers (or the system's).

CNAME and TXT give one answer per resolver; CAA and addresses ask the first resolver.

No caching and no search domains: every lookup asks again, for the absolute name given.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.rrset

__all__ = ["MAX_CNAME_HOPS", "DnsLookupError", "Lookup", "Resolvers", "format_server", "parse_resolvers"]

MAX_CNAME_HOPS = 5
_FORMAT_HINT = "write HOST[:PORT] with an IP address, e.g. 192.0.2.1:53 or [2001:db8::1]:53"


def format_server(host: str, port: int) -> str:
    """"127.0.0.1:5353" or "[::1]:5353"."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ip(text: str, entry: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"resolvers: {entry!r} is not an IP address ({_FORMAT_HINT})") from None


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"resolvers: {entry!r} has an invalid port {text!r} (1 to 65535)")
    return int(text)


def parse_resolvers(text: str) -> list[tuple[str, int]]:
    """ "HOST[:PORT],..." to [(ip, port), ...]: IPv6 as [::1]:5353 or bare ::1, port 53 by default; "" is []."""
    servers: list[tuple[str, int]] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        if entry.startswith("["):
            host, bracket, rest = entry[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise ValueError(f"resolvers: {entry!r} is not an IP address ({_FORMAT_HINT})")
            servers.append((_ip(host, entry), _port(rest[1:], entry) if rest else 53))
        elif entry.count(":") == 1:
            host, _, port = entry.partition(":")
            servers.append((_ip(host, entry), _port(port, entry)))
        else:
            servers.append((_ip(entry, entry), 53))
    return servers


@dataclass(frozen=True, slots=True)
class Lookup:
    """One resolver's answer: the values found, or why there are none."""

    server: str  # "127.0.0.1:5353" or "system"
    values: tuple[str, ...]
    error: str | None = None  # "NXDOMAIN", "no answer", "timeout after 2 s", "SERVFAIL", ...


class DnsLookupError(Exception):
    """A lookup that could not be answered (SERVFAIL, REFUSED, timeout), naming the name and the server."""

    def __init__(self, name: str, server: str, reason: str) -> None:
        super().__init__(f"DNS lookup of {name} at {server} failed: {reason}")
        self.name, self.server, self.reason = name, server, reason


class _Failed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _absolute(name: str) -> dns.name.Name:
    return dns.name.from_text(name.strip().rstrip(".") + ".")


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


class Resolvers:
    """The resolvers to ask; () means the system's (reported as server "system")."""

    def __init__(self, servers: Sequence[tuple[str, int]] = (), *, timeout: float = 2.0) -> None:
        self.timeout = timeout
        self._servers = list(servers)

    @functools.cached_property
    def _resolvers(self) -> list[tuple[str, dns.resolver.Resolver]]:
        """Built on first use: the system's configuration is read only by an installation that validates."""
        resolvers: list[tuple[str, dns.resolver.Resolver]] = []
        for host, port in self._servers:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port)]
            resolvers.append((format_server(host, port), self._tune(resolver)))
        if not self._servers:
            try:
                system = dns.resolver.Resolver()
            except dns.resolver.NoResolverConfiguration as error:
                raise ValueError("resolvers: the system has no DNS resolver configured (resolv.conf); "
                                 "give the resolvers to ask as HOST[:PORT],...") from error
            resolvers.append(("system", self._tune(system)))
        return resolvers

    def _tune(self, resolver: dns.resolver.Resolver) -> dns.resolver.Resolver:
        resolver.lifetime = resolver.timeout = self.timeout
        resolver.search = []
        resolver.use_search_by_default = False
        resolver.cache = None
        resolver.retry_servfail = False
        return resolver

    @property
    def servers(self) -> list[str]:
        """The resolvers' labels, in order: "host:port" or "system"."""
        return [label for label, _ in self._resolvers]

    def cname(self, name: str, until: str | None = None) -> list[Lookup]:
        """Per resolver: the CNAME targets from `name` on, in order (at most 5 hops), lowercase without the final dot.

        With ``until``, the chain is not followed past that target: asking about it would make the resolver
        cache its non-existence (a validation label has no records until an order publishes them), and an
        ACME CA asking the same resolver a moment later would be told NXDOMAIN."""
        stop = _absolute(until) if until else None
        return self._each(lambda resolver: self._cname_chain(resolver, _absolute(name), stop))

    def txt(self, name: str) -> list[Lookup]:
        """Per resolver: the TXT values at `name` (a value's strings joined), following CNAMEs as the resolver does."""
        return self._each(lambda resolver: self._txt(resolver, _absolute(name)))

    def caa(self, name: str) -> tuple[str, list[tuple[int, str, str]]] | None:
        """RFC 8659's relevant CAA RRset for `name`: (node, [(flags, tag, value), ...]) of the closest node with CAA
        records (sorted), climbing towards the root; None when no node has any. Asks the first resolver; DnsLookupError
        when it cannot answer."""
        label, resolver = self._resolvers[0]
        node = _absolute(name.strip().removeprefix("*."))
        while node != dns.name.root:
            try:
                answer = self._ask(resolver, node, dns.rdatatype.CAA)
            except _Failed as failure:
                if failure.reason in ("NXDOMAIN", "no answer"):
                    node = node.parent()
                    continue
                raise DnsLookupError(_text(node), label, failure.reason) from None
            records = sorted((int(rd.flags), rd.tag.decode("ascii", "replace"), rd.value.decode("utf-8", "replace"))
                             for rd in answer)
            return _text(node), records
        return None

    def addresses(self, name: str) -> list[str]:
        """The IPv4 then IPv6 addresses of `name` (A, then AAAA, after the CNAMEs the resolver follows), each once;
        [] when it has none. Asks the first resolver; DnsLookupError when it cannot answer."""
        label, resolver = self._resolvers[0]
        node = _absolute(name)
        found: list[str] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            try:
                rrset = self._ask(resolver, node, rdtype)
            except _Failed as failure:
                if failure.reason == "NXDOMAIN":
                    return []
                if failure.reason == "no answer":
                    continue
                raise DnsLookupError(_text(node), label, failure.reason) from None
            found += [str(rd.address) for rd in rrset if str(rd.address) not in found]
        return found

    # -- helpers

    def _each(self, ask: Callable[[dns.resolver.Resolver], tuple[str, ...]]) -> list[Lookup]:
        def one(entry: tuple[str, dns.resolver.Resolver]) -> Lookup:
            label, resolver = entry
            try:
                return Lookup(label, ask(resolver))
            except _Failed as failure:
                return Lookup(label, (), failure.reason)
            except _Partial as partial:
                return Lookup(label, partial.values, partial.reason)

        if len(self._resolvers) == 1:
            return [one(self._resolvers[0])]
        with ThreadPoolExecutor(max_workers=min(len(self._resolvers), 8)) as pool:
            return list(pool.map(one, self._resolvers))

    def _ask(self, resolver: dns.resolver.Resolver, name: dns.name.Name, rdtype: int) -> dns.rrset.RRset:
        """The answer's RRset of `rdtype` (after the CNAMEs the resolver returned); _Failed naming why there is none."""
        try:
            answer = resolver.resolve(name, dns.rdatatype.RdataType.make(rdtype), search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            raise _Failed("NXDOMAIN") from None
        except dns.resolver.YXDOMAIN:
            raise _Failed("YXDOMAIN") from None
        except dns.resolver.LifetimeTimeout:
            raise _Failed(f"timeout after {self.timeout:g} s") from None
        except dns.resolver.NoNameservers as error:
            raise _Failed(_no_nameservers_reason(error)) from None
        except dns.exception.DNSException as error:
            raise _Failed(str(error) or type(error).__name__) from None
        if answer.rrset is None:
            raise _Failed("no answer")
        return answer.rrset

    def _cname_chain(self, resolver: dns.resolver.Resolver, name: dns.name.Name,
                     stop: dns.name.Name | None = None) -> tuple[str, ...]:
        targets: list[str] = []
        seen = {name}
        for hop in range(MAX_CNAME_HOPS):
            try:
                rrset = self._ask(resolver, name, dns.rdatatype.CNAME)
            except _Failed as failure:
                if hop == 0:
                    raise
                if failure.reason in ("NXDOMAIN", "no answer"):
                    break  # the chain ends: its last target has no CNAME (or does not exist yet)
                raise _Partial(tuple(targets), failure.reason) from None
            if rrset.rdtype != dns.rdatatype.CNAME:
                break
            name = next(iter(rrset)).target
            targets.append(_text(name))
            if name == stop:
                break
            if name in seen:
                raise _Partial(tuple(targets), f"CNAME loop at {_text(name)}")
            seen.add(name)
        return tuple(targets)

    def _txt(self, resolver: dns.resolver.Resolver, name: dns.name.Name) -> tuple[str, ...]:
        rrset = self._ask(resolver, name, dns.rdatatype.TXT)
        return tuple(b"".join(rd.strings).decode("utf-8", "replace") for rd in rrset)


class _Partial(Exception):
    """A CNAME chain that broke after some targets were found."""

    def __init__(self, values: tuple[str, ...], reason: str) -> None:
        super().__init__(reason)
        self.values, self.reason = values, reason


def _no_nameservers_reason(error: dns.resolver.NoNameservers) -> str:
    """The rcode the server answered (SERVFAIL, REFUSED, ...) or its error, from dnspython's NoNameservers."""
    for entry in error.kwargs.get("errors") or []:
        problem = entry[3] if len(entry) > 3 else None
        response = entry[4] if len(entry) > 4 else None
        if response is not None:
            return dns.rcode.to_text(response.rcode())
        if problem is not None:
            return str(problem)
    return "no server answered"
