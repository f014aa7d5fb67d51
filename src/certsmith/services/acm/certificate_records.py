"""Read models of ACM certificates, and the ListCertificates query with its defaults and filters."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, false, literal, select, tuple_

from ...domain.errors import InvalidNextTokenError
from ...domain.renewal import renewal_eligibility as domain_eligibility
from ...store.tables import CertificateRow

__all__ = ["CertificateFilter", "CertificateRecord", "list_query", "page_token", "renewal_eligibility",
           "token_position"]

# ListCertificates without Includes.keyTypes lists RSA_1024 and RSA_2048 certificates only (§10.11).
DEFAULT_KEY_TYPES = ("RSA_1024", "RSA_2048")


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    arn: str
    type: str
    status: str
    domain_name: str
    names: list[str]
    key_algorithm: str
    authority_arn: str | None
    serial: str | None
    subject: str | None
    issuer: str | None
    signature_algorithm: str | None
    not_before: datetime | None
    not_after: datetime | None
    key_usages: list[str]
    extended_key_usages: list[dict[str, str]]
    options: dict[str, Any]
    exported: bool
    in_use_by: list[str]
    key_pair_origin: str
    failure_reason: str | None
    renewal: dict[str, Any] | None
    revoked_at: datetime | None
    revocation_reason: str | None
    created_at: datetime
    issued_at: datetime | None
    imported_at: datetime | None
    issuer_name: str | None = None
    validations: list[dict[str, Any]] | None = None
    renewal_plan: dict[str, Any] | None = None

    @classmethod
    def of(cls, row: CertificateRow) -> CertificateRecord:
        return cls(row.arn, row.type, row.status, row.domain_name, list(row.names), row.key_algorithm,
                   row.authority_arn, row.serial, row.subject, row.issuer, row.signature_algorithm, row.not_before,
                   row.not_after, list(row.key_usages), list(row.extended_key_usages), dict(row.options),
                   row.exported, list(row.in_use_by), row.key_pair_origin, row.failure_reason, row.renewal,
                   row.revoked_at, row.revocation_reason, row.created_at, row.issued_at, row.imported_at,
                   row.issuer_name, [dict(v) for v in row.validations] if row.validations is not None else None,
                   dict(row.renewal_plan) if row.renewal_plan is not None else None)


def renewal_eligibility(record: CertificateRecord) -> str:
    """ELIGIBLE or INELIGIBLE by the account's rule as last planned (every certificate certsmith issued, or with
    StrictEligibility only those exported or in use), from the certificate as it is now."""
    strict = bool((record.renewal_plan or {}).get("strict"))
    return domain_eligibility(certificate_type=record.type, status=record.status, names=record.names,
                              exported=record.exported, in_use=bool(record.in_use_by), strict=strict)


@dataclass(frozen=True, slots=True)
class CertificateFilter:
    """ListCertificates' filters: each given field narrows the list; values within a field are alternatives."""

    statuses: list[str] = field(default_factory=list)
    key_types: list[str] = field(default_factory=lambda: list(DEFAULT_KEY_TYPES))
    key_usages: list[str] = field(default_factory=list)
    extended_key_usages: list[str] = field(default_factory=list)
    export_option: str | None = None
    managed_by: str | None = None
    descending: bool = True

    def matches_usages(self, row: CertificateRow) -> bool:
        """The usage filters, which look inside the JSON lists (checked in Python)."""
        if self.key_usages and not set(self.key_usages) & set(row.key_usages):
            return False
        names = {e["Name"] for e in row.extended_key_usages}
        return not self.extended_key_usages or bool(set(self.extended_key_usages) & names)


def list_query(account_id: str, region: str, where: CertificateFilter, key_type: str | None,
               after: tuple[datetime, str] | None, limit: int) -> Select[Any]:
    """Candidates of one key type (or of every type) in (created_at, id) order, starting after a position.

    Keyset pagination: certificates added meanwhile never shift or repeat a page. One key type per
    query lets the (account, region, key type, created_at, id) index deliver rows already in order; the
    caller merges the types.
    """
    query = select(CertificateRow).where(CertificateRow.account_id == account_id, CertificateRow.region == region)
    if key_type is not None:
        query = query.where(CertificateRow.key_algorithm == key_type)
    if where.statuses:
        query = query.where(CertificateRow.status.in_(where.statuses))
    if where.export_option:
        query = query.where(CertificateRow.export_option == where.export_option)
    if where.managed_by:
        query = query.where(false())  # certsmith manages no certificate for CloudFront
    position = tuple_(CertificateRow.created_at, CertificateRow.id)
    if after is not None:
        start = tuple_(literal(after[0], CertificateRow.created_at.type), literal(after[1], CertificateRow.id.type))
        query = query.where(position < start if where.descending else position > start)
    order = (CertificateRow.created_at.desc(), CertificateRow.id.desc()) if where.descending else \
        (CertificateRow.created_at.asc(), CertificateRow.id.asc())
    return query.order_by(*order).limit(limit)


def page_token(row: CertificateRow) -> str:
    document = {"created_at": row.created_at.isoformat(), "id": row.id}
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode()


def token_position(token: str | None) -> tuple[datetime, str] | None:
    if token is None:
        return None
    try:
        document = json.loads(base64.urlsafe_b64decode(token.encode()))
        return datetime.fromisoformat(document["created_at"]), str(document["id"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidNextTokenError("NextToken is not a token this service returned", field="NextToken") from None
