"""SearchCertificates results on the wire: X509Attributes read from the certificate, and ACM metadata."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from ...services.acm.certificate_records import CertificateRecord, renewal_eligibility

__all__ = ["distinguished_name", "search_result"]

_SINGLE = {
    NameOID.COMMON_NAME: "CommonName", NameOID.COUNTRY_NAME: "Country", NameOID.DN_QUALIFIER: "DistinguishedNameQualifier",
    NameOID.GENERATION_QUALIFIER: "GenerationQualifier", NameOID.GIVEN_NAME: "GivenName", NameOID.INITIALS: "Initials",
    NameOID.LOCALITY_NAME: "Locality", NameOID.ORGANIZATION_NAME: "Organization",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OrganizationalUnit", NameOID.PSEUDONYM: "Pseudonym",
    NameOID.SERIAL_NUMBER: "SerialNumber", NameOID.STATE_OR_PROVINCE_NAME: "State", NameOID.SURNAME: "Surname",
    NameOID.TITLE: "Title",
}


def distinguished_name(name: x509.Name) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for attribute in name:
        if attribute.oid == NameOID.DOMAIN_COMPONENT:
            document.setdefault("DomainComponents", []).append(str(attribute.value))
        elif attribute.oid in _SINGLE:
            document[_SINGLE[attribute.oid]] = str(attribute.value)
        else:
            document.setdefault("CustomAttributes", []).append(
                {"ObjectIdentifier": attribute.oid.dotted_string, "Value": str(attribute.value)})
    return document


def _general_name(name: x509.GeneralName) -> dict[str, Any]:
    if isinstance(name, x509.DNSName):
        return {"DnsName": name.value}
    if isinstance(name, x509.IPAddress):
        return {"IpAddress": str(name.value)}
    if isinstance(name, x509.RFC822Name):
        return {"Rfc822Name": name.value}
    if isinstance(name, x509.UniformResourceIdentifier):
        return {"UniformResourceIdentifier": name.value}
    if isinstance(name, x509.RegisteredID):
        return {"RegisteredId": name.value.dotted_string}
    if isinstance(name, x509.DirectoryName):
        return {"DirectoryName": distinguished_name(name.value)}
    if isinstance(name, x509.OtherName):
        return {"OtherName": {"ObjectIdentifier": name.type_id.dotted_string, "Value": name.value.hex()}}
    return {}


def search_result(record: CertificateRecord, certificate_pem: str | None) -> dict[str, Any]:
    metadata = {
        "CreatedAt": record.created_at if record.type != "IMPORTED" else None, "Exported": record.exported,
        "ImportedAt": record.imported_at, "InUse": bool(record.in_use_by), "IssuedAt": record.issued_at,
        "RenewalEligibility": renewal_eligibility(record), "RevokedAt": record.revoked_at, "Status": record.status,
        "RenewalStatus": (record.renewal or {}).get("RenewalStatus"), "Type": record.type,
        "ExportOption": record.options.get("Export", "DISABLED"), "CertificateKeyPairOrigin": record.key_pair_origin,
    }
    result: dict[str, Any] = {"CertificateArn": record.arn, "CertificateMetadata": {"AcmCertificateMetadata": metadata}}
    if certificate_pem is not None:
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
        try:
            sans = [_general_name(n) for n in certificate.extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value]
        except x509.ExtensionNotFound:
            sans = []
        result["X509Attributes"] = {
            "Issuer": distinguished_name(certificate.issuer), "Subject": distinguished_name(certificate.subject),
            "SubjectAlternativeNames": sans, "ExtendedKeyUsages": [e["Name"] for e in record.extended_key_usages],
            "KeyAlgorithm": record.key_algorithm, "KeyUsages": record.key_usages, "SerialNumber": record.serial,
            "NotAfter": record.not_after, "NotBefore": record.not_before,
        }
    return result
