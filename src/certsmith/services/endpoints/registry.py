"""Monitored endpoints of an account: register, read, list and remove; what each should serve and trust."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...domain.arns import CertificateArn
from ...domain.clock import Clock
from ...domain.endpoints import (
    DEFAULT_INTERVAL,
    DEFAULT_PORT,
    PENDING,
    STATUSES,
    ChainEntry,
    EndpointFacts,
    Expected,
    check_host,
    check_interval,
    check_port,
    check_server_name,
    check_trust_bundle,
    endpoint_arn,
)
from ...domain.errors import ConflictError, InvalidArnError, ResourceNotFoundError, ValidationError
from ...domain.events import days_to_expiry
from ...store.database import Database
from ...store.tables import AuthorityRow, CertificateRow, CertificateVersionRow, EndpointRow
from ..context import Caller
from ..pca.lookup import decode_token, encode_token

__all__ = ["BUNDLE", "CERTIFICATE_AUTHORITY", "SYSTEM", "EndpointRecord", "EndpointRegistry", "EndpointSpec",
           "ProbeTarget"]

# Where an endpoint's chain is checked: its own bundle, its certificate's CA as certsmith keeps it, or the system's.
BUNDLE, CERTIFICATE_AUTHORITY, SYSTEM = "BUNDLE", "CERTIFICATE_AUTHORITY", "SYSTEM"
_PAGE = 100


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    host: str
    port: int | None = None
    server_name: str | None = None
    certificate_arn: str | None = None
    trust_bundle: str | None = None
    interval_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    """An endpoint and what its last probe found; drift facts (current and served version) read with it."""

    endpoint_id: str
    arn: str
    host: str
    port: int
    server_name: str
    certificate_arn: str | None
    trust_source: str
    interval_seconds: int
    created_at: datetime
    next_probe_at: datetime
    status: str
    probed_at: datetime | None
    handshake_ms: float | None
    served_serial: str | None
    served_not_after: datetime | None
    days_to_expiry: int | None
    chain: tuple[ChainEntry, ...]
    hostname_match: bool | None
    trusted: bool | None
    error: str | None
    current_serial: str | None
    current_version: int | None
    served_version: int | None


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """What a probe needs, read before it starts (outside any transaction)."""

    facts: EndpointFacts
    account_id: str
    region: str
    trust_pem: str | None
    expected: Expected | None


def _ca_chain(session: Session, certificate: CertificateRow) -> str | None:
    """The CA chain of a certsmith private certificate: as issued with it, and its CA's current one (rotations)."""
    if certificate.authority_arn is None:
        return None
    parts = [certificate.chain_pem or ""]
    authority = session.scalar(select(AuthorityRow).where(AuthorityRow.arn == certificate.authority_arn))
    if authority is not None:
        parts += [authority.certificate_pem or "", authority.chain_pem or ""]
    pem = "\n".join(p.strip() for p in parts if p and p.strip())
    return pem + "\n" if pem else None


def _expected(session: Session, certificates: Iterable[CertificateRow]) -> dict[str, Expected]:
    rows = {c.id: c for c in certificates}
    versions: dict[str, list[tuple[int, str]]] = {}
    if rows:
        for certificate_id, version, serial in session.execute(
                select(CertificateVersionRow.certificate_id, CertificateVersionRow.version, CertificateVersionRow.serial)
                .where(CertificateVersionRow.certificate_id.in_(rows)).order_by(CertificateVersionRow.version)):
            versions.setdefault(certificate_id, []).append((version, serial))
    return {c.arn: Expected(c.arn, c.serial, c.version, tuple(versions.get(c.id, ()))) for c in rows.values()}


