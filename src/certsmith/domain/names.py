"""X.500 subjects and general names, built from ACM-PCA's ASN1Subject / GeneralName documents.

These documents are the vocabulary PCA templates and passthrough are defined in, so the domain
reads them directly; the API edge only checks their JSON types.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from .errors import InvalidArgsError, ValidationError

__all__ = ["OID_PATTERN", "general_name", "parse_oid", "subject_name"]

OID_PATTERN = re.compile(r"^([0-2])\.([0-9]|([0-3][0-9]))((\.([0-9]+)){0,126})$")
_PRINTABLE = re.compile(r"^[a-zA-Z0-9'()+\-.?:/= ]*$")

# (document key, OID, max length, printable-only)
_SUBJECT_ATTRIBUTES: tuple[tuple[str, ObjectIdentifier, int, bool], ...] = (
    ("Country", NameOID.COUNTRY_NAME, 2, False),
    ("State", NameOID.STATE_OR_PROVINCE_NAME, 128, False),
    ("Locality", NameOID.LOCALITY_NAME, 128, False),
    ("Organization", NameOID.ORGANIZATION_NAME, 64, False),
    ("OrganizationalUnit", NameOID.ORGANIZATIONAL_UNIT_NAME, 64, False),
    ("DistinguishedNameQualifier", NameOID.DN_QUALIFIER, 64, True),
    ("SerialNumber", NameOID.SERIAL_NUMBER, 64, True),
    ("Title", NameOID.TITLE, 64, False),
    ("Surname", NameOID.SURNAME, 40, False),
    ("GivenName", NameOID.GIVEN_NAME, 16, False),
    ("Initials", NameOID.INITIALS, 5, False),
    ("Pseudonym", NameOID.PSEUDONYM, 128, False),
    ("GenerationQualifier", NameOID.GENERATION_QUALIFIER, 3, False),
    ("CommonName", NameOID.COMMON_NAME, 64, False),
)
_KNOWN_SUBJECT_KEYS = {key for key, *_ in _SUBJECT_ATTRIBUTES} | {"CustomAttributes"}


def parse_oid(text: Any, field: str) -> ObjectIdentifier:
    if not isinstance(text, str) or len(text) > 64 or not OID_PATTERN.match(text):
        raise ValidationError(f"{field} {text!r} is not an object identifier (dotted decimal, e.g. 1.3.6.1.4.1.99)",
                              field=field)
    return ObjectIdentifier(text)


def _text(value: Any, field: str, max_length: int, min_length: int = 0) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string", field=field)
    if not min_length <= len(value) <= max_length:
        raise ValidationError(f"{field} is {len(value)} characters long; it must be {min_length} to "
                              f"{max_length}", field=field)
    return value


def _attribute(oid: ObjectIdentifier, value: str, field: str) -> x509.NameAttribute[str]:
    try:
        return x509.NameAttribute(oid, value)
    except ValueError as exc:  # cryptography counts UTF-8 bytes (64 for a common name) where the model counts characters
        raise ValidationError(f"{field} is {len(value.encode('utf-8', 'surrogatepass'))} bytes in UTF-8, too long for "
                              f"its X.509 attribute ({exc})", field=field) from None


def subject_name(document: Mapping[str, Any], field: str = "Subject") -> x509.Name:
    """An x509.Name from an ASN1Subject document; raises ValidationError naming the bad member."""
    if not isinstance(document, Mapping):
        raise ValidationError(f"{field} must be an object", field=field)
    unknown = set(document) - _KNOWN_SUBJECT_KEYS
    if unknown:
        raise ValidationError(f"{field} has unknown member(s) {sorted(unknown)}", field=field)
    custom = document.get("CustomAttributes")
    standard = [key for key in document if key != "CustomAttributes"]
    if custom is not None and standard:
        raise InvalidArgsError(f"{field}.CustomAttributes cannot be combined with standard attributes "
                               f"({', '.join(sorted(standard))})", field=f"{field}.CustomAttributes")
    attributes: list[x509.NameAttribute[str]] = []
    if custom is not None:
        if not isinstance(custom, list) or not 1 <= len(custom) <= 150:
            raise ValidationError(f"{field}.CustomAttributes must be a list of 1 to 150 items",
                                  field=f"{field}.CustomAttributes")
        for index, item in enumerate(custom):
            path = f"{field}.CustomAttributes[{index}]"
            if not isinstance(item, Mapping):
                raise ValidationError(f"{path} must be an object", field=path)
            oid = parse_oid(item.get("ObjectIdentifier"), f"{path}.ObjectIdentifier")
            value = _text(item.get("Value"), f"{path}.Value", 256, 1)
            attributes.append(_attribute(oid, value, f"{path}.Value"))
        return x509.Name(attributes)
    for key, oid, max_length, printable in _SUBJECT_ATTRIBUTES:
        if key not in document:
            continue
        value = _text(document[key], f"{field}.{key}", max_length)
        if key == "Country" and not re.fullmatch(r"[A-Za-z]{2}", value):
            raise ValidationError(f"{field}.Country {value!r} must be a two-letter country code",
                                  field=f"{field}.Country")
        if printable and not _PRINTABLE.match(value):
            raise ValidationError(f"{field}.{key} may contain only PrintableString characters",
                                  field=f"{field}.{key}")
        if value:
            attributes.append(_attribute(oid, value, f"{field}.{key}"))
    return x509.Name(attributes)


def general_name(document: Mapping[str, Any], field: str) -> x509.GeneralName:
    """An x509.GeneralName from a GeneralName document with exactly one member."""
    if not isinstance(document, Mapping):
        raise ValidationError(f"{field} must be an object", field=field)
    members = [key for key, value in document.items() if value is not None]
    if len(members) != 1:
        raise InvalidArgsError(f"{field} must have exactly one member, not {len(members)} ({members})", field=field)
    key = members[0]
    value = document[key]
    path = f"{field}.{key}"
    if key == "DnsName":
        text = _text(value, path, 253, 1)
        try:
            return x509.DNSName(text.encode("idna").decode("ascii") if not text.isascii() else text)
        except UnicodeError:
            raise ValidationError(f"{path} {text!r} is not a valid DNS name", field=path) from None
    if key == "Rfc822Name":
        return x509.RFC822Name(_text(value, path, 256, 1))
    if key == "UniformResourceIdentifier":
        return x509.UniformResourceIdentifier(_text(value, path, 253, 1))
    if key == "IpAddress":
        text = _text(value, path, 39, 1)
        try:
            return x509.IPAddress(ipaddress.ip_address(text))
        except ValueError:
            raise ValidationError(f"{path} {text!r} is not an IPv4 or IPv6 address", field=path) from None
    if key == "RegisteredId":
        return x509.RegisteredID(parse_oid(value, path))
    if key == "DirectoryName":
        return x509.DirectoryName(subject_name(value, path))
    if key == "OtherName":
        if not isinstance(value, Mapping):
            raise ValidationError(f"{path} must be an object", field=path)
        oid = parse_oid(value.get("TypeId"), f"{path}.TypeId")
        encoded = _text(value.get("Value"), f"{path}.Value", 256, 1).encode("utf-8")
        # An OtherName value is [0] EXPLICIT ANY; certsmith encodes the text as a UTF8String.
        inner = b"\x0c" + _der_length(len(encoded)) + encoded
        return x509.OtherName(oid, inner)
    if key == "EdiPartyName":
        raise InvalidArgsError(f"{path} is not supported by certsmith", field=path)
    raise ValidationError(f"{field} has unknown member {key!r}", field=field)


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw
