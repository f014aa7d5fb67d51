"""Amazon Route 53 (or a service that speaks its API, such as moto): record sets changed with ChangeResourceRecordSets.

One change batch per hosted zone (atomic there), then GetChange until INSYNC; across zones a failed write undoes
the earlier ones. Without keys in the options, boto3's default credential chain is used.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from certsmith.domain.aws_options import check_aws_access
from certsmith.domain.errors import ValidationError

from .base import DnsProvider, ProviderError, ProviderPlugin, RecordSet, all_or_nothing, in_zone, is_acme_owner, normal_name

__all__ = ["PLUGIN", "Route53Options", "Route53Provider", "quote_txt", "unquote_txt"]

_ZONE_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")
_ESCAPE = re.compile(r"\\([0-7]{3})")
_CREDENTIAL_CODES = frozenset({"InvalidClientTokenId", "SignatureDoesNotMatch", "AccessDenied", "AccessDeniedException",
                               "UnrecognizedClientException", "InvalidAccessKeyId", "ExpiredToken", "ExpiredTokenException",
                               "IncompleteSignature", "MissingAuthenticationToken", "AuthFailure"})


def quote_txt(value: str) -> str:
    """One TXT value as Route 53 writes it: quoted strings of 255 bytes at most, octal escapes outside ASCII."""
    data = value.encode()
    chunks = [data[start:start + 255] for start in range(0, len(data), 255)] or [b""]

    def one(chunk: bytes) -> str:
        out = []
        for byte in chunk:
            char = chr(byte)
            out.append("\\" + char if char in '"\\' else char if 0x20 <= byte < 0x7F else f"\\{byte:03o}")
        return '"' + "".join(out) + '"'

    return " ".join(one(chunk) for chunk in chunks)


def unquote_txt(text: str) -> str:
    """The text of a Route 53 TXT value (one or more quoted strings, joined)."""
    data = bytearray()
    index, quoted = 0, False
    while index < len(text):
        char = text[index]
        if char == "\\" and re.match(r"[0-7]{3}", text[index + 1:index + 4]):
            data.append(int(text[index + 1:index + 4], 8) & 0xFF)
            index += 4
            continue
        if char == "\\" and index + 1 < len(text):
            data += text[index + 1].encode()
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif quoted or not char.isspace():
            data += char.encode()
        index += 1
    return data.decode(errors="backslashreplace")


def _name(text: str) -> str:
    return normal_name(_ESCAPE.sub(lambda found: chr(int(found.group(1), 8)), text))


def _zone_id(value: str) -> str:
    return value.strip().rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class Route53Options:
    """The hosted zone (or how to find it), the credentials (or the default chain) and the endpoint."""

    hosted_zone_id: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    region: str = "us-east-1"
    endpoint_url: str | None = None
    wait_timeout: float = 120.0
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.hosted_zone_id is not None:
            zone_id = _zone_id(self.hosted_zone_id)
            if not _ZONE_ID.match(zone_id):
                raise ValidationError(f"route53 option 'hosted_zone_id': {self.hosted_zone_id!r} is not a hosted zone "
                                      "ID (like Z0123456789ABCDEFGHIJ)", field="hosted_zone_id")
            object.__setattr__(self, "hosted_zone_id", zone_id)
        region = check_aws_access("route53", region=self.region, endpoint_url=self.endpoint_url,
                                  access_key_id=self.access_key_id, secret_access_key=self.secret_access_key,
                                  session_token=self.session_token, example_endpoint="https://route53.example.test")
        object.__setattr__(self, "region", region)
        for field, value, limit in (("wait_timeout", self.wait_timeout, 3600.0), ("timeout", self.timeout, 300.0)):
            if not 0 < value <= limit:
                raise ValidationError(f"route53 option {field!r} must be more than 0 and at most {limit:g} seconds, "
                                      f"not {value}", field=field)


class Route53Provider:
    """Writes records into Route 53 hosted zones."""

    def __init__(self, name: str, options: Route53Options) -> None:
        import boto3
        from botocore.config import Config

        self.name = name
        self.options = options
        session = boto3.session.Session(aws_access_key_id=options.access_key_id,
                                        aws_secret_access_key=options.secret_access_key,
                                        aws_session_token=options.session_token, region_name=options.region)
        config = Config(connect_timeout=options.timeout, read_timeout=options.timeout,
                        retries={"mode": "standard", "max_attempts": 3})
        self._client = session.client("route53", endpoint_url=options.endpoint_url, config=config)
        self._zones: dict[str, tuple[str, str]] = {}
        self._zone_names: dict[str, str] = {}

    def present(self, records: Sequence[RecordSet]) -> None:
        for record in records:
            if not record.values:
                raise ValueError(f"{record.name} {record.type}: a record set to present needs at least one value")
        all_or_nothing([self._present_step(zone_id, group) for zone_id, group in self._by_zone(records).items()])

    def remove(self, records: Sequence[RecordSet]) -> None:
        for zone_id, group in self._by_zone(records).items():
            changes = []
            for record in group:
                current = self._current(zone_id, record.name, record.type)
                if current is None:
                    continue
                left = [value for value in current.values if value not in record.values]
                if record.type == "TXT" and record.values and left:
                    if len(left) < len(current.values):
                        changes.append(_change("UPSERT", RecordSet(current.name, current.type, tuple(left), current.ttl)))
                else:
                    changes.append(_change("DELETE", current))
            if changes:
                self._change(zone_id, changes, group[0].name)

    def lookup(self, name: str, type: str) -> RecordSet | None:
        name = normal_name(name)
        zone_id, _ = self._zone_of(name)
        return self._current(zone_id, name, type.strip().upper())

    def records(self, zone: str | None = None) -> list[RecordSet]:
        found: list[RecordSet] = []
        for zone_id in self._zone_ids(normal_name(zone) if zone else None):
            pages = self._call("get_paginator", None, "list_resource_record_sets")
            for page in self._pages(pages.paginate(HostedZoneId=zone_id), zone):
                for item in page["ResourceRecordSets"]:
                    if is_acme_owner(_name(item["Name"])) and "ResourceRecords" in item:
                        found.append(_record(item))
        return found

    def check(self) -> None:
        if self.options.hosted_zone_id is not None:
            self._zone_name(self.options.hosted_zone_id, None)
        else:
            self._call("list_hosted_zones", None, MaxItems="1")

    def _present_step(self, zone_id: str, group: list[RecordSet]) -> Callable[[], Callable[[], None] | None]:
        def step() -> Callable[[], None] | None:
            before = [(record, self._current(zone_id, record.name, record.type)) for record in group]
            if all(record.same(old) for record, old in before):
                return None
            back = [_change("UPSERT", old) if old else _change("DELETE", record) for record, old in before]
            self._change(zone_id, [_change("UPSERT", record) for record in group], group[0].name, undo=back)
            return lambda: self._change(zone_id, back, group[0].name)

        return step

    def _change(self, zone_id: str, changes: list[dict[str, Any]], about: str,
                undo: list[dict[str, Any]] | None = None) -> None:
        """One change batch, then wait until Route 53 says it is in sync (undoing it with ``undo`` if it never is)."""
        answer = self._call("change_resource_record_sets", about, HostedZoneId=zone_id,
                            ChangeBatch={"Comment": "certsmith", "Changes": changes})
        info = answer["ChangeInfo"]
        deadline = time.monotonic() + self.options.wait_timeout
        pause = 0.2
        while info["Status"] != "INSYNC":
            if time.monotonic() >= deadline:
                if undo:
                    self._call("change_resource_record_sets", about, HostedZoneId=zone_id,
                               ChangeBatch={"Comment": "certsmith (undo)", "Changes": undo})
                raise ProviderError(self.name, about, f"Route 53 did not report change {info['Id']} in sync within "
                                    f"{self.options.wait_timeout:g} s", reason="timeout")
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 5.0)
            info = self._call("get_change", about, Id=info["Id"])["ChangeInfo"]

    def _current(self, zone_id: str, name: str, rtype: str) -> RecordSet | None:
        answer = self._call("list_resource_record_sets", name, HostedZoneId=zone_id, StartRecordName=name + ".",
                            StartRecordType=rtype, MaxItems="1")
        for item in answer["ResourceRecordSets"]:
            if _name(item["Name"]) == name and item["Type"] == rtype and "ResourceRecords" in item:
                return _record(item)
        return None

    def _by_zone(self, records: Sequence[RecordSet]) -> dict[str, list[RecordSet]]:
        groups: dict[str, list[RecordSet]] = {}
        for record in records:
            groups.setdefault(self._zone_of(record.name)[0], []).append(record)
        return groups

    def _zone_of(self, name: str) -> tuple[str, str]:
        """(hosted zone ID, zone name) that holds ``name``: the configured zone, or the longest hosted zone suffix."""
        if name in self._zones:
            return self._zones[name]
        configured = self.options.hosted_zone_id
        if configured is not None:
            zone = self._zone_name(configured, name)
            if not in_zone(name, zone):
                raise ProviderError(self.name, name, f"the name is not in hosted zone {configured} ({zone}): change "
                                    "--hosted-zone-id, or add a provider for the name's zone", reason="zone")
            found = (configured, zone)
        else:
            labels = name.split(".")
            for start in range(len(labels)):
                zone_ids = self._zones_named(".".join(labels[start:]), name)
                if zone_ids:
                    found = (zone_ids[0], ".".join(labels[start:]))
                    break
            else:
                raise ProviderError(self.name, name, "no Route 53 hosted zone holds this name: create the hosted zone, "
                                    "or check that the credentials can see it", reason="zone")
        self._zones[name] = found
        return found

    def _zones_named(self, zone: str, about: str | None) -> list[str]:
        """The IDs of the hosted zones called ``zone`` (a public one first when there are several)."""
        answer = self._call("list_hosted_zones_by_name", about, DNSName=zone + ".", MaxItems="10")
        named = [item for item in answer["HostedZones"] if _name(item["Name"]) == zone]
        public = [item for item in named if not item.get("Config", {}).get("PrivateZone", False)]
        if len(named) > 1 and len(public) != 1:
            raise ProviderError(self.name, about, f"{len(named)} hosted zones are called {zone!r}: set --hosted-zone-id",
                                reason="zone")
        return [_zone_id(item["Id"]) for item in (public or named)]

    def _zone_name(self, zone_id: str, about: str | None) -> str:
        if zone_id not in self._zone_names:
            self._zone_names[zone_id] = _name(self._call("get_hosted_zone", about, Id=zone_id)["HostedZone"]["Name"])
        return self._zone_names[zone_id]

    def _zone_ids(self, zone: str | None) -> list[str]:
        configured = self.options.hosted_zone_id
        if configured is not None:
            if zone is not None and self._zone_name(configured, zone) != zone:
                raise ProviderError(self.name, zone, f"hosted zone {configured} is not {zone!r}: this provider manages "
                                    f"only {self._zone_name(configured, zone)!r}", reason="zone")
            return [configured]
        if zone is not None:
            found = self._zones_named(zone, zone)
            if not found:
                raise ProviderError(self.name, zone, "no Route 53 hosted zone has this name", reason="zone")
            return found[:1]
        pages = self._call("get_paginator", None, "list_hosted_zones")
        return [_zone_id(item["Id"]) for page in self._pages(pages.paginate(), None) for item in page["HostedZones"]]

    def _pages(self, pages: Any, about: str | None) -> Iterator[dict[str, Any]]:
        iterator = iter(pages)
        while True:
            try:
                page = self._call(lambda: next(iterator), about)
            except StopIteration:
                return
            yield page

    def _call(self, operation: str | Callable[[], Any], about: str | None, *args: Any, **kwargs: Any) -> Any:
        """One API call (or ``operation()``), its failures as ProviderError."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError,
            HTTPClientError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        try:
            if callable(operation):
                return operation()
            return getattr(self._client, operation)(*args, **kwargs)
        except ClientError as exc:
            code, text = _error(exc.response)
            if code in _CREDENTIAL_CODES:
                raise ProviderError(self.name, about, f"Route 53 refused the credentials ({code}: {text}): check "
                                    "--aws-access-key-id and --aws-secret-access-key (or the default AWS credentials) "
                                    "and that they may list and change record sets", reason="credentials") from None
            if code in ("NoSuchHostedZone", "HostedZoneNotFound"):
                raise ProviderError(self.name, about, f"no such hosted zone ({text}): check --hosted-zone-id",
                                    reason="zone") from None
            raise ProviderError(self.name, about, f"Route 53 refused the request ({code}: {text})",
                                reason="refused") from None
        except (NoCredentialsError, PartialCredentialsError):
            raise ProviderError(self.name, about, "no AWS credentials: give --aws-access-key-id and "
                                "--aws-secret-access-key, or configure the default AWS credentials",
                                reason="credentials") from None
        except (ConnectionError, HTTPClientError) as exc:
            where = self.options.endpoint_url or "Route 53"
            raise ProviderError(self.name, about, f"cannot reach {where} ({type(exc).__name__}): check --route53-endpoint and "
                                "the network", reason="unreachable") from None
        except BotoCoreError as exc:
            raise ProviderError(self.name, about, f"the Route 53 request failed ({type(exc).__name__}: {exc})",
                                reason="refused") from None


