"""SQLAlchemy tables of certsmith. Migrations in ``migrations/`` are generated from these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "AccessKeyRow", "AccountConfigurationRow", "AccountRow", "AuditLogRow", "AuditReportRow", "AuthorityRow", "Base",
    "CertificateRow", "DnsChallengeRow", "InstallationSecretRow", "IssuedCertificateRow", "IssuerRow", "JobRow",
    "MasterKeyCheckRow", "PermissionRow", "UTCDateTime",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite keeps no zone, so store naive UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON(), bool: Boolean()}


class AccountRow(Base):
    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(12), primary_key=True)
    created_at: Mapped[datetime]


class AccessKeyRow(Base):
    __tablename__ = "access_keys"
    access_key_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    sealed_secret: Mapped[bytes] = mapped_column(LargeBinary)
    principal: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]


class AuthorityRow(Base):
    __tablename__ = "certificate_authorities"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    arn: Mapped[str] = mapped_column(String(200), unique=True)
    account_id: Mapped[str] = mapped_column(String(12), index=True)
    region: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    restore_status: Mapped[str | None] = mapped_column(String(24))
    usage_mode: Mapped[str] = mapped_column(String(32))
    key_storage_standard: Mapped[str] = mapped_column(String(40))
    key_algorithm: Mapped[str] = mapped_column(String(24))
    configuration: Mapped[dict[str, Any]]
    revocation: Mapped[dict[str, Any]]
    sealed_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    csr_pem: Mapped[str | None] = mapped_column(Text)
    certificate_pem: Mapped[str | None] = mapped_column(Text)
    chain_pem: Mapped[str | None] = mapped_column(Text)
    serial: Mapped[str | None] = mapped_column(String(128))
    not_before: Mapped[datetime | None]
    not_after: Mapped[datetime | None]
    created_at: Mapped[datetime]
    last_state_change_at: Mapped[datetime]
    failure_reason: Mapped[str | None] = mapped_column(String(32))
    restorable_until: Mapped[datetime | None]
    idempotency_token: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[list[Any]]
    policy: Mapped[str | None] = mapped_column(Text)
    # Deferred: a CA with many revocations has a CRL of megabytes, needed only to serve or rebuild it.
    crl_der: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    crl_number: Mapped[int] = mapped_column(BigInteger, default=0)
    crl_updated_at: Mapped[datetime | None]
    crl_next_refresh_at: Mapped[datetime | None]
    last_audit_report_at: Mapped[datetime | None]
    __table_args__ = (Index("ix_authorities_scope_idempotency", "account_id", "region", "idempotency_token"),)


class IssuedCertificateRow(Base):
    __tablename__ = "issued_certificates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    authority_id: Mapped[str] = mapped_column(ForeignKey("certificate_authorities.id"))
    serial_hex: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))
    request: Mapped[dict[str, Any]]
    template_arn: Mapped[str] = mapped_column(String(200))
    certificate_pem: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    not_before: Mapped[datetime | None]
    not_after: Mapped[datetime | None]
    issued_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revocation_reason: Mapped[str | None] = mapped_column(String(40))
    failure_message: Mapped[str | None] = mapped_column(Text)
    idempotency_token: Mapped[str | None] = mapped_column(String(64))
    requested_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]
    __table_args__ = (
        UniqueConstraint("authority_id", "serial_hex", name="uq_issued_serial"),
        Index("ix_issued_idempotency", "authority_id", "idempotency_token"),
        Index("ix_issued_revoked", "authority_id", "revoked_at"),
    )


class CertificateRow(Base):
    """An ACM certificate: requested from a private CA, or imported."""

    __tablename__ = "certificates"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    arn: Mapped[str] = mapped_column(String(200), unique=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    domain_name: Mapped[str] = mapped_column(String(253))
    names: Mapped[list[Any]]
    key_algorithm: Mapped[str] = mapped_column(String(24))
    authority_arn: Mapped[str | None] = mapped_column(String(200))
    serial: Mapped[str | None] = mapped_column(String(128))
    subject: Mapped[str | None] = mapped_column(Text)
    issuer: Mapped[str | None] = mapped_column(Text)
    signature_algorithm: Mapped[str | None] = mapped_column(String(32))
    not_before: Mapped[datetime | None]
    not_after: Mapped[datetime | None]
    certificate_pem: Mapped[str | None] = mapped_column(Text)
    chain_pem: Mapped[str | None] = mapped_column(Text)
    sealed_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_usages: Mapped[list[Any]]
    extended_key_usages: Mapped[list[Any]]
    options: Mapped[dict[str, Any]]
    export_option: Mapped[str] = mapped_column(String(16))
    exported: Mapped[bool]
    in_use_by: Mapped[list[Any]]
    tags: Mapped[list[Any]]
    key_pair_origin: Mapped[str] = mapped_column(String(24))
    failure_reason: Mapped[str | None] = mapped_column(String(48))
    renewal: Mapped[dict[str, Any] | None]
    revoked_at: Mapped[datetime | None]
    revocation_reason: Mapped[str | None] = mapped_column(String(40))
    idempotency_token: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    issued_at: Mapped[datetime | None]
    imported_at: Mapped[datetime | None]
    # Public certificates: the issuer's name, each name's validation state, and the ACME CA's last word.
    issuer_name: Mapped[str | None] = mapped_column(String(64))
    validations: Mapped[list[Any] | None] = mapped_column(JSON)
    acme: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Managed renewal: when the next renewal starts (NULL: not planned, or under way) and why; when the next expiry
    # notice is due and what was told; the number of the current version (certificate_versions).
    next_renewal_at: Mapped[datetime | None]
    renewal_plan: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    next_notice_at: Mapped[datetime | None]
    notices: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=0)
    # When every name of the current request or renewal was last found validated (the validation latency metric).
    validated_at: Mapped[datetime | None]
    __table_args__ = (
        # The renewal scheduler and the notice sweep read only due rows.
        Index("ix_certificates_next_renewal", "next_renewal_at"),
        Index("ix_certificates_next_notice", "next_notice_at"),
        # ListCertificates reads pages in (created_at, id) order, one key type at a time.
        Index("ix_certificates_scope_created", "account_id", "region", "created_at", "id"),
        Index("ix_certificates_scope_key_created", "account_id", "region", "key_algorithm", "created_at", "id"),
        Index("ix_certificates_scope_idempotency", "account_id", "region", "idempotency_token"),
    )


class AccountConfigurationRow(Base):
    """ACM's settings of one account in one region (GetAccountConfiguration / PutAccountConfiguration)."""

    __tablename__ = "account_configuration"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    region: Mapped[str] = mapped_column(String(32), primary_key=True)
    days_before_expiry: Mapped[int]
    idempotency_token: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class PermissionRow(Base):
    __tablename__ = "permissions"
    authority_id: Mapped[str] = mapped_column(ForeignKey("certificate_authorities.id"), primary_key=True)
    principal: Mapped[str] = mapped_column(String(128), primary_key=True)
    source_account: Mapped[str] = mapped_column(String(12), primary_key=True)
    actions: Mapped[list[Any]]
    created_at: Mapped[datetime]


