"""RFC 2136 dynamic updates signed with TSIG (BIND, Knot, PowerDNS, Windows DNS with a key, ...).

One UPDATE message per zone (atomic there); across zones a failed write undoes the earlier ones. Every
question goes to the configured server itself over TCP, so what it says is the authoritative answer.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.tsig
import dns.update
import dns.xfr

from certsmith.domain.errors import ValidationError

from .base import (
    DnsProvider,
    ProviderError,
    ProviderPlugin,
    RecordSet,
    all_or_nothing,
    in_zone,
    is_acme_owner,
    normal_name,
    txt_chunks,
)

__all__ = ["ALGORITHMS", "PLUGIN", "Rfc2136Options", "Rfc2136Provider", "split_server"]

ALGORITHMS: dict[str, dns.name.Name] = {
    "hmac-md5": dns.tsig.HMAC_MD5, "hmac-sha1": dns.tsig.HMAC_SHA1, "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha256": dns.tsig.HMAC_SHA256, "hmac-sha384": dns.tsig.HMAC_SHA384, "hmac-sha512": dns.tsig.HMAC_SHA512,
}
_BRACKETED = re.compile(r"^\[([^\]]+)\](?::([0-9]+))?$")
_BASE64 = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")


def split_server(text: str) -> tuple[str, int]:
    """(IP address, port) of "HOST", "HOST:PORT", "[IPV6]:PORT" or a bare IPv6 address; ValueError otherwise."""
    text = text.strip()
    bracketed = _BRACKETED.match(text)
    if bracketed:
        host, port_text = bracketed.group(1), bracketed.group(2)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"server {text!r} must be an IP address (host names are not resolved), as HOST or HOST:PORT, "
                         "an IPv6 address as [ADDRESS]:PORT") from None
    if port_text is not None and (not port_text.isdigit() or not 0 < int(port_text) < 65536):
        raise ValueError(f"server {text!r}: the port must be a number from 1 to 65535")
    return str(address), int(port_text) if port_text is not None else 53


def _dns_name(text: str, field: str) -> str:
    try:
        name = dns.name.from_text(text.strip())
    except dns.exception.DNSException as exc:
        raise ValidationError(f"rfc2136 option {field!r}: {text!r} is not a valid DNS name ({exc})", field=field) from exc
    return normal_name(name.to_text())


@dataclass(frozen=True, slots=True)
class Rfc2136Options:
    """Where to send updates and the TSIG key that signs them."""

    server: str
    tsig_name: str
    tsig_secret: str
    tsig_algorithm: str = "hmac-sha256"
    zone: str | None = None
    timeout: float = 5.0

    def __post_init__(self) -> None:
        try:
            host, port = split_server(self.server)
        except ValueError as exc:
            raise ValidationError(f"rfc2136 option 'server': {exc}", field="server") from None
        object.__setattr__(self, "server", f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        object.__setattr__(self, "tsig_name", _dns_name(self.tsig_name, "tsig_name"))
        if not self.tsig_name:
            raise ValidationError("rfc2136 option 'tsig_name' must name the TSIG key", field="tsig_name")
        try:
            if not _BASE64.match(self.tsig_secret.strip()):
                raise ValueError("not base64")
            secret = base64.b64decode(self.tsig_secret.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError("rfc2136 option 'tsig_secret' is not base64 (give the secret that tsig-keygen or "
                                  "keymgr printed)", field="tsig_secret") from None
        if not secret:
            raise ValidationError("rfc2136 option 'tsig_secret' is empty", field="tsig_secret")
        object.__setattr__(self, "tsig_secret", self.tsig_secret.strip())
        algorithm = self.tsig_algorithm.strip().lower().rstrip(".")
        algorithm = "hmac-md5" if algorithm == "hmac-md5.sig-alg.reg.int" else algorithm
        if algorithm not in ALGORITHMS:
            raise ValidationError(f"rfc2136 option 'tsig_algorithm': unknown algorithm {self.tsig_algorithm!r} "
                                  f"(known: {', '.join(ALGORITHMS)})", field="tsig_algorithm")
        object.__setattr__(self, "tsig_algorithm", algorithm)
        if self.zone is not None:
            zone = _dns_name(self.zone, "zone")
            if not zone:
                raise ValidationError("rfc2136 option 'zone' cannot be the root zone", field="zone")
            object.__setattr__(self, "zone", zone)
        if not 0 < self.timeout <= 300:
            raise ValidationError(f"rfc2136 option 'timeout' must be more than 0 and at most 300 seconds, not "
                                  f"{self.timeout}", field="timeout")


def _value(rdata: dns.rdata.Rdata) -> str:
    if isinstance(rdata, dns.rdtypes.ANY.TXT.TXT):
        return b"".join(rdata.strings).decode(errors="backslashreplace")
    target = getattr(rdata, "target", None)
    return normal_name(target.to_text()) if isinstance(target, dns.name.Name) else rdata.to_text()


def _rdataset(record: RecordSet) -> dns.rdataset.Rdataset:
    rdtype = dns.rdatatype.from_text(record.type)
    rdatas: list[dns.rdata.Rdata] = []
    for value in record.values:
        if rdtype == dns.rdatatype.TXT:
            rdatas.append(dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, rdtype, txt_chunks(value)))
        else:
            text = value + "." if rdtype == dns.rdatatype.CNAME else value
            rdatas.append(dns.rdata.from_text(dns.rdataclass.IN, rdtype, text))
    return dns.rdataset.from_rdata_list(record.ttl, rdatas)


class Rfc2136Provider:
    """Writes records with TSIG-signed RFC 2136 updates to one DNS server."""

    def __init__(self, name: str, options: Rfc2136Options) -> None:
        self.name = name
        self.options = options
        self._host, self._port = split_server(options.server)
        self._key = dns.tsig.Key(options.tsig_name, options.tsig_secret, ALGORITHMS[options.tsig_algorithm])
        self._zones: dict[str, str] = {}

    def present(self, records: Sequence[RecordSet]) -> None:
        for record in records:
            if not record.values:
                raise ValueError(f"{record.name} {record.type}: a record set to present needs at least one value")
        groups = self._by_zone(records)
        all_or_nothing([self._present_step(zone, group) for zone, group in groups.items()])

    def remove(self, records: Sequence[RecordSet]) -> None:
        for zone, group in self._by_zone(records).items():
            update = dns.update.UpdateMessage(zone + ".", keyring=self._key)
            for record in group:
                if record.type == "TXT" and record.values:
                    update.delete(record.name + ".", _rdataset(record))
                else:
                    update.delete(record.name + ".", record.type)
            self._update(update, zone, group[0].name)

    def lookup(self, name: str, type: str) -> RecordSet | None:
        name = normal_name(name)
        self._zone_of(name)
        return self._ask(name, type.strip().upper())

    def records(self, zone: str | None = None) -> list[RecordSet]:
        wanted = normal_name(zone) if zone else self.options.zone
        if not wanted:
            raise ProviderError(self.name, None, "give the zone to list: this provider has no --zone and a DNS server "
                                "does not say which zones it holds", reason="zone")
        self._confirm(wanted, wanted)
        found: dict[tuple[str, str], RecordSet] = {}
        try:
            for message in dns.query.xfr(self._host, wanted + ".", port=self._port, keyring={self._key.name: self._key},
                                         keyname=self._key.name, keyalgorithm=self._key.algorithm, relativize=False,
                                         timeout=self.options.timeout, lifetime=self.options.timeout * 4):
                for rrset in message.answer:
                    owner = normal_name(rrset.name.to_text())
                    if is_acme_owner(owner):  # a transfer may carry the records of one set in several rrsets
                        rtype = dns.rdatatype.to_text(rrset.rdtype)
                        earlier = found[owner, rtype].values if (owner, rtype) in found else ()
                        found[owner, rtype] = RecordSet(owner, rtype, (*earlier, *(_value(rdata) for rdata in rrset)),
                                                        rrset.ttl)
        except dns.xfr.TransferError as exc:
            raise ProviderError(self.name, wanted, f"the server refused a zone transfer to key {self.options.tsig_name!r} "
                                f"({dns.rcode.to_text(exc.rcode)}): allow it (BIND: allow-transfer {{ key "
                                f"\"{self.options.tsig_name}\"; }}; Knot: an acl with action transfer)",
                                reason="refused") from None
        except (dns.exception.DNSException, OSError) as exc:
            raise self._failure(exc, wanted, wanted, "transfer") from None
        return list(found.values())

    def check(self) -> None:
        zone = self.options.zone
        if zone is None:  # BIND checks the key of any signed query; Knot only inside its zones (it answers unsigned)
            query = dns.message.make_query(".", "SOA")
            query.use_tsig(self._key)
            try:
                dns.query.tcp(query, self._host, port=self._port, timeout=self.options.timeout)
            except dns.exception.FormError:
                return  # reachable; the key is checked at the first update (set --zone to check it here)
            except (dns.exception.DNSException, OSError) as exc:
                raise self._failure(exc, None) from None
            return
        self._confirm(zone, zone)
        update = dns.update.UpdateMessage(zone + ".", keyring=self._key)
        update.present(zone + ".", "SOA")  # a prerequisite and no change: the key's right to update is checked
        self._update(update, zone, zone)

    def _present_step(self, zone: str, group: list[RecordSet]) -> Callable[[], Callable[[], None] | None]:
        def step() -> Callable[[], None] | None:
            before = {(record.name, record.type): self._ask(record.name, record.type) for record in group}
            if all(record.same(before[record.name, record.type]) for record in group):
                return None
            update = dns.update.UpdateMessage(zone + ".", keyring=self._key)
            for record in group:
                update.replace(record.name + ".", _rdataset(record))
            self._update(update, zone, group[0].name)

            def undo() -> None:
                back = dns.update.UpdateMessage(zone + ".", keyring=self._key)
                for (name, rtype), old in before.items():
                    if old is None:
                        back.delete(name + ".", rtype)
                    else:
                        back.replace(name + ".", _rdataset(old))
                self._update(back, zone, group[0].name)

            try:
                self._wait_visible(group)
            except ProviderError:
                undo()
                raise
            return undo

        return step

    def _wait_visible(self, group: Sequence[RecordSet]) -> None:
        deadline = time.monotonic() + self.options.timeout
        pending = list(group)
        while pending:
            pending = [record for record in pending if not record.same(self._ask(record.name, record.type))]
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise ProviderError(self.name, pending[0].name, f"the server accepted the update but does not answer the "
                                    f"new {pending[0].type} records after {self.options.timeout:g} s (a CNAME cannot "
                                    "share its name with other records)", reason="timeout")
            time.sleep(0.05)

    def _by_zone(self, records: Sequence[RecordSet]) -> dict[str, list[RecordSet]]:
        groups: dict[str, list[RecordSet]] = {}
        for record in records:
            groups.setdefault(self._zone_of(record.name), []).append(record)
        return groups

    def _zone_of(self, name: str) -> str:
        """The zone on the server that holds ``name``: the configured one, or found by asking for SOA records."""
        if name in self._zones:
            return self._zones[name]
        zone = self.options.zone
        if zone is not None:
            if not in_zone(name, zone):
                raise ProviderError(self.name, name, f"the name is not in zone {zone!r}, the zone this provider updates "
                                    "(change --zone, or add a provider for the name's zone)", reason="zone")
            self._confirm(zone, name)
        else:
            labels = name.split(".")
            for start in range(len(labels)):
                zone = self._soa_zone(".".join(labels[start:]), name)
                if zone is not None:
                    break
            if zone is None:
                raise ProviderError(self.name, name, f"the DNS server {self.options.server} holds no zone for this name: "
                                    "add the zone to the server, or point the provider at the server that holds it",
                                    reason="zone")
        self._zones[name] = zone
        return zone

    def _confirm(self, zone: str, name: str) -> None:
        if self._soa_zone(zone, name) != zone:
            raise ProviderError(self.name, name, f"the DNS server {self.options.server} is not authoritative for zone "
                                f"{zone!r}: check --zone and that the server serves that zone", reason="zone")

    def _soa_zone(self, candidate: str, name: str) -> str | None:
        """The zone the server says ``candidate`` is in (from an authoritative SOA answer), or None."""
        response = self._query(candidate, "SOA", name)
        if not response.flags & dns.flags.AA or response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            return None
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.SOA and normal_name(rrset.name.to_text()) == candidate:
                return candidate
        for rrset in response.authority:
            owner = normal_name(rrset.name.to_text())
            if rrset.rdtype == dns.rdatatype.SOA and owner and in_zone(candidate, owner):
                return owner
        return None

    def _ask(self, name: str, rtype: str) -> RecordSet | None:
        response = self._query(name, rtype, name)
        if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise ProviderError(self.name, name, f"the server answered {dns.rcode.to_text(response.rcode())} to a "
                                f"{rtype} query", reason="refused")
        code = dns.rdatatype.from_text(rtype)
        for rrset in response.answer:
            if rrset.rdtype == code and normal_name(rrset.name.to_text()) == name:
                return RecordSet(name, rtype, tuple(_value(rdata) for rdata in rrset), rrset.ttl)
        return None

    def _query(self, name: str, rtype: str, about: str) -> dns.message.Message:
        query = dns.message.make_query(name + ".", rtype)
        query.flags &= ~dns.flags.RD
        return self._send(query, about)

    def _update(self, update: dns.update.UpdateMessage, zone: str, about: str) -> None:
        rcode = self._send(update, about, zone).rcode()
        if rcode == dns.rcode.NOERROR:
            return
        key = self.options.tsig_name
        if rcode in (dns.rcode.REFUSED, dns.rcode.NOTAUTH):
            raise ProviderError(self.name, about, f"the server refused to let key {key!r} update zone {zone!r} "
                                f"({dns.rcode.to_text(rcode)}): allow the key to update the zone (BIND: allow-update or "
                                "update-policy; Knot: an acl with action update)", reason="credentials")
        if rcode == dns.rcode.NOTZONE:
            raise ProviderError(self.name, about, f"the name is not in zone {zone!r} on the server", reason="zone")
        raise ProviderError(self.name, about, f"the server refused the update of zone {zone!r} "
                            f"({dns.rcode.to_text(rcode)})", reason="refused")

    def _send(self, message: dns.message.Message, about: str | None, zone: str | None = None) -> dns.message.Message:
        try:
            return dns.query.tcp(message, self._host, port=self._port, timeout=self.options.timeout)
        except (dns.exception.DNSException, OSError) as exc:
            raise self._failure(exc, about, zone) from None

    def _failure(self, exc: Exception, about: str | None, zone: str | None = None, action: str = "update") -> ProviderError:
        """A ProviderError for what went wrong talking to the server (never the secret)."""
        server, key = self.options.server, self.options.tsig_name
        if isinstance(exc, dns.tsig.PeerBadKey):  # Knot also answers so for a known key the zone's acl does not name
            where = f" for zone {zone!r}" if zone else ""
            rights = f", and that the server lets this key {action} the zone" if zone else ""
            return ProviderError(self.name, about, f"the server does not accept the TSIG key {key!r} with algorithm "
                                 f"{self.options.tsig_algorithm}{where}: check --tsig-name and --tsig-algorithm{rights}",
                                 reason="credentials")
        if isinstance(exc, dns.tsig.PeerBadSignature | dns.tsig.BadSignature):
            return ProviderError(self.name, about, f"the server refused the TSIG key {key!r}: check --tsig-name and "
                                 "--tsig-secret", reason="credentials")
        if isinstance(exc, dns.tsig.PeerBadTime):
            return ProviderError(self.name, about, "the server refused the request's time: check the clocks of this "
                                 "machine and of the server", reason="credentials")
        if isinstance(exc, dns.tsig.PeerError):
            return ProviderError(self.name, about, f"the server refused the TSIG key {key!r} ({exc})",
                                 reason="credentials")
        if isinstance(exc, dns.exception.Timeout | TimeoutError):
            return ProviderError(self.name, about, f"the DNS server {server} did not answer within "
                                 f"{self.options.timeout:g} s: check --rfc2136 and that the server is running",
                                 reason="unreachable")
        if isinstance(exc, OSError):
            return ProviderError(self.name, about, f"cannot reach the DNS server {server} "
                                 f"({exc.strerror or type(exc).__name__}): check --rfc2136 and that the server is running",
                                 reason="unreachable")
        return ProviderError(self.name, about, f"the DNS server {server} sent an answer certsmith cannot use "
                             f"({type(exc).__name__}: {exc})", reason="refused")


def _build(name: str, options: Rfc2136Options) -> DnsProvider:
    return Rfc2136Provider(name, options)


PLUGIN = ProviderPlugin(
    kind="rfc2136",
    description="RFC 2136 dynamic updates signed with a TSIG key (BIND, Knot, PowerDNS, ...)",
    options_type=Rfc2136Options,
    secret_fields=("tsig_secret",),
    factory=_build,
)
