"""ApiPassthrough: subject and extensions a caller asks to put in a certificate."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from .errors import InvalidArgsError, ValidationError
from .names import general_name, parse_oid, subject_name

__all__ = ["EKU_OIDS", "Passthrough", "key_usage_from_document", "passthrough_from_document"]

EKU_OIDS: dict[str, ObjectIdentifier] = {
    "SERVER_AUTH": ExtendedKeyUsageOID.SERVER_AUTH,
    "CLIENT_AUTH": ExtendedKeyUsageOID.CLIENT_AUTH,
    "CODE_SIGNING": ExtendedKeyUsageOID.CODE_SIGNING,
    "EMAIL_PROTECTION": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "TIME_STAMPING": ExtendedKeyUsageOID.TIME_STAMPING,
    "OCSP_SIGNING": ExtendedKeyUsageOID.OCSP_SIGNING,
    "SMART_CARD_LOGIN": ObjectIdentifier("1.3.6.1.4.1.311.20.2.2"),
    "DOCUMENT_SIGNING": ObjectIdentifier("1.3.6.1.4.1.311.10.3.12"),
    "CERTIFICATE_TRANSPARENCY": ObjectIdentifier("1.3.6.1.4.1.11129.2.4.4"),
}
_KEY_USAGE_MEMBERS = {
    "DigitalSignature": "digital_signature", "NonRepudiation": "content_commitment",
    "KeyEncipherment": "key_encipherment", "DataEncipherment": "data_encipherment",
    "KeyAgreement": "key_agreement", "KeyCertSign": "key_cert_sign", "CRLSign": "crl_sign",
    "EncipherOnly": "encipher_only", "DecipherOnly": "decipher_only",
}
_CPS = ObjectIdentifier("1.3.6.1.5.5.7.2.1")


@dataclass(frozen=True, slots=True)
class Passthrough:
    subject: x509.Name | None = None
    extensions: tuple[x509.Extension[x509.ExtensionType], ...] = field(default=())


def _list(value: Any, path: str, max_items: int) -> list[Any]:
    if not isinstance(value, list) or not 1 <= len(value) <= max_items:
        raise ValidationError(f"{path} must be a list of 1 to {max_items} items", field=path)
    return value


def key_usage_from_document(document: Any, path: str) -> x509.KeyUsage:
    if not isinstance(document, Mapping):
        raise ValidationError(f"{path} must be an object", field=path)
    unknown = set(document) - set(_KEY_USAGE_MEMBERS)
    if unknown:
        raise ValidationError(f"{path} has unknown member(s) {sorted(unknown)}", field=path)
    flags = {attr: bool(document.get(key, False)) for key, attr in _KEY_USAGE_MEMBERS.items()}
    if (flags["encipher_only"] or flags["decipher_only"]) and not flags["key_agreement"]:
        raise InvalidArgsError(f"{path}: EncipherOnly and DecipherOnly require KeyAgreement", field=path)
    return x509.KeyUsage(**flags)


def _extended_key_usage(items: list[Any], path: str) -> x509.ExtendedKeyUsage:
    oids: list[ObjectIdentifier] = []
    for index, item in enumerate(items):
        item_path = f"{path}[{index}]"
        if not isinstance(item, Mapping):
            raise ValidationError(f"{item_path} must be an object", field=item_path)
        kind, custom = item.get("ExtendedKeyUsageType"), item.get("ExtendedKeyUsageObjectIdentifier")
        if (kind is None) == (custom is None):
            raise InvalidArgsError(f"{item_path} needs exactly one of ExtendedKeyUsageType and "
                                   "ExtendedKeyUsageObjectIdentifier", field=item_path)
        if kind is not None:
            if kind not in EKU_OIDS:
                raise ValidationError(f"{item_path}.ExtendedKeyUsageType {kind!r} is not one of "
                                      f"{', '.join(EKU_OIDS)}", field=f"{item_path}.ExtendedKeyUsageType")
            oids.append(EKU_OIDS[kind])
        else:
            oids.append(parse_oid(custom, f"{item_path}.ExtendedKeyUsageObjectIdentifier"))
    return x509.ExtendedKeyUsage(oids)


def _policies(items: list[Any], path: str) -> x509.CertificatePolicies:
    policies: list[x509.PolicyInformation] = []
    for index, item in enumerate(items):
        item_path = f"{path}[{index}]"
        if not isinstance(item, Mapping):
            raise ValidationError(f"{item_path} must be an object", field=item_path)
        oid = parse_oid(item.get("CertPolicyId"), f"{item_path}.CertPolicyId")
        qualifiers: list[str | x509.UserNotice] | None = None
        if item.get("PolicyQualifiers") is not None:
            qualifiers = []
            for q_index, qualifier in enumerate(_list(item["PolicyQualifiers"], f"{item_path}.PolicyQualifiers", 20)):
                q_path = f"{item_path}.PolicyQualifiers[{q_index}]"
                if not isinstance(qualifier, Mapping) or qualifier.get("PolicyQualifierId") != "CPS":
                    raise ValidationError(f"{q_path}.PolicyQualifierId must be CPS", field=q_path)
                uri = (qualifier.get("Qualifier") or {}).get("CpsUri")
                if not isinstance(uri, str) or not 1 <= len(uri) <= 256:
                    raise ValidationError(f"{q_path}.Qualifier.CpsUri must be a string of 1 to 256 characters",
                                          field=f"{q_path}.Qualifier.CpsUri")
                qualifiers.append(uri)
        policies.append(x509.PolicyInformation(oid, qualifiers))
    return x509.CertificatePolicies(policies)


def passthrough_from_document(document: Mapping[str, Any] | None, path: str = "ApiPassthrough") -> Passthrough:
    """Read an ApiPassthrough document; raises ValidationError/InvalidArgsError naming the member."""
    if document is None:
        return Passthrough()
    if not isinstance(document, Mapping):
        raise ValidationError(f"{path} must be an object", field=path)
    subject = subject_name(document["Subject"], f"{path}.Subject") if document.get("Subject") is not None else None
    extensions: list[x509.Extension[x509.ExtensionType]] = []
    ext_doc = document.get("Extensions")
    if ext_doc is not None:
        ext_path = f"{path}.Extensions"
        if not isinstance(ext_doc, Mapping):
            raise ValidationError(f"{ext_path} must be an object", field=ext_path)
        if ext_doc.get("KeyUsage") is not None:
            ku = key_usage_from_document(ext_doc["KeyUsage"], f"{ext_path}.KeyUsage")
            extensions.append(x509.Extension(ku.oid, True, ku))
        if ext_doc.get("ExtendedKeyUsage") is not None:
            eku = _extended_key_usage(_list(ext_doc["ExtendedKeyUsage"], f"{ext_path}.ExtendedKeyUsage", 20),
                                      f"{ext_path}.ExtendedKeyUsage")
            extensions.append(x509.Extension(eku.oid, False, eku))
        if ext_doc.get("SubjectAlternativeNames") is not None:
            names = [general_name(item, f"{ext_path}.SubjectAlternativeNames[{index}]") for index, item in
                     enumerate(_list(ext_doc["SubjectAlternativeNames"], f"{ext_path}.SubjectAlternativeNames", 150))]
            san = x509.SubjectAlternativeName(names)
            extensions.append(x509.Extension(san.oid, False, san))
        if ext_doc.get("CertificatePolicies") is not None:
            policies = _policies(_list(ext_doc["CertificatePolicies"], f"{ext_path}.CertificatePolicies", 20),
                                 f"{ext_path}.CertificatePolicies")
            extensions.append(x509.Extension(policies.oid, False, policies))
        if ext_doc.get("CustomExtensions") is not None:
            items = _list(ext_doc["CustomExtensions"], f"{ext_path}.CustomExtensions", 150)
            for index, item in enumerate(items):
                item_path = f"{ext_path}.CustomExtensions[{index}]"
                if not isinstance(item, Mapping):
                    raise ValidationError(f"{item_path} must be an object", field=item_path)
                oid = parse_oid(item.get("ObjectIdentifier"), f"{item_path}.ObjectIdentifier")
                value = item.get("Value")
                if not isinstance(value, str) or not 1 <= len(value) <= 4096:
                    raise ValidationError(f"{item_path}.Value must be base64 of 1 to 4096 characters",
                                          field=f"{item_path}.Value")
                try:
                    raw = base64.b64decode(value, validate=True)
                except binascii.Error:
                    raise ValidationError(f"{item_path}.Value is not valid base64", field=f"{item_path}.Value") from None
                extensions.append(x509.Extension(oid, bool(item.get("Critical", False)),
                                                 x509.UnrecognizedExtension(oid, raw)))
    seen: set[ObjectIdentifier] = set()
    for extension in extensions:
        if extension.oid in seen:
            raise InvalidArgsError(f"{path} sets extension {extension.oid.dotted_string} twice", field=path)
        seen.add(extension.oid)
    return Passthrough(subject, tuple(extensions))