class AuditReportRow(Base):
    __tablename__ = "audit_reports"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    authority_id: Mapped[str] = mapped_column(ForeignKey("certificate_authorities.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(8))
    s3_bucket: Mapped[str] = mapped_column(String(255))
    s3_key: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime]


class JobRow(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16))
    run_after: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    lease_until: Mapped[datetime | None]
    leased_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    __table_args__ = (Index("ix_jobs_ready", "state", "run_after"), Index("ix_jobs_lease", "state", "lease_until"))


class AuditLogRow(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    principal: Mapped[str] = mapped_column(String(256))
    operation: Mapped[str] = mapped_column(String(128))
    resource: Mapped[str | None] = mapped_column(String(300))
    result: Mapped[str] = mapped_column(String(128))


class MasterKeyCheckRow(Base):
    """Proof of which master key sealed this database's secrets: a constant sealed under it (one row)."""

    __tablename__ = "master_key_check"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    check_value: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    rotated_at: Mapped[datetime | None]


class KeyPoolRow(Base):
    """A spare private key for an ACM private certificate, made ahead by the worker (services/key_pool.py).

    A request claims it by deleting the row, so a key is handed out once; it is sealed under its id
    (a UUID) until then, and under the certificate's ARN once claimed.
    """

    __tablename__ = "key_pool"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_algorithm: Mapped[str] = mapped_column(String(24))
    sealed_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    __table_args__ = (Index("ix_key_pool_algorithm", "key_algorithm"),)


class IssuerRow(Base):
    """Where public certificates come from: an ACME CA (its account key sealed) or a certsmith private CA."""

    __tablename__ = "issuers"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    arn: Mapped[str] = mapped_column(String(200), unique=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))
    directory_url: Mapped[str | None] = mapped_column(String(2048))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    eab_key_id: Mapped[str | None] = mapped_column(String(256))
    sealed_eab_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    ca_bundle_pem: Mapped[str | None] = mapped_column(Text)
    authority_arn: Mapped[str | None] = mapped_column(String(200))
    caa_identities: Mapped[list[Any]]
    is_default: Mapped[bool]
    sealed_account_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    account_url: Mapped[str | None] = mapped_column(String(2048))
    dns_provider: Mapped[str | None] = mapped_column(String(64))  # answer DNS-01 with TXT records through it
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("account_id", "region", "name", name="uq_issuer_name"),)


