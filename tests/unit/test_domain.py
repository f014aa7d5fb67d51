"""Pure domain rules, with a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from certsmith.domain.arns import AuthorityArn, IssuedCertificateArn
from certsmith.domain.authority import AuthorityStatus, deletion, reported_status, restoration, status_update
from certsmith.domain.errors import (
    InvalidArgsError,
    InvalidArnError,
    InvalidStateError,
    MalformedCSRError,
    ValidationError,
)
from certsmith.domain.issuance import load_csr
from certsmith.domain.names import subject_name
from certsmith.domain.templates import TEMPLATES, template_for_arn
from certsmith.domain.validity import Validity, ValidityPeriodType, add_months, issuance_window
from certsmith.keys.sealing import KeySealer

NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)


def test_validity_types() -> None:
    assert Validity(10, ValidityPeriodType.DAYS).instant(NOW, "Validity") == NOW + timedelta(days=10)
    assert Validity(1, ValidityPeriodType.MONTHS).instant(NOW, "Validity") == datetime(2026, 4, 30, 12, tzinfo=UTC)
    assert Validity(2, ValidityPeriodType.YEARS).instant(NOW, "Validity").year == 2028
    assert Validity(491011235959, ValidityPeriodType.END_DATE).instant(NOW, "Validity").year == 2049
    assert Validity(501011235959, ValidityPeriodType.END_DATE).instant(NOW, "Validity").year == 1950
    assert Validity(20301231235959, ValidityPeriodType.END_DATE).instant(NOW, "Validity") == \
        datetime(2030, 12, 31, 23, 59, 59, tzinfo=UTC)
    with pytest.raises(ValidationError):
        Validity(2030, ValidityPeriodType.END_DATE).instant(NOW, "Validity")
    with pytest.raises(ValueError, match="at least 1"):
        Validity(0, ValidityPeriodType.DAYS)
    assert add_months(datetime(2024, 1, 31, tzinfo=UTC), 1) == datetime(2024, 2, 29, tzinfo=UTC)


def test_issuance_window_rules() -> None:
    start, end = issuance_window(NOW, Validity(30, ValidityPeriodType.DAYS), None, NOW + timedelta(days=365), False)
    assert start == NOW - timedelta(minutes=60) and end == NOW + timedelta(days=30)
    with pytest.raises(InvalidArgsError, match="after the CA certificate expires"):
        issuance_window(NOW, Validity(2, ValidityPeriodType.YEARS), None, NOW + timedelta(days=365), False)
    with pytest.raises(InvalidArgsError, match="7 days"):
        issuance_window(NOW, Validity(8, ValidityPeriodType.DAYS), None, None, True)
    with pytest.raises(InvalidArgsError, match="ABSOLUTE"):
        issuance_window(NOW, Validity(8, ValidityPeriodType.DAYS), Validity(1, ValidityPeriodType.DAYS), None, False)
    with pytest.raises(InvalidArgsError, match="past"):
        issuance_window(NOW, Validity(1000, ValidityPeriodType.ABSOLUTE), None, None, False)


def test_state_machine() -> None:
    assert reported_status(AuthorityStatus.ACTIVE, NOW - timedelta(seconds=1), NOW) is AuthorityStatus.EXPIRED
    assert reported_status(AuthorityStatus.DELETED, NOW - timedelta(seconds=1), NOW) is AuthorityStatus.DELETED
    with pytest.raises(InvalidStateError, match="disable it"):
        deletion(AuthorityStatus.ACTIVE, None, NOW)
    assert deletion(AuthorityStatus.DISABLED, None, NOW) == (AuthorityStatus.DISABLED, NOW + timedelta(days=30))
    assert deletion(AuthorityStatus.CREATING, 7, NOW) == (None, NOW)
    restore_to, until = deletion(AuthorityStatus.PENDING_CERTIFICATE, 7, NOW)
    assert restoration(AuthorityStatus.DELETED, restore_to, until, NOW + timedelta(days=6)) is \
        AuthorityStatus.PENDING_CERTIFICATE
    with pytest.raises(InvalidStateError, match="window"):
        restoration(AuthorityStatus.DELETED, restore_to, until, NOW + timedelta(days=8))
    with pytest.raises(InvalidStateError):
        status_update(AuthorityStatus.PENDING_CERTIFICATE, AuthorityStatus.ACTIVE)
    with pytest.raises(InvalidArgsError):
        status_update(AuthorityStatus.ACTIVE, AuthorityStatus.DELETED)


def test_arns_round_trip() -> None:
    arn = AuthorityArn.new("eu-west-1", "123456789012")
    assert AuthorityArn.parse(str(arn)) == arn
    issued = IssuedCertificateArn.parse(f"{arn}/certificate/abc123")
    assert issued.authority == arn and issued.serial_hex == "abc123"
    gov = AuthorityArn.new("us-gov-west-1", "123456789012")
    assert str(gov).startswith("arn:aws-us-gov:")
    with pytest.raises(InvalidArnError, match="partition"):
        AuthorityArn.parse(str(gov).replace("aws-us-gov", "aws"))


def test_templates() -> None:
    assert template_for_arn(None).name == "EndEntityCertificate"
    assert template_for_arn("arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen2_APICSRPassthrough/V1") \
        .path_length == 2
    blank = TEMPLATES["BlankEndEntityCertificate_CriticalBasicConstraints_APIPassthrough"]
    assert blank.blank and blank.critical_basic_constraints and not blank.is_ca
    with pytest.raises(InvalidArgsError):
        template_for_arn("arn:aws:acm-pca:::template/EndEntityCertificate/V2")


def test_subject_rules() -> None:
    name = subject_name({"CommonName": "ca", "Organization": "o", "Country": "DE"})
    assert name.rfc4514_string() == "CN=ca,O=o,C=DE"
    with pytest.raises(InvalidArgsError, match="cannot be combined"):
        subject_name({"CommonName": "x", "CustomAttributes": [{"ObjectIdentifier": "2.5.4.3", "Value": "y"}]})
    with pytest.raises(ValidationError, match="PrintableString"):
        subject_name({"SerialNumber": "ü"})


def test_sealed_keys_are_bound_to_their_resource() -> None:
    sealer = KeySealer(b"k" * 32)
    sealed = sealer.seal(b"secret", "arn:one")
    assert sealer.open(sealed, "arn:one") == b"secret"
    assert b"secret" not in sealed
    with pytest.raises(Exception, match="does not open"):
        sealer.open(sealed, "arn:two")
    with pytest.raises(Exception, match="does not open"):
        KeySealer(b"x" * 32).open(sealed, "arn:one")


@pytest.mark.parametrize("data,reason", [
    (b"not a csr", "neither PEM (-----BEGIN CERTIFICATE REQUEST-----) nor a DER request"),
    (b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
     "its PEM block does not hold a well-formed request"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "its PEM block is not a CERTIFICATE REQUEST"),
    (b"-----BEGIN CERTIFICATE REQUEST-----\n!!!\n-----END CERTIFICATE REQUEST-----\n", "cannot be decoded"),
])
def test_unreadable_csr_reasons_are_plain_words(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedCSRError) as caught:
        load_csr(data)
    assert caught.value.message.startswith("Csr is not a certificate signing request: ")
    assert reason in caught.value.message
    assert "ParseError" not in caught.value.message and "cryptography.io" not in caught.value.message
