"""A new key pair for an ACM private certificate, signed by its CA: used at request and at renewal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from ...domain.acm import CN_MAX, CertificateFacts, FailureReason, certificate_facts
from ...domain.algorithms import KeyAlgorithm, generate_private_key
from ...domain.errors import CertsmithError, InvalidArnError, InvalidStateError, ResourceNotFoundError, ValidationError
from ...domain.validity import Validity, ValidityPeriodType
from ...store.tables import CertificateRow
from ..context import Caller
from ..pca.issuance import IssuanceService
from ..ports import KeyVault

__all__ = ["PRIVATE_VALIDITY", "VALIDITY_TAG", "PrivateMaterial", "certificate_request", "private_validity",
           "sign_private", "store_material"]

PRIVATE_VALIDITY = Validity(395, ValidityPeriodType.DAYS)  # 13 months
VALIDITY_TAG = "certsmith:validity"  # a shorter lifetime for a private certificate, in days ("7d"), from ACM's API


def private_validity(tags: list[dict[str, Any]] | None, field: str = "Tags") -> Validity:
    """The lifetime of a private certificate: 13 months, or what its ``certsmith:validity`` tag says (1d to 395d)."""
    value = next((str(t.get("Value") or "") for t in tags or [] if t.get("Key") == VALIDITY_TAG), None)
    if value is None:
        return PRIVATE_VALIDITY
    days = value.strip().lower().removesuffix("d")
    if not days.isdigit() or not 1 <= int(days) <= PRIVATE_VALIDITY.value:
        raise ValidationError(f"{field}[{VALIDITY_TAG}] must be a number of days from 1d to {PRIVATE_VALIDITY.value}d, "
                              f"not {value!r}", field=f"{field}[{VALIDITY_TAG}]")
    return Validity(int(days), ValidityPeriodType.DAYS)
# The CA's answer, as ACM reports it in FailureReason.
_FAILURE_REASONS: tuple[tuple[type[CertsmithError], FailureReason], ...] = (
    (ResourceNotFoundError, FailureReason.PCA_RESOURCE_NOT_FOUND),
    (InvalidArnError, FailureReason.PCA_INVALID_ARN),
    (InvalidStateError, FailureReason.PCA_INVALID_STATE),
)


@dataclass(frozen=True, slots=True)
class PrivateMaterial:
    certificate_pem: str
    chain_pem: str
    sealed_key: bytes
    facts: CertificateFacts


def certificate_request(key: CertificateIssuerPrivateKeyTypes, names: list[str]) -> x509.CertificateSigningRequest:
    """A CSR for ``names``: the first is the common name when it fits, all are SANs."""
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, names[0])] if len(names[0]) <= CN_MAX else []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject)).add_extension(
        x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False)
    return builder.sign(key, hashes.SHA256())


def sign_private(issuance: IssuanceService, vault: KeyVault, row: CertificateRow,
                 key: CertificateIssuerPrivateKeyTypes | None = None) -> PrivateMaterial | FailureReason:
    """Have the certificate's CA sign ``key`` (or a new key of its algorithm); or why the CA would not.

    The CA's refusals (``CertsmithError``) all come before it records anything, so a refused key is
    bound to no certificate. The key is returned sealed under the certificate's ARN.
    """
    assert row.authority_arn is not None
    if key is None:
        key = generate_private_key(KeyAlgorithm(row.key_algorithm))
    caller = Caller(row.account_id, row.region, "acm")
    try:
        signed = issuance.sign_now(caller, row.authority_arn, certificate_request(key, list(row.names)),
                                   private_validity(row.tags))
    except CertsmithError as error:
        reason = next((r for cls, r in _FAILURE_REASONS if isinstance(error, cls)), None)
        if reason is None:
            reason = FailureReason.PCA_INVALID_DURATION if error.field == "Validity" else FailureReason.PCA_INVALID_ARGS
        return reason
    return PrivateMaterial(signed.certificate_pem, signed.chain_pem, vault.seal_private_key(key, row.arn),
                           certificate_facts(signed.certificate))


def store_material(row: CertificateRow, material: PrivateMaterial) -> None:
    facts = material.facts
    row.certificate_pem, row.chain_pem, row.sealed_key = material.certificate_pem, material.chain_pem, \
        material.sealed_key
    row.serial, row.subject, row.issuer = facts.serial, facts.subject, facts.issuer
    row.not_before, row.not_after, row.signature_algorithm = facts.not_before, facts.not_after, \
        facts.signature_algorithm
    row.key_usages, row.extended_key_usages = facts.key_usages, facts.extended_key_usages
    row.exported = False  # a new key: nothing of it has left certsmith yet
