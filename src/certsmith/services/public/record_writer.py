"""The "create records" button: write a certificate's validation CNAMEs into the user's DNS through a provider."""

from __future__ import annotations

from dataclasses import dataclass

from ...dns.providers import ProviderError, RecordSet
from ...domain.acm import CertificateStatus
from ...domain.clock import Clock
from ...domain.errors import InvalidStateError
from ...store.database import Database
from ...store.jobs import JobQueue
from ..acm.certificates import CertificateService
from ..context import Caller
from ..ports import WorkSignal
from .dns_providers import DnsProviderService, provider_failure

__all__ = ["RecordOutcome", "ValidationRecordWriter"]

RECORD_TTL = 300
WRITTEN, ALREADY_RIGHT = "WRITTEN", "ALREADY_RIGHT"
_WRITABLE = (CertificateStatus.PENDING_VALIDATION, CertificateStatus.ISSUED)


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    name: str  # the record's name (no trailing dot)
    type: str
    value: str
    state: str  # WRITTEN or ALREADY_RIGHT
    domain_names: tuple[str, ...]  # the certificate's names this record validates


def _same(record: RecordSet | None, value: str) -> bool:
    if record is None:
        return False
    return [v.rstrip(".").lower() for v in record.values] == [value.rstrip(".").lower()]


class ValidationRecordWriter:
    def __init__(self, database: Database, jobs: JobQueue, clock: Clock, signal: WorkSignal,
                 certificates: CertificateService, providers: DnsProviderService) -> None:
        self._db, self._jobs, self._clock, self._signal = database, jobs, clock, signal
        self._certificates, self._providers = certificates, providers

    def create(self, caller: Caller, arn: str, provider_name: str) -> list[RecordOutcome]:
        """Write every name's CNAME (a record already right is left alone), then hurry the pending validation."""
        row = self._certificates.load(caller, arn)
        status, validations, state = row.status, [dict(v) for v in row.validations or []], dict(row.acme or {})
        if status not in _WRITABLE:
            raise InvalidStateError(f"certificate {arn} is {status}: its validation records are no longer used", arn=arn)
        wanted: dict[str, tuple[str, list[str]]] = {}
        for validation in validations:  # every name, validated or not: renewals use the same records
            record = validation.get("ResourceRecord")
            if validation.get("ValidationMethod") != "DNS" or not record:
                continue
            name = record["Name"].rstrip(".").lower()
            wanted.setdefault(name, (record["Value"].rstrip("."), []))[1].append(validation["DomainName"])
        if not wanted:
            raise InvalidStateError(f"certificate {arn} has no DNS validation record (it is validated by email or "
                                    "HTTP, or directly through a DNS provider)", arn=arn)
        provider = self._providers.open(caller.account_id, caller.region, provider_name, field="ProviderName")
        outcomes: list[RecordOutcome] = []
        missing: list[RecordSet] = []
        try:
            for name, (value, domains) in wanted.items():
                right = _same(provider.lookup(name, "CNAME"), value)
                outcomes.append(RecordOutcome(name, "CNAME", value, ALREADY_RIGHT if right else WRITTEN, tuple(domains)))
                if not right:
                    missing.append(RecordSet(name, "CNAME", (value,), RECORD_TTL))
            if missing:
                provider.present(missing)
        except ProviderError as error:
            raise provider_failure(error) from None
        job = state.get("validate_job")
        if missing and isinstance(job, int):
            with self._db.transaction() as session:
                self._jobs.hurry(session, job, self._clock.now())
            self._signal.notify()
        return outcomes
