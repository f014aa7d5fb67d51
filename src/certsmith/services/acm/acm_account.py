"""ACM's account configuration: how many days before expiry the expiry events start."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from ...domain.clock import Clock
from ...domain.errors import ValidationError
from ...domain.notices import DEFAULT_DAYS_BEFORE_EXPIRY, MAX_DAYS_BEFORE_EXPIRY
from ...store.database import Database
from ...store.tables import AccountConfigurationRow, CertificateRow
from ..context import Caller

__all__ = ["DEFAULT_DAYS_BEFORE_EXPIRY", "AccountConfigurationService"]

IDEMPOTENCY_WINDOW = timedelta(hours=1)


class AccountConfigurationService:
    def __init__(self, database: Database, clock: Clock) -> None:
        self._db, self._clock = database, clock

    def days_before_expiry(self, caller: Caller) -> int:
        with self._db.read() as session:
            row = session.get(AccountConfigurationRow, (caller.account_id, caller.region))
        return DEFAULT_DAYS_BEFORE_EXPIRY if row is None else row.days_before_expiry

    def put(self, caller: Caller, days_before_expiry: int | None, idempotency_token: str) -> None:
        """Set DaysBeforeExpiry; a token used in the last hour keeps the first call's result (§10.8)."""
        if days_before_expiry is None:
            raise ValidationError("Configuration for events is empty.", field="ExpiryEvents")
        if not 1 <= days_before_expiry <= MAX_DAYS_BEFORE_EXPIRY:
            raise ValidationError(f"ExpiryEvents.DaysBeforeExpiry must be between 1 and {MAX_DAYS_BEFORE_EXPIRY}, "
                                  f"not {days_before_expiry}", field="ExpiryEvents.DaysBeforeExpiry")
        now = self._clock.now()
        with self._db.transaction() as session:
            row = session.get(AccountConfigurationRow, (caller.account_id, caller.region))
            if row is None:
                session.add(AccountConfigurationRow(account_id=caller.account_id, region=caller.region,
                                                    days_before_expiry=days_before_expiry,
                                                    idempotency_token=idempotency_token, updated_at=now))
            elif row.idempotency_token == idempotency_token and row.updated_at > now - IDEMPOTENCY_WINDOW:
                return
            else:
                row.days_before_expiry, row.idempotency_token, row.updated_at = days_before_expiry, idempotency_token, now
            # The notice sweep looks at the account's certificates again: their Approaching Expiration days moved.
            session.execute(update(CertificateRow).where(
                CertificateRow.account_id == caller.account_id, CertificateRow.region == caller.region,
                CertificateRow.next_notice_at > now).values(next_notice_at=now))
