"""SearchCertificates: And/Or/Not trees of filters over X.509 attributes and ACM metadata."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ...domain.errors import ValidationError
from ...store.database import Database
from ...store.tables import CertificateRow
from ..context import Caller
from ..pca.lookup import decode_token, encode_token
from .certificate_records import CertificateRecord, renewal_eligibility

__all__ = ["CertificateSearch", "check_statement", "matches"]

MAX_CHILDREN = 15
MAX_DEPTH = 10


def _one(document: Any, path: str) -> tuple[str, Any]:
    """The single member of a union structure; ValidationError naming the path otherwise."""
    members = [(k, v) for k, v in (document or {}).items() if v is not None] if isinstance(document, dict) else []
    if len(members) != 1:
        raise ValidationError(f"{path} must have exactly one member, not {len(members)}", field=path)
    return members[0]


def check_statement(statement: Any, path: str = "FilterStatement", depth: int = 0) -> None:
    """Reject malformed trees before any certificate is looked at."""
    if depth > MAX_DEPTH:
        raise ValidationError(f"{path} nests deeper than {MAX_DEPTH} levels", field=path)
    kind, value = _one(statement, path)
    if kind in ("And", "Or"):
        if not 1 <= len(value) <= MAX_CHILDREN:
            raise ValidationError(f"{path}.{kind} must hold 1 to {MAX_CHILDREN} statements", field=f"{path}.{kind}")
        for index, child in enumerate(value):
            check_statement(child, f"{path}.{kind}[{index}]", depth + 1)
    elif kind == "Not":
        check_statement(value, f"{path}.Not", depth + 1)
    else:
        member, inner = _one(value, f"{path}.Filter")
        if member != "CertificateArn":
            name, condition = _one(inner, f"{path}.Filter.{member}")
            if name in ("Subject", "SubjectAlternativeName"):
                _one(condition, f"{path}.Filter.{member}.{name}")


def _text(condition: dict[str, Any], values: list[str]) -> bool:
    wanted = str(condition["Value"]).lower()
    if condition["ComparisonOperator"] == "EQUALS":
        return any(v.lower() == wanted for v in values)
    return any(wanted in v.lower() for v in values)


def _in_range(value: datetime | None, window: dict[str, Any]) -> bool:
    if value is None:
        return False
    return (window.get("Start") is None or value >= window["Start"]) and \
        (window.get("End") is None or value <= window["End"])


def _usage(wanted: str, present: list[str]) -> bool:
    if wanted == "ANY":
        return bool(present)
    if wanted == "NONE":
        return not present
    return wanted in present


def _x509(record: CertificateRecord, name: str, condition: Any) -> bool:
    if record.serial is None:  # no certificate yet: no X.509 attribute matches
        return False
    checks: dict[str, Callable[[], bool]] = {
        "Subject": lambda: _text(condition["CommonName"], [record.domain_name] if record.subject and
                                 "CN=" in record.subject else []),
        "SubjectAlternativeName": lambda: _text(condition["DnsName"], record.names),
        "ExtendedKeyUsage": lambda: _usage(condition, [e["Name"] for e in record.extended_key_usages]),
        "KeyUsage": lambda: _usage(condition, record.key_usages),
        "KeyAlgorithm": lambda: record.key_algorithm == condition,
        "SerialNumber": lambda: (record.serial or "").lower() == str(condition).lower(),
        "NotAfter": lambda: _in_range(record.not_after, condition),
        "NotBefore": lambda: _in_range(record.not_before, condition),
    }
    return checks[name]()


def _metadata(record: CertificateRecord, name: str, condition: Any) -> bool:
    values: dict[str, Any] = {
        "Status": record.status, "RenewalStatus": (record.renewal or {}).get("RenewalStatus"), "Type": record.type,
        "InUse": bool(record.in_use_by), "Exported": record.exported,
        "ExportOption": record.options.get("Export", "DISABLED"),
        "CertificateKeyPairOrigin": record.key_pair_origin,
    }
    return name in values and values[name] == condition


def matches(statement: dict[str, Any], record: CertificateRecord) -> bool:
    kind, value = next((k, v) for k, v in statement.items() if v is not None)
    if kind == "And":
        return all(matches(child, record) for child in value)
    if kind == "Or":
        return any(matches(child, record) for child in value)
    if kind == "Not":
        return not matches(value, record)
    member, inner = next((k, v) for k, v in value.items() if v is not None)
    if member == "CertificateArn":
        return bool(record.arn == inner)
    name, condition = next((k, v) for k, v in inner.items() if v is not None)
    return _x509(record, name, condition) if member == "X509AttributeFilter" else _metadata(record, name, condition)


_SORT_KEYS: dict[str, Callable[[CertificateRecord], Any]] = {
    "CREATED_AT": lambda r: r.created_at, "NOT_AFTER": lambda r: r.not_after, "NOT_BEFORE": lambda r: r.not_before,
    "STATUS": lambda r: r.status, "RENEWAL_STATUS": lambda r: (r.renewal or {}).get("RenewalStatus"),
    "EXPORTED": lambda r: r.exported, "IN_USE": lambda r: bool(r.in_use_by), "KEY_ALGORITHM": lambda r: r.key_algorithm,
    "TYPE": lambda r: r.type, "CERTIFICATE_ARN": lambda r: r.arn, "COMMON_NAME": lambda r: r.domain_name,
    "REVOKED_AT": lambda r: r.revoked_at, "RENEWAL_ELIGIBILITY": renewal_eligibility,
    "ISSUED_AT": lambda r: r.issued_at, "EXPORT_OPTION": lambda r: r.options.get("Export", "DISABLED"),
    "IMPORTED_AT": lambda r: r.imported_at, "CERTIFICATE_KEY_PAIR_ORIGIN": lambda r: r.key_pair_origin,
}


class CertificateSearch:
    def __init__(self, database: Database) -> None:
        self._db = database

    def search(self, caller: Caller, statement: dict[str, Any] | None, max_results: int | None,
               next_token: str | None, sort_by: str | None, sort_order: str | None) -> tuple[
                   list[tuple[CertificateRecord, str | None]], str | None]:
        """A page of (record, certificate PEM) matching the statement, sorted (newest first by default)."""
        if statement is not None:
            check_statement(statement)
        offset = decode_token(next_token)
        with self._db.read() as session:
            rows = list(session.scalars(select(CertificateRow).where(CertificateRow.account_id == caller.account_id,
                                                                     CertificateRow.region == caller.region)))
        found = [(CertificateRecord.of(row), row.certificate_pem) for row in rows]
        if statement is not None:
            found = [item for item in found if matches(statement, item[0])]
        key = _SORT_KEYS.get(sort_by or "CREATED_AT", _SORT_KEYS["CREATED_AT"])
        descending = (sort_order or ("DESCENDING" if sort_by is None else "ASCENDING")) == "DESCENDING"
        # None sorts last whichever the order: (value is None, value) keeps types comparable.
        present = [item for item in found if key(item[0]) is not None]
        absent = [item for item in found if key(item[0]) is None]
        present.sort(key=lambda item: (key(item[0]), item[0].arn), reverse=descending)
        ordered = present + absent
        page = max_results or 100
        token = encode_token(offset + page) if len(ordered) > offset + page else None
        return ordered[offset:offset + page], token
