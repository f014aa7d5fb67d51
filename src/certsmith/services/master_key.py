"""Opening the master key against the database at start, and rotating it (re-sealing every secret)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ..domain.clock import Clock
from ..domain.errors import InternalError
from ..keys.master_key import (
    MasterKeyError,
    MasterKeySource,
    check_value,
    new_key,
    opens_check_value,
    read_key_file,
    write_key_file,
)
from ..keys.sealing import KeySealer
from ..store.database import Database
from ..store.tables import (
    AccessKeyRow,
    AuthorityRow,
    CertificateRow,
    CertificateVersionRow,
    DeployBindingRow,
    DnsProviderRow,
    EventTargetRow,
    InstallationSecretRow,
    IssuerRow,
    KeyPoolRow,
    MasterKeyCheckRow,
)

__all__ = ["SEALED_COLUMNS", "RotationResult", "SealedColumn", "open_master_key", "rotate_master_key"]

_RESTORE_HINT = "restore it from your backup (docs/backup.md); certsmith will not make a new one, as it could not open them"


@dataclass(frozen=True, slots=True)
class SealedColumn:
    """A column of sealed secrets, and the column naming the resource each is bound to.

    ``resource`` is a column of ``table``, or of ``through`` = (another table, its key, the column of ``table`` that
    refers to it) when the resource's name lives there; ``identity`` is the row's own key when it is not ``resource``.
    """

    table: Any
    sealed: str
    resource: str
    identity: str | None = None
    through: tuple[Any, str, str] | None = None

    @property
    def name(self) -> str:
        return str(self.table.__tablename__)

    def rows(self) -> Any:
        """A query of (row identity, resource name, sealed value) for every row that holds a secret."""
        sealed = getattr(self.table, self.sealed)
        identity = getattr(self.table, self.identity or self.resource)
        if self.through is None:
            return select(identity, getattr(self.table, self.resource), sealed).where(sealed.is_not(None))
        other, key, refers = self.through
        return (select(identity, getattr(other, self.resource), sealed)
                .join(other, getattr(other, key) == getattr(self.table, refers)).where(sealed.is_not(None)))

    def reseal(self, identity: Any, value: bytes) -> Any:
        """The statement that stores ``value`` as the sealed secret of the row ``identity``."""
        return update(self.table).where(getattr(self.table, self.identity or self.resource) == identity).values(
            {self.sealed: value})


# Every secret sealed under the master key. A new table with sealed secrets is listed here, so
# that start-up counts it and a rotation re-seals it.
SEALED_COLUMNS: list[SealedColumn] = [
    SealedColumn(AccessKeyRow, "sealed_secret", "access_key_id"),
    SealedColumn(AuthorityRow, "sealed_key", "arn"),
    SealedColumn(CertificateRow, "sealed_key", "arn"),
    SealedColumn(KeyPoolRow, "sealed_key", "id"),
    SealedColumn(IssuerRow, "sealed_account_key", "arn"),
    SealedColumn(IssuerRow, "sealed_eab_key", "arn"),
    SealedColumn(InstallationSecretRow, "sealed_value", "name"),
    SealedColumn(DnsProviderRow, "sealed_secrets", "arn"),
    SealedColumn(EventTargetRow, "secret", "id"),
    SealedColumn(DeployBindingRow, "sealed_secrets", "arn"),
    # an earlier version's key, sealed under its certificate's ARN (kept for deploying that version again)
    SealedColumn(CertificateVersionRow, "sealed_key", "arn", identity="id",
                 through=(CertificateRow, "id", "certificate_id")),
]


def open_master_key(source: MasterKeySource, database: Database, clock: Clock) -> bytes:
    """The master key that opens this database's secrets; raises MasterKeyError in plain words.

    A fresh database gets a new key (written to ``master.key`` unless the setting gives one). A
    database with secrets never does: its key must be there, and must be the one that sealed them.
    """
    key = source.read()
    with database.read() as session:
        stored = session.scalars(select(MasterKeyCheckRow.check_value).where(MasterKeyCheckRow.id == 1)).first()
        holds_secrets = stored is not None or _count_sealed(session) > 0
    if stored is not None:
        if key is not None and opens_check_value(key, stored):
            return key
        pending = None if source.from_setting else read_key_file(source.pending_path)
        if pending is not None and opens_check_value(pending, stored):
            os.replace(source.pending_path, source.path)  # a rotation committed; finish its last step
            return pending
        if key is None:
            raise MasterKeyError(f"this database holds keys sealed under a master key, but {source.describe()} "
                                 f"is missing: {_RESTORE_HINT}")
        raise MasterKeyError(f"{source.describe()} is not the master key that sealed this database's keys: "
                             f"{_RESTORE_HINT}")
    if holds_secrets:  # sealed before check values were kept: the key must open one of them
        if key is None:
            raise MasterKeyError(f"this database holds keys sealed under a master key, but {source.describe()} "
                                 f"is missing: {_RESTORE_HINT}")
        if not _opens_a_secret(database, key):
            raise MasterKeyError(f"{source.describe()} is not the master key that sealed this database's keys: "
                                 f"{_RESTORE_HINT}")
    elif key is None:
        key = source.create()
    _store_check_value(database, key, clock)
    return key


@dataclass(frozen=True, slots=True)
class RotationResult:
    resealed: dict[str, int]
    key_path: str
    old_key: bytes = field(repr=False)  # for what is sealed outside the database (the server's TLS key files)
    new_key: bytes = field(repr=False)


def rotate_master_key(source: MasterKeySource, database: Database, clock: Clock) -> RotationResult:
    """Re-seal every secret under a new master key, in one transaction.

    The new key is written to ``master.key.new`` first; after the commit it replaces ``master.key``.
    A crash between the two leaves both files, and the next start finishes the rename. With the key in
    the ``master_key`` setting, the new key stays in ``master.key.new`` for the operator to move there.
    """
    old = open_master_key(source, database, clock)
    if source.pending_path.exists():
        raise MasterKeyError(f"{source.pending_path} exists: a rotation did not finish. Start certsmith once "
                             "(it finishes a committed rotation), or remove the file if the rotation never committed")
    new = new_key()
    write_key_file(source.pending_path, new)
    old_sealer, new_sealer = KeySealer(old), KeySealer(new)
    counts: dict[str, int] = {}
    try:
        with database.transaction() as session:
            for column in SEALED_COLUMNS:
                rows = session.execute(column.rows()).all()
                for identity, resource, sealed in rows:
                    plaintext = old_sealer.open(sealed, resource)
                    session.execute(column.reseal(identity, new_sealer.seal(plaintext, resource)))
                counts[column.name] = counts.get(column.name, 0) + len(rows)
            session.execute(update(MasterKeyCheckRow).where(MasterKeyCheckRow.id == 1)
                            .values(check_value=check_value(new), rotated_at=clock.now()))
    except BaseException:
        source.pending_path.unlink(missing_ok=True)  # nothing was committed under the new key
        raise
    if source.from_setting:
        return RotationResult(counts, str(source.pending_path), old, new)
    os.replace(source.pending_path, source.path)
    return RotationResult(counts, str(source.path), old, new)


def _count_sealed(session: Any) -> int:
    total = 0
    for column in SEALED_COLUMNS:
        sealed_attr = getattr(column.table, column.sealed)
        total += session.scalar(select(func.count()).select_from(column.table).where(sealed_attr.is_not(None))) or 0
    return total


def _opens_a_secret(database: Database, key: bytes) -> bool:
    sealer = KeySealer(key)
    with database.read() as session:
        for column in SEALED_COLUMNS:
            row = session.execute(column.rows().limit(1)).first()
            if row is not None:
                try:
                    sealer.open(row[2], row[1])
                except InternalError:
                    return False
                return True
    return False


def _store_check_value(database: Database, key: bytes, clock: Clock) -> None:
    try:
        with database.transaction() as session:
            session.add(MasterKeyCheckRow(id=1, check_value=check_value(key), created_at=clock.now(), rotated_at=None))
    except IntegrityError:  # another process stored it first; it must be the same key
        with database.read() as session:
            stored = session.scalars(select(MasterKeyCheckRow.check_value).where(MasterKeyCheckRow.id == 1)).one()
        if not opens_check_value(key, stored):
            raise MasterKeyError("another certsmith process started on this database with a different master key") from None
