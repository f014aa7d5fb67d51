"""Accounts and access keys: the first start creates an account and an admin key pair."""

from __future__ import annotations

import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from ..domain.clock import Clock
from ..store.database import Database
from ..store.tables import AccessKeyRow, AccountRow
from .ports import SecretSealer

__all__ = ["AccountService", "Credential", "write_credentials_file"]

_KEY_ALPHABET = string.ascii_uppercase + "234567"


@dataclass(frozen=True, slots=True)
class Credential:
    access_key_id: str
    secret_access_key: str
    account_id: str
    principal: str


class AccountService:
    def __init__(self, database: Database, sealer: SecretSealer, clock: Clock) -> None:
        self._db, self._sealer, self._clock = database, sealer, clock
        self._cache: dict[str, Credential] = {}

    def bootstrap(self) -> Credential | None:
        """Create the first account and its admin key when there is none; returns the new key or None."""
        now = self._clock.now()
        with self._db.transaction() as session:
            if session.scalars(select(AccountRow).limit(1)).first() is not None:
                return None
            account_id = str(secrets.randbelow(9 * 10**11) + 10**11)
            session.add(AccountRow(id=account_id, created_at=now))
            session.flush()
            access_key_id = "CSAK" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
            secret = secrets.token_urlsafe(30)
            principal = f"arn:aws:iam::{account_id}:root"
            session.add(AccessKeyRow(access_key_id=access_key_id, account_id=account_id,
                                     sealed_secret=self._sealer.seal(secret.encode(), access_key_id),
                                     principal=principal, created_at=now))
            return Credential(access_key_id, secret, account_id, principal)

    def credential(self, access_key_id: str) -> Credential | None:
        cached = self._cache.get(access_key_id)
        if cached is not None:
            return cached
        with self._db.read() as session:
            row = session.get(AccessKeyRow, access_key_id)
            if row is None:
                return None
            secret = self._sealer.open(row.sealed_secret, access_key_id).decode()
            credential = Credential(access_key_id, secret, row.account_id, row.principal)
        self._cache[access_key_id] = credential
        return credential


def write_credentials_file(path: Path, credential: Credential, region: str) -> None:
    """The AWS shared-credentials format, mode 0600."""
    text = (f"[default]\naws_access_key_id = {credential.access_key_id}\n"
            f"aws_secret_access_key = {credential.secret_access_key}\n"
            f"# account {credential.account_id}, region {region}\n")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
