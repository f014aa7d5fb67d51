"""ImportCertificate: a certificate, its key and chain from elsewhere, checked and kept (new or re-import)."""

from __future__ import annotations

from typing import Any

from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from ...domain.acm import CertificateStatus, CertificateType, certificate_facts
from ...domain.arns import CertificateArn
from ...domain.clock import Clock
from ...domain.errors import LimitExceededError, ValidationError
from ...domain.import_check import Bundle, Report, inspect_bundle
from ...domain.issuance import pem
from ...domain.tags import check_tags
from ...store.database import Database
from ...store.tables import CertificateRow
from ..context import Caller
from ..ports import KeyVault
from ..renewal.recorder import RenewalRecorder
from .certificates import CertificateService

__all__ = ["CertificateImporter", "report_error"]

MAX_IMPORTED = 2500  # ACM's quota of imported certificates per account and region
IMPORTED_OPTIONS = {"CertificateTransparencyLoggingPreference": "DISABLED", "Export": "DISABLED"}


def report_error(report: Report) -> ValidationError:
    """One error naming every problem of the bundle, each with what to do about it."""
    problems = report.problems
    heading = "the certificate cannot be imported" if len(problems) == 1 else \
        f"the certificate cannot be imported ({len(problems)} problems)"
    return ValidationError(f"{heading}: " + "; ".join(str(p) for p in problems), field=problems[0].field)


class CertificateImporter:
    def __init__(self, database: Database, vault: KeyVault, clock: Clock, certificates: CertificateService,
                 recorder: RenewalRecorder) -> None:
        self._db, self._vault, self._clock, self._certificates = database, vault, clock, certificates
        self._recorder = recorder

    def import_certificate(self, caller: Caller, bundle: Bundle, arn: str | None,
                           tags: list[dict[str, Any]] | None) -> str:
        now = self._clock.now()
        report = inspect_bundle(bundle, now)
        if not report.ok:
            raise report_error(report)
        assert report.certificate is not None and report.key is not None and report.key_algorithm is not None
        facts = certificate_facts(report.certificate)
        common = [str(a.value) for a in report.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        names = list(dict.fromkeys(common + facts.names))
        chain_pem = "".join(pem(c) for c in report.chain)
        if arn is not None:
            existing = self._certificates.load(caller, arn)
            self._check_reimport(existing, report.key_algorithm, names, facts.key_usages,
                                 [e["Name"] for e in facts.extended_key_usages], tags)
            target = CertificateArn.parse(arn)
        else:
            check_tags(tags or [])
            self._check_quota(caller)
            target = CertificateArn.new(caller.region, caller.account_id)
        sealed = self._vault.seal_private_key(report.key, str(target))
        with self._db.transaction() as session:
            row = session.get(CertificateRow, target.certificate_id)
            if row is None:
                row = CertificateRow(
                    id=target.certificate_id, arn=str(target), account_id=caller.account_id, region=caller.region,
                    type=CertificateType.IMPORTED.value, options=dict(IMPORTED_OPTIONS), export_option="DISABLED",
                    exported=False, in_use_by=[], tags=tags or [], key_pair_origin="CUSTOMER_PROVIDED",
                    created_at=now)
                session.add(row)
            row.status, row.imported_at = CertificateStatus.ISSUED.value, now
            row.domain_name, row.names, row.key_algorithm = names[0], names, report.key_algorithm
            row.certificate_pem = pem(report.certificate)
            row.chain_pem, row.sealed_key = chain_pem or None, sealed
            row.serial, row.subject, row.issuer = facts.serial, facts.subject, facts.issuer
            row.not_before, row.not_after, row.signature_algorithm = facts.not_before, facts.not_after, \
                facts.signature_algorithm
            row.key_usages, row.extended_key_usages = facts.key_usages, facts.extended_key_usages
            self._recorder.record(session, row, "IMPORT" if arn is None else "REIMPORT", now)
        return str(target)

    def _check_quota(self, caller: Caller) -> None:
        with self._db.read() as session:
            imported = session.scalar(select(func.count()).select_from(CertificateRow).where(
                CertificateRow.account_id == caller.account_id, CertificateRow.region == caller.region,
                CertificateRow.type == CertificateType.IMPORTED))
        if (imported or 0) >= MAX_IMPORTED:
            raise LimitExceededError(f"the account holds {imported} imported certificates in {caller.region}; the limit is "
                                     f"{MAX_IMPORTED} (delete some, or re-import over an existing ARN)")

    @staticmethod
    def _check_reimport(existing: CertificateRow, key_algorithm: str, names: list[str], key_usages: list[str],
                        extended: list[str], tags: list[dict[str, Any]] | None) -> None:
        """Re-import keeps the ARN: the same kind of key, some name in common, no usage taken away (§10.9)."""
        if tags:
            raise ValidationError("Tags cannot be given when re-importing a certificate; tag it with "
                                  "AddTagsToCertificate", field="Tags")
        if existing.type != CertificateType.IMPORTED:
            raise ValidationError(f"certificate {existing.arn} is {existing.type}; only IMPORTED certificates can be "
                                  "re-imported", field="CertificateArn")
        if key_algorithm != existing.key_algorithm:
            raise ValidationError(f"the new certificate's key is {key_algorithm}; a re-import must keep "
                                  f"{existing.key_algorithm}", field="Certificate")
        if not set(names) & set(existing.names):
            raise ValidationError("the new certificate shares no domain name with the one it replaces",
                                  field="Certificate")
        lost = [u for u in existing.key_usages if u not in key_usages] + \
            [e["Name"] for e in existing.extended_key_usages if e["Name"] not in extended]
        if lost:
            raise ValidationError(f"a re-import may add key usages but not remove them; missing: {', '.join(lost)}",
                                  field="Certificate")
