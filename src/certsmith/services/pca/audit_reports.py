"""Audit reports: every certificate a CA issued or revoked, as JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from ...domain import pca_events
from ...domain.authority import AuthorityStatus
from ...domain.clock import Clock
from ...domain.errors import InvalidStateError, RequestInProgressError, ResourceNotFoundError
from ...store.database import Database
from ...store.jobs import JobQueue
from ...store.tables import AuditReportRow, AuthorityRow, IssuedCertificateRow
from ..context import Caller
from ..events.outbox import EventOutbox
from ..ports import BlobStore, WorkSignal
from .lookup import load_authority

__all__ = ["AUDIT_REPORT_JOB", "CSV_FIELDS", "AuditReportService"]

AUDIT_REPORT_JOB = "audit_report.create"
REPORT_INTERVAL = timedelta(minutes=30)
CSV_FIELDS = ("awsAccountId", "requestedByServicePrincipal", "certificateArn", "serial", "subject", "notBefore",
              "notAfter", "issuedAt", "revokedAt", "revocationReason", "templateArn")


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S+0000")


def _colon_hex(serial_hex: str) -> str:
    padded = serial_hex if len(serial_hex) % 2 == 0 else "0" + serial_hex
    return ":".join(padded[i:i + 2] for i in range(0, len(padded), 2))


class AuditReportService:
    def __init__(self, database: Database, jobs: JobQueue, blobs: BlobStore, clock: Clock, signal: WorkSignal,
                 outbox: EventOutbox | None = None) -> None:
        self._db, self._jobs, self._blobs, self._clock, self._signal = database, jobs, blobs, clock, signal
        self._outbox = outbox or EventOutbox()

    def create(self, caller: Caller, arn: str, bucket: str, response_format: str) -> tuple[str, str]:
        now = self._clock.now()
        with self._db.transaction() as session:
            ca = load_authority(session, caller, arn, now, for_update=True)
            if ca.status not in (AuthorityStatus.ACTIVE, AuthorityStatus.DISABLED):
                raise InvalidStateError(f"the CA is {ca.status}; audit reports need an ACTIVE or DISABLED CA",
                                        field="CertificateAuthorityArn")
            if ca.last_audit_report_at is not None and ca.last_audit_report_at > now - REPORT_INTERVAL:
                raise RequestInProgressError("a CA makes at most one audit report every 30 minutes; the last one was "
                                             f"requested at {ca.last_audit_report_at:%Y-%m-%d %H:%M:%S}Z", arn=arn)
            report_id = str(uuid.uuid4())
            key = f"audit-report/{ca.id}/{report_id}.{response_format.lower()}"
            session.add(AuditReportRow(id=report_id, authority_id=ca.id, status="CREATING", format=response_format,
                                       s3_bucket=bucket, s3_key=key, created_at=now))
            ca.last_audit_report_at = now
            self._jobs.enqueue(session, AUDIT_REPORT_JOB, {"report_id": report_id}, now)
        self._signal.notify()
        return report_id, key

    def describe(self, caller: Caller, arn: str, report_id: str) -> AuditReportRow:
        with self._db.read() as session:
            ca = load_authority(session, caller, arn, self._clock.now())
            report = session.get(AuditReportRow, report_id)
            if report is None or report.authority_id != ca.id:
                raise ResourceNotFoundError(f"audit report {report_id} was not found", field="AuditReportId")
            session.expunge(report)
            return report

    def run_job(self, payload: dict[str, Any]) -> None:
        with self._db.transaction() as session:
            report = session.get(AuditReportRow, payload["report_id"])
            if report is None or report.status != "CREATING":
                return
            ca = session.get(AuthorityRow, report.authority_id)
            assert ca is not None
            rows = session.scalars(select(IssuedCertificateRow).where(
                IssuedCertificateRow.authority_id == ca.id, IssuedCertificateRow.status == "ISSUED")
                .order_by(IssuedCertificateRow.id)).all()
            records = []
            for row in rows:
                record: dict[str, Any] = {
                    "awsAccountId": ca.account_id, "certificateArn": f"{ca.arn}/certificate/{row.serial_hex}",
                    "serial": _colon_hex(row.serial_hex), "subject": row.subject or "",
                    "notBefore": _stamp(row.not_before), "notAfter": _stamp(row.not_after),
                    "issuedAt": _stamp(row.issued_at), "templateArn": row.template_arn}
                if row.requested_by:
                    record["requestedByServicePrincipal"] = row.requested_by
                if row.revoked_at is not None:
                    record["revokedAt"] = _stamp(row.revoked_at)
                    record["revocationReason"] = row.revocation_reason
                records.append(record)
            if report.format == "CSV":
                buffer = io.StringIO()
                writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
                writer.writeheader()
                writer.writerows(records)
                data = buffer.getvalue().encode()
            else:
                data = json.dumps(records, indent=2).encode()
            self._blobs.put(report.s3_bucket, report.s3_key, data)
            report.status = "SUCCESS"
            now = self._clock.now()
            self._outbox.add(session, ca.account_id, ca.region, pca_events.audit_report(
                ca.arn, pca_events.audit_report_object_arn(ca.arn, report.s3_bucket, report.s3_key), now), now)

    def mark_failed(self, payload: dict[str, Any]) -> None:
        now = self._clock.now()
        with self._db.transaction() as session:
            report = session.get(AuditReportRow, payload["report_id"])
            if report is not None and report.status == "CREATING":
                report.status = "FAILED"
                ca = session.get(AuthorityRow, report.authority_id)
                if ca is not None:
                    self._outbox.add(session, ca.account_id, ca.region, pca_events.audit_report(
                        ca.arn, pca_events.audit_report_object_arn(ca.arn, report.s3_bucket, report.s3_key), now,
                        "Failed to write the audit report. Internal failure."), now)

    def download(self, key: str) -> bytes | None:
        """The report stored under S3 key ``key`` (audit-report/<ca-id>/<report-id>.<fmt>)."""
        parts = key.split("/")
        if len(parts) != 3 or parts[0] != "audit-report":
            return None
        report_id = parts[2].rsplit(".", 1)[0]
        with self._db.read() as session:
            report = session.get(AuditReportRow, report_id)
            if report is None or report.s3_key != key or report.status != "SUCCESS":
                return None
            bucket = report.s3_bucket
        return self._blobs.get(bucket, key)
