"""ACME Renewal Information (RFC 9773): certificate ids and the renewalInfo answer.

The network side (an unauthenticated GET of ``<renewalInfo>/<certID>``) is :meth:`AcmeSession.renewal_info`.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from certsmith.acme.errors import AcmeError

__all__ = ["RenewalInfo", "certificate_id", "check_certificate_id", "first_certificate", "parse_renewal_info"]

_B64URL = r"[A-Za-z0-9_-]+"
_CERTIFICATE_ID = re.compile(rf"^{_B64URL}\.{_B64URL}$")
# RFC 3339 date-time: a date, "T" (or a space), a time with optional fraction, and "Z" or an offset.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True, slots=True)
class RenewalInfo:
    """The CA's suggested renewal window for one certificate (RFC 9773 §4.2)."""

    start: datetime  # aware, UTC
    end: datetime  # aware, UTC; later than start
    retry_after: float | None  # seconds until the CA wants to be asked again (Retry-After), when it said
    explanation_url: str | None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def certificate_id(certificate: x509.Certificate) -> str:
    """The RFC 9773 §4.1 id: base64url(AKI keyIdentifier) "." base64url(serial's DER INTEGER content), no padding.

    ValueError when the certificate has no Authority Key Identifier with a keyIdentifier.
    """
    try:
        aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        aki = None
    if aki is None or not aki.key_identifier:
        raise ValueError("certificate: it has no Authority Key Identifier (keyIdentifier), so it has no ACME "
                         "renewal information id")
    serial = certificate.serial_number
    # The INTEGER's content octets: minimal two's complement, so a leading 0x00 when the top bit is set.
    length = ((serial + 1 if serial < 0 else serial).bit_length() + 8) // 8
    return f"{_b64url(aki.key_identifier)}.{_b64url(serial.to_bytes(length, 'big', signed=True))}"


def check_certificate_id(value: str, field: str = "replaces") -> str:
    """``value`` when it has the form of an RFC 9773 certificate id, else ValueError naming ``field``."""
    if not isinstance(value, str) or not _CERTIFICATE_ID.match(value):
        raise ValueError(f"{field}: {value!r} is not an ACME certificate id (base64url key id '.' base64url serial)")
    return value


def first_certificate(certificate_pem: str) -> x509.Certificate:
    """The first certificate of a PEM text (a leaf, or a leaf followed by its chain)."""
    try:
        found = x509.load_pem_x509_certificates(certificate_pem.encode())
    except ValueError:
        found = []
    if not found:
        raise ValueError("certificate_pem: no PEM certificate in it")
    return found[0]


def _timestamp(window: dict[str, Any], key: str, where: str) -> datetime:
    value = window.get(key)
    if value is None:
        raise AcmeError(f"{where}: suggestedWindow.{key} is missing")
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise AcmeError(f"{where}: suggestedWindow.{key} {value!r} is not an RFC 3339 timestamp")
    try:
        parsed = datetime.fromisoformat(value.upper().replace(" ", "T"))
    except ValueError:
        raise AcmeError(f"{where}: suggestedWindow.{key} {value!r} is not a valid date and time") from None
    return parsed.astimezone(UTC)


def parse_renewal_info(document: Any, retry_after: float | None, where: str = "the ACME server's renewalInfo") -> RenewalInfo:
    """A :class:`RenewalInfo` from the JSON answer; :class:`AcmeError` naming the field when it is malformed."""
    if not isinstance(document, dict):
        raise AcmeError(f"{where}: the answer is not a JSON object")
    window = document.get("suggestedWindow")
    if window is None:
        raise AcmeError(f"{where}: suggestedWindow is missing")
    if not isinstance(window, dict):
        raise AcmeError(f"{where}: suggestedWindow is not an object")
    start, end = _timestamp(window, "start", where), _timestamp(window, "end", where)
    if end <= start:
        raise AcmeError(f"{where}: suggestedWindow.end ({end.isoformat()}) is not later than suggestedWindow.start "
                        f"({start.isoformat()})")
    explanation = document.get("explanationURL")
    if explanation is not None and (not isinstance(explanation, str) or not explanation.strip()):
        raise AcmeError(f"{where}: explanationURL is not a URL")
    return RenewalInfo(start, end, retry_after, explanation)
