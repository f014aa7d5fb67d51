"""Accounts and access keys: the first start creates an account and an admin key pair."""

from __future__ import annotations

import os
import secrets
import string
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..domain.clock import Clock
from ..domain.errors import InvalidArgsError, ResourceNotFoundError
from ..store.database import Database
from ..store.tables import AccessKeyRow, AccountRow
from .ports import SecretSealer

__all__ = ["CACHE_SECONDS", "AccessKeyInfo", "AccountService", "Credential", "write_credentials_file"]

_KEY_ALPHABET = string.ascii_uppercase + "234567"
CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class AccessKeyInfo:
    access_key_id: str
    account_id: str
    principal: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Credential:
    access_key_id: str
    secret_access_key: str
    account_id: str
    principal: str


class AccountService:
    def __init__(self, database: Database, sealer: SecretSealer, clock: Clock) -> None:
        self._db, self._sealer, self._clock = database, sealer, clock
        self._cache: dict[str, tuple[Credential, float]] = {}

    def bootstrap(self) -> Credential | None:
        """Create the first account and its admin key when there is none; returns the new key or None."""
        now = self._clock.now()
        with self._db.transaction() as session:
            if session.scalars(select(AccountRow).limit(1)).first() is not None:
                return None
            account_id = str(secrets.randbelow(9 * 10**11) + 10**11)
            session.add(AccountRow(id=account_id, created_at=now))
            session.flush()
            return self._add_key(session, account_id, now)

    def create_access_key(self, account_id: str | None = None) -> Credential:
        """A new admin access key for the account (the only one, when there is one)."""
        now = self._clock.now()
        with self._db.transaction() as session:
            account_id = self._account(session, account_id)
            return self._add_key(session, account_id, now)

    def add_access_key(self, session: Session, account_id: str, principal: str) -> Credential:
        """A new access key acting as ``principal`` (an agent's), added in the caller's transaction."""
        return self._add_key(session, account_id, self._clock.now(), principal)

    def forget(self, access_key_id: str) -> None:
        """Drop a key deleted in the caller's transaction from the cache, so it stops working at once here."""
        self._cache.pop(access_key_id, None)

    def access_keys(self, account_id: str | None = None) -> list[AccessKeyInfo]:
        with self._db.read() as session:
            account_id = self._account(session, account_id)
            rows = session.scalars(select(AccessKeyRow).where(AccessKeyRow.account_id == account_id)
                                   .order_by(AccessKeyRow.created_at, AccessKeyRow.access_key_id)).all()
            return [AccessKeyInfo(row.access_key_id, row.account_id, row.principal, row.created_at) for row in rows]

    def revoke_access_key(self, access_key_id: str) -> None:
        """Delete a key; requests signed with it fail within ``CACHE_SECONDS``."""
        with self._db.transaction() as session:
            row = session.get(AccessKeyRow, access_key_id)
            if row is None:
                raise ResourceNotFoundError(f"there is no access key {access_key_id}")
            session.delete(row)
        self._cache.pop(access_key_id, None)

    def _account(self, session: Session, account_id: str | None) -> str:
        ids = list(session.scalars(select(AccountRow.id).order_by(AccountRow.id)))
        if account_id is not None:
            if account_id not in ids:
                raise ResourceNotFoundError(f"there is no account {account_id}")
            return account_id
        if not ids:
            raise ResourceNotFoundError("there is no account yet: start certsmith once to create it")
        if len(ids) > 1:
            raise InvalidArgsError(f"there are {len(ids)} accounts ({', '.join(ids)}): name one")
        return ids[0]

    def _add_key(self, session: Session, account_id: str, now: datetime, principal: str | None = None) -> Credential:
        access_key_id = "CSAK" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
        secret = secrets.token_urlsafe(30)
        principal = principal or f"arn:aws:iam::{account_id}:root"
        session.add(AccessKeyRow(access_key_id=access_key_id, account_id=account_id,
                                 sealed_secret=self._sealer.seal(secret.encode(), access_key_id),
                                 principal=principal, created_at=now))
        return Credential(access_key_id, secret, account_id, principal)

    def credential(self, access_key_id: str) -> Credential | None:
        """The key's secret and account; kept ``CACHE_SECONDS``, so a revoked key stops working soon after."""
        now = time.monotonic()
        cached = self._cache.get(access_key_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        with self._db.read() as session:
            row = session.get(AccessKeyRow, access_key_id)
            if row is None:
                self._cache.pop(access_key_id, None)
                return None
            secret = self._sealer.open(row.sealed_secret, access_key_id).decode()
            credential = Credential(access_key_id, secret, row.account_id, row.principal)
        self._cache[access_key_id] = (credential, now + CACHE_SECONDS)
        return credential


def write_credentials_file(path: Path, credential: Credential, region: str, *, replace: bool = True) -> None:
    """The AWS shared-credentials format, mode 0600; without ``replace``, FileExistsError if the file exists."""
    text = (f"[default]\naws_access_key_id = {credential.access_key_id}\n"
            f"aws_secret_access_key = {credential.secret_access_key}\n"
            f"# account {credential.account_id}, region {region}\n")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL), 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
