"""Read models the services hand to the edges (no ORM rows leave the services)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...domain.authority import AuthorityStatus, RevocationSettings, reported_status
from ...store.tables import AuthorityRow

__all__ = ["AuthorityRecord", "authority_record", "revocation_from_json", "revocation_to_json"]


@dataclass(frozen=True, slots=True)
class AuthorityRecord:
    arn: str
    id: str
    account_id: str
    type: str
    status: AuthorityStatus
    usage_mode: str
    key_storage_standard: str
    configuration: dict[str, Any]
    revocation: RevocationSettings
    serial: str | None
    not_before: datetime | None
    not_after: datetime | None
    created_at: datetime
    last_state_change_at: datetime
    failure_reason: str | None
    restorable_until: datetime | None


def revocation_to_json(settings: RevocationSettings) -> dict[str, Any]:
    return dataclasses.asdict(settings)


def revocation_from_json(document: dict[str, Any]) -> RevocationSettings:
    return RevocationSettings(**document)


def authority_record(row: AuthorityRow, now: datetime) -> AuthorityRecord:
    stored = AuthorityStatus(row.status)
    return AuthorityRecord(
        arn=row.arn, id=row.id, account_id=row.account_id, type=row.type,
        status=reported_status(stored, row.not_after, now), usage_mode=row.usage_mode,
        key_storage_standard=row.key_storage_standard, configuration=dict(row.configuration),
        revocation=revocation_from_json(row.revocation), serial=row.serial, not_before=row.not_before,
        not_after=row.not_after, created_at=row.created_at, last_state_change_at=row.last_state_change_at,
        failure_reason=row.failure_reason,
        restorable_until=row.restorable_until if stored is AuthorityStatus.DELETED else None)