class EndpointRegistry:
    def __init__(self, database: Database, clock: Clock) -> None:
        self._db, self._clock = database, clock

    # -- register ---------------------------------------------------------------------------------------------------
    def create(self, caller: Caller, spec: EndpointSpec) -> EndpointRecord:
        host = check_host(spec.host)
        port = check_port(spec.port if spec.port is not None else DEFAULT_PORT)
        server_name = check_server_name(spec.server_name) if spec.server_name else host
        interval = check_interval(spec.interval_seconds if spec.interval_seconds is not None else DEFAULT_INTERVAL)
        trust = check_trust_bundle(spec.trust_bundle) if spec.trust_bundle else None
        now = self._clock.now()
        with self._db.transaction() as session:
            arn = self._certificate(session, caller, spec.certificate_arn) if spec.certificate_arn else None
            row = EndpointRow(id=f"ep-{uuid.uuid4().hex[:17]}", account_id=caller.account_id, region=caller.region,
                              host=host, port=port, server_name=server_name, certificate_arn=arn, trust=trust,
                              interval_seconds=interval, created_at=now, next_probe_at=now, lease_until=None,
                              status=PENDING)
            session.add(row)
            try:
                session.flush()
            except IntegrityError:
                raise ConflictError(f"{host}:{port} with server name {server_name} is already monitored "
                                    "(certsmith endpoint list shows it)", field="Host") from None
            return self._records(session, [row])[0]

    @staticmethod
    def _certificate(session: Session, caller: Caller, text: str) -> str:
        arn = CertificateArn.parse(text, "CertificateArn")
        caller.check_owns(arn.region, arn.account, text, "CertificateArn", "certificate")
        found = session.scalar(select(CertificateRow.arn).where(
            CertificateRow.arn == str(arn), CertificateRow.account_id == caller.account_id,
            CertificateRow.region == caller.region))
        if found is None:
            raise ResourceNotFoundError(f"CertificateArn: certificate {text} was not found in this account",
                                        field="CertificateArn", arn=text)
        return found

    # -- read -------------------------------------------------------------------------------------------------------
    @staticmethod
    def _id(caller: Caller, text: str) -> str:
        """An endpoint id, or its ARN (checked to be the caller's)."""
        if not text.startswith("arn:"):
            return text
        parts = text.split(":", 5)
        if len(parts) != 6 or parts[2] != "certsmith" or not parts[5].startswith("endpoint/"):
            raise InvalidArnError(f"EndpointId {text!r} is neither an endpoint id nor an endpoint ARN "
                                  "(arn:aws:certsmith:<region>:<account>:endpoint/<id>)", field="EndpointId")
        caller.check_owns(parts[3], parts[4], text, "EndpointId", "endpoint")
        return parts[5].removeprefix("endpoint/")

    def _load(self, session: Session, caller: Caller, endpoint_id: str) -> EndpointRow:
        row = session.scalar(select(EndpointRow).where(
            EndpointRow.id == self._id(caller, endpoint_id), EndpointRow.account_id == caller.account_id,
            EndpointRow.region == caller.region))
        if row is None:
            raise ResourceNotFoundError(f"endpoint {endpoint_id} was not found (certsmith endpoint list shows them)",
                                        field="EndpointId")
        return row

    def describe(self, caller: Caller, endpoint_id: str) -> EndpointRecord:
        with self._db.read() as session:
            return self._records(session, [self._load(session, caller, endpoint_id)])[0]

    def page(self, caller: Caller, *, certificate_arn: str | None = None, status: str | None = None,
             max_results: int | None = None, token: str | None = None) -> tuple[list[EndpointRecord], str | None]:
        if status is not None and status not in STATUSES:
            raise ValidationError(f"Status {status!r} is not one of {', '.join(STATUSES)}", field="Status")
        offset, limit = decode_token(token), max_results or _PAGE
        query = select(EndpointRow).where(EndpointRow.account_id == caller.account_id,
                                          EndpointRow.region == caller.region)
        if certificate_arn is not None:
            query = query.where(EndpointRow.certificate_arn == certificate_arn)
        if status is not None:
            query = query.where(EndpointRow.status == status)
        query = query.order_by(EndpointRow.host, EndpointRow.port, EndpointRow.server_name, EndpointRow.id)
        with self._db.read() as session:
            rows = list(session.scalars(query.offset(offset).limit(limit + 1)))
            more = encode_token(offset + limit) if len(rows) > limit else None
            return self._records(session, rows[:limit]), more

    def target(self, endpoint_id: str) -> ProbeTarget | None:
        """What probing an endpoint needs (None once it was removed)."""
        with self._db.read() as session:
            row = session.get(EndpointRow, endpoint_id)
            if row is None:
                return None
            return self._target(session, row)

    def target_of(self, caller: Caller, endpoint_id: str) -> ProbeTarget:
        with self._db.read() as session:
            return self._target(session, self._load(session, caller, endpoint_id))

    def _target(self, session: Session, row: EndpointRow) -> ProbeTarget:
        certificate = session.scalar(select(CertificateRow).where(CertificateRow.arn == row.certificate_arn)) \
            if row.certificate_arn else None
        expected = _expected(session, [certificate]).get(certificate.arn) if certificate is not None else None
        trust = row.trust or (_ca_chain(session, certificate) if certificate is not None else None)
        return ProbeTarget(self.facts(row), row.account_id, row.region, trust, expected)

    @staticmethod
    def facts(row: EndpointRow) -> EndpointFacts:
        return EndpointFacts(row.id, endpoint_arn(row.region, row.account_id, row.id), row.host, row.port,
                             row.server_name, row.certificate_arn)

    def _records(self, session: Session, rows: list[EndpointRow]) -> list[EndpointRecord]:
        arns = {r.certificate_arn for r in rows if r.certificate_arn}
        certificates = list(session.scalars(select(CertificateRow).where(CertificateRow.arn.in_(arns)))) if arns else []
        expected = _expected(session, certificates)
        private = {c.arn for c in certificates if c.authority_arn is not None}
        now = self._clock.now()
        return [self._record(row, expected.get(row.certificate_arn or ""), row.certificate_arn in private, now)
                for row in rows]

    @staticmethod
    def _record(row: EndpointRow, expected: Expected | None, private: bool, now: datetime) -> EndpointRecord:
        source = BUNDLE if row.trust else CERTIFICATE_AUTHORITY if private else SYSTEM
        chain = tuple(ChainEntry.from_json(e) for e in row.chain or [])
        return EndpointRecord(
            endpoint_id=row.id, arn=endpoint_arn(row.region, row.account_id, row.id), host=row.host, port=row.port,
            server_name=row.server_name, certificate_arn=row.certificate_arn, trust_source=source,
            interval_seconds=row.interval_seconds, created_at=row.created_at, next_probe_at=row.next_probe_at,
            status=row.status, probed_at=row.probed_at, handshake_ms=row.handshake_ms, served_serial=row.served_serial,
            served_not_after=row.served_not_after,
            days_to_expiry=days_to_expiry(row.served_not_after, now) if row.served_not_after else None,
            chain=chain, hostname_match=row.hostname_match, trusted=row.trusted, error=row.error,
            current_serial=expected.current_serial if expected else None,
            current_version=expected.current_version if expected else None,
            served_version=expected.version_of(row.served_serial) if expected and row.served_serial else None)

    # -- remove -----------------------------------------------------------------------------------------------------
    def delete(self, caller: Caller, endpoint_id: str) -> None:
        with self._db.transaction() as session:
            session.delete(self._load(session, caller, endpoint_id))
