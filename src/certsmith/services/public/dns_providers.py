"""DNS providers of an account: where certsmith writes validation records, their secrets sealed at rest."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...dns.providers import DnsProvider, ProviderError, plugin
from ...domain.arns import partition_of
from ...domain.clock import Clock
from ...domain.errors import ConflictError, DnsProviderError, ResourceInUseError, ResourceNotFoundError, ValidationError
from ...store.database import Database
from ...store.tables import DnsProviderRow, IssuerRow
from ..context import Caller
from ..pca.lookup import decode_token, encode_token
from ..ports import SecretSealer

__all__ = ["DnsProviderRecord", "DnsProviderService", "provider_failure"]

@dataclass(frozen=True, slots=True)
class DnsProviderRecord:
    name: str
    arn: str
    kind: str
    options: dict[str, Any]  # the public options; secrets are never shown
    secrets_set: list[str]  # the names of the secret options that are set
    created_at: datetime
    updated_at: datetime


def provider_failure(error: ProviderError) -> DnsProviderError:
    """The API's error for a provider's failure (the message already names the provider and the record)."""
    return DnsProviderError(str(error))


class DnsProviderService:
    def __init__(self, database: Database, sealer: SecretSealer, clock: Clock) -> None:
        self._db, self._sealer, self._clock = database, sealer, clock

    # -- create (talks to the provider: run it off the event loop) ---------------------------------------------------
    def create(self, caller: Caller, name: str, kind: str, raw_options: Mapping[str, Any], *,
               check: bool = True) -> DnsProviderRecord:
        found = plugin(kind)
        options = found.parse(raw_options)
        with self._db.read() as session:
            if self._find(session, caller, name) is not None:
                raise ConflictError(f"a DNS provider named {name!r} already exists", field="Name")
        if check:
            try:
                found.factory(name, options).check()
            except ProviderError as error:
                raise provider_failure(error) from None
        now = self._clock.now()
        arn = f"arn:{partition_of(caller.region)}:certsmith:{caller.region}:{caller.account_id}:dns-provider/{name}"
        secrets = found.secret_options(options)
        row = DnsProviderRow(id=uuid.uuid4().hex, arn=arn, account_id=caller.account_id, region=caller.region, name=name,
                             kind=found.kind, options=found.public_options(options),
                             sealed_secrets=self._sealer.seal(json.dumps(secrets).encode(), arn) if secrets else None,
                             created_at=now, updated_at=now)
        with self._db.transaction() as session:
            session.add(row)
            try:
                session.flush()
            except IntegrityError:
                raise ConflictError(f"a DNS provider named {name!r} already exists", field="Name") from None
        return self._record(row, secrets)

    # -- read -----------------------------------------------------------------------------------------------------
    @staticmethod
    def _find(session: Session, caller: Caller, name: str) -> DnsProviderRow | None:
        return session.scalars(select(DnsProviderRow).where(
            DnsProviderRow.account_id == caller.account_id, DnsProviderRow.region == caller.region,
            DnsProviderRow.name == name)).first()

    def _load(self, session: Session, caller: Caller, name: str, field: str = "Name") -> DnsProviderRow:
        row = self._find(session, caller, name)
        if row is None:
            raise ResourceNotFoundError(f"DNS provider {name!r} was not found (certsmith dns-provider list shows them)",
                                        field=field)
        return row

    def _secrets(self, row: DnsProviderRow) -> dict[str, str]:
        if row.sealed_secrets is None:
            return {}
        loaded: dict[str, str] = json.loads(self._sealer.open(row.sealed_secrets, row.arn))
        return loaded

    @staticmethod
    def _record(row: DnsProviderRow, secrets: Mapping[str, str]) -> DnsProviderRecord:
        return DnsProviderRecord(row.name, row.arn, row.kind, dict(row.options), sorted(secrets), row.created_at,
                                 row.updated_at)

    def describe(self, caller: Caller, name: str) -> DnsProviderRecord:
        with self._db.read() as session:
            row = self._load(session, caller, name)
        return self._record(row, self._secrets(row))

    def page(self, caller: Caller, max_results: int | None,
             token: str | None) -> tuple[list[DnsProviderRecord], str | None]:
        offset, limit = decode_token(token), max_results or 100
        with self._db.read() as session:
            rows = list(session.scalars(select(DnsProviderRow).where(
                DnsProviderRow.account_id == caller.account_id, DnsProviderRow.region == caller.region)
                .order_by(DnsProviderRow.name).offset(offset).limit(limit + 1)))
        more = encode_token(offset + limit) if len(rows) > limit else None
        return [self._record(row, self._secrets(row)) for row in rows[:limit]], more

    def exists(self, caller: Caller, name: str, field: str) -> None:
        """ValidationError naming ``field`` unless the account has a provider of that name."""
        with self._db.read() as session:
            if self._find(session, caller, name) is None:
                raise ValidationError(f"{field}: DNS provider {name!r} was not found (certsmith dns-provider list "
                                      "shows them)", field=field)

    def open(self, account_id: str, region: str, name: str, field: str = "DnsProvider") -> DnsProvider:
        """The configured provider, ready to write records (its secrets opened for this use only)."""
        with self._db.read() as session:
            row = self._load(session, Caller(account_id, region, "worker"), name, field)
        found = plugin(row.kind)
        return found.factory(row.name, found.parse({**row.options, **self._secrets(row)}))

    # -- delete ---------------------------------------------------------------------------------------------------
    def delete(self, caller: Caller, name: str) -> None:
        with self._db.transaction() as session:
            row = self._load(session, caller, name)
            users = list(session.scalars(select(IssuerRow.name).where(
                IssuerRow.account_id == caller.account_id, IssuerRow.region == caller.region,
                IssuerRow.dns_provider == name)))
            if users:
                raise ResourceInUseError(f"DNS provider {name!r} answers the DNS challenges of issuer(s) "
                                         f"{', '.join(users)}; change those first (certsmith issuer set-direct)",
                                         arn=row.arn)
            session.delete(row)