def _error(response: dict[str, Any]) -> tuple[str, str]:
    """(code, message) of an error response; also from the query-style ``Errors`` element some emulators send."""
    error = response.get("Error") or {}
    if not error.get("Code"):
        nested = (response.get("Errors") or {}).get("Error") or {}
        error = nested[0] if isinstance(nested, list) and nested else nested if isinstance(nested, dict) else {}
    return str(error.get("Code", "") or "unknown"), str(error.get("Message", ""))


def _record(item: dict[str, Any]) -> RecordSet:
    rtype = item["Type"]
    raw = [entry["Value"] for entry in item["ResourceRecords"]]
    values = [unquote_txt(value) for value in raw] if rtype == "TXT" else raw
    return RecordSet(_name(item["Name"]), rtype, tuple(values), int(item.get("TTL", 0)))


def _change(action: str, record: RecordSet) -> dict[str, Any]:
    values = [quote_txt(value) for value in record.values] if record.type == "TXT" else \
        [value + "." if record.type == "CNAME" else value for value in record.values]
    return {"Action": action, "ResourceRecordSet": {"Name": record.name + ".", "Type": record.type, "TTL": record.ttl,
                                                    "ResourceRecords": [{"Value": value} for value in values]}}


def _build(name: str, options: Route53Options) -> DnsProvider:
    return Route53Provider(name, options)


PLUGIN = ProviderPlugin(
    kind="route53",
    description="Amazon Route 53 hosted zones (or a service with the same API, given --route53-endpoint)",
    options_type=Route53Options,
    secret_fields=("secret_access_key", "session_token"),
    factory=_build,
)
