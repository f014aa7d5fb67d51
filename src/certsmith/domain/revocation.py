"""Revocation: reasons, CRLs (RFC 5280) and OCSP responses (RFC 6960) signed by the CA."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509 import ocsp

from .algorithms import SigningAlgorithm, signature_params

__all__ = ["OCSPStatus", "RevocationReason", "RevokedEntry", "build_crl", "next_crl_refresh", "ocsp_error",
           "ocsp_response"]


class RevocationReason(StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    KEY_COMPROMISE = "KEY_COMPROMISE"
    CERTIFICATE_AUTHORITY_COMPROMISE = "CERTIFICATE_AUTHORITY_COMPROMISE"
    AFFILIATION_CHANGED = "AFFILIATION_CHANGED"
    SUPERSEDED = "SUPERSEDED"
    CESSATION_OF_OPERATION = "CESSATION_OF_OPERATION"
    PRIVILEGE_WITHDRAWN = "PRIVILEGE_WITHDRAWN"
    A_A_COMPROMISE = "A_A_COMPROMISE"

    @property
    def flag(self) -> x509.ReasonFlags:
        return _FLAGS[self]


_FLAGS = {
    RevocationReason.UNSPECIFIED: x509.ReasonFlags.unspecified,
    RevocationReason.KEY_COMPROMISE: x509.ReasonFlags.key_compromise,
    RevocationReason.CERTIFICATE_AUTHORITY_COMPROMISE: x509.ReasonFlags.ca_compromise,
    RevocationReason.AFFILIATION_CHANGED: x509.ReasonFlags.affiliation_changed,
    RevocationReason.SUPERSEDED: x509.ReasonFlags.superseded,
    RevocationReason.CESSATION_OF_OPERATION: x509.ReasonFlags.cessation_of_operation,
    RevocationReason.PRIVILEGE_WITHDRAWN: x509.ReasonFlags.privilege_withdrawn,
    RevocationReason.A_A_COMPROMISE: x509.ReasonFlags.aa_compromise,
}


@dataclass(frozen=True, slots=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: RevocationReason


class OCSPStatus(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


def build_crl(*, issuer_key: CertificateIssuerPrivateKeyTypes, issuer_certificate: x509.Certificate,
              entries: Iterable[RevokedEntry], crl_number: int, this_update: datetime, valid_for: timedelta,
              signing_algorithm: SigningAlgorithm) -> bytes:
    """A DER CRL v2 with AKI and CRL Number, one entry per revoked serial with its reason."""
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(issuer_certificate.subject)
               .last_update(this_update)
               .next_update(this_update + valid_for)
               .add_extension(x509.CRLNumber(crl_number), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   issuer_key.public_key()), critical=False))
    for entry in entries:
        revoked = (x509.RevokedCertificateBuilder()
                   .serial_number(entry.serial)
                   .revocation_date(entry.revoked_at)
                   .add_extension(x509.CRLReason(entry.reason.flag), critical=False)
                   .build())
        builder = builder.add_revoked_certificate(revoked)
    params = signature_params(signing_algorithm)
    if params.rsa_padding is not None:
        crl = builder.sign(issuer_key, params.hash_algorithm, rsa_padding=params.rsa_padding)
    else:
        crl = builder.sign(issuer_key, params.hash_algorithm)
    return crl.public_bytes(serialization.Encoding.DER)


def next_crl_refresh(pending_at: datetime | None, now: datetime, valid_for: timedelta) -> datetime | None:
    """When a CA's next scheduled CRL refresh should run, if the refresh signing a CRL ``now`` must schedule it.

    A CA keeps one scheduled refresh at half its CRL's validity, so the CRL is always re-signed before its
    nextUpdate. ``pending_at`` is the time of the refresh already scheduled: while it lies ahead, that one
    keeps the schedule going and this refresh schedules nothing (None), so duplicate schedules die out. Once
    it is due (this is that refresh, or it is late) or when there is none (a CA that just became ACTIVE, a
    schedule reset by new CRL settings, or one that ended while the CA stopped publishing), this refresh
    schedules the next one.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if valid_for <= timedelta(0):
        raise ValueError(f"valid_for is {valid_for}; a CRL must be valid for a positive time")
    if pending_at is not None and pending_at > now:
        return None
    return now.replace(microsecond=0) + valid_for / 2


def ocsp_error(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


def ocsp_response(request_der: bytes, *, issuer_certificate: x509.Certificate,
                  issuer_key: CertificateIssuerPrivateKeyTypes, signing_algorithm: SigningAlgorithm,
                  lookup: Callable[[int], tuple[OCSPStatus, RevokedEntry | None]],
                  now: datetime, valid_for: timedelta = timedelta(hours=1)) -> bytes:
    """Answer one OCSP request (single certificate) with a response signed by the CA itself."""
    try:
        request = ocsp.load_der_ocsp_request(request_der)
    except ValueError:
        return ocsp_error(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    hash_algorithm = request.hash_algorithm
    issuer_name_hash = _hash(hash_algorithm, issuer_certificate.subject.public_bytes())
    issuer_key_hash = _hash(hash_algorithm, _spki_key_bits(issuer_certificate))
    if request.issuer_name_hash != issuer_name_hash or request.issuer_key_hash != issuer_key_hash:
        return ocsp_error(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    status, entry = lookup(request.serial_number)
    cert_status = {OCSPStatus.GOOD: ocsp.OCSPCertStatus.GOOD, OCSPStatus.REVOKED: ocsp.OCSPCertStatus.REVOKED,
                   OCSPStatus.UNKNOWN: ocsp.OCSPCertStatus.UNKNOWN}[status]
    builder = ocsp.OCSPResponseBuilder()
    this_update = now.replace(microsecond=0)
    builder = builder.add_response_by_hash(
        issuer_name_hash=issuer_name_hash, issuer_key_hash=issuer_key_hash, serial_number=request.serial_number,
        algorithm=hash_algorithm, cert_status=cert_status, this_update=this_update,
        next_update=this_update + valid_for,
        revocation_time=entry.revoked_at if entry else None,
        revocation_reason=entry.reason.flag if entry else None)
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, issuer_certificate)
    try:
        nonce = request.extensions.get_extension_for_class(x509.OCSPNonce)
        builder = builder.add_extension(nonce.value, critical=False)
    except x509.ExtensionNotFound:
        pass
    params = signature_params(signing_algorithm)
    response = builder.sign(issuer_key, params.hash_algorithm)
    return response.public_bytes(serialization.Encoding.DER)


def _hash(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


def _spki_key_bits(certificate: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING contents, which is what OCSP's issuerKeyHash covers."""
    spki = certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    return _bit_string_of_spki(spki)


def _read_length(data: bytes, offset: int) -> tuple[int, int]:
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    count = first & 0x7F
    return int.from_bytes(data[offset + 1: offset + 1 + count], "big"), offset + 1 + count


def _bit_string_of_spki(spki: bytes) -> bytes:
    # SEQUENCE { AlgorithmIdentifier SEQUENCE, BIT STRING }
    _, offset = _read_length(spki, 1)
    algorithm_length, algorithm_start = _read_length(spki, offset + 1)
    offset = algorithm_start + algorithm_length
    bits_length, bits_start = _read_length(spki, offset + 1)
    return spki[bits_start + 1: bits_start + bits_length]  # skip the unused-bits octet