class DnsChallengeRow(Base):
    """A TXT value the validation zone serves while an ACME order waits for its DNS-01 challenge."""

    __tablename__ = "dns_challenges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))
    certificate_id: Mapped[str] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime]


class HttpChallengeRow(Base):
    """An HTTP-01 key authorization certsmith serves on its public URL while an ACME order waits for it."""

    __tablename__ = "http_challenges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    label: Mapped[str] = mapped_column(String(64))  # the name's label: the folder of its redirect target
    token: Mapped[str] = mapped_column(String(255))
    key_authorization: Mapped[str] = mapped_column(String(512))
    certificate_id: Mapped[str] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime]
    __table_args__ = (Index("ix_http_challenges_token", "label", "token"),)


class DnsProviderRow(Base):
    """A DNS provider of an account: where certsmith writes validation records (options public, secrets sealed)."""

    __tablename__ = "dns_providers"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    arn: Mapped[str] = mapped_column(String(200), unique=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]]
    sealed_secrets: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("account_id", "region", "name", name="uq_dns_provider_name"),)


class InstallationSecretRow(Base):
    """A secret of the installation, sealed under its name (the key of the validation labels)."""

    __tablename__ = "installation_secrets"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    sealed_value: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


# Managed renewal's tables live in a module of their own; importing them here registers them with Base.
from .renewal_tables import (  # noqa: E402
    CaReissueItemRow,
    CaReissueRow,
    CertificateVersionRow,
    EventOutboxRow,
    RenewalPolicyRow,
)

__all__ += ["CaReissueItemRow", "CaReissueRow", "CertificateVersionRow", "EventOutboxRow", "RenewalPolicyRow"]

from .deploy_tables import DeployAgentRow, DeployBindingRow, DeploymentItemRow, DeploymentRow  # noqa: E402
from .event_tables import EndpointRow, EventDeliveryRow, EventRuleRow, EventTargetRow  # noqa: E402

__all__ += ["DeployAgentRow", "DeployBindingRow", "DeploymentItemRow", "DeploymentRow", "EndpointRow", "EventDeliveryRow",
            "EventRuleRow", "EventTargetRow"]
