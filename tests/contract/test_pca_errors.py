"""Every bad input gets the reference's error code and a message naming the field, never a 500."""

from __future__ import annotations

import base64
from typing import Any

import botocore.config
import pytest
from botocore.exceptions import ClientError

from certsmith.testing.pki import ROOT_TEMPLATE, create_ca, issue, make_csr, root_ca

from ..conftest import Server

GOOD_CONFIG = {"KeyAlgorithm": "EC_prime256v1", "SigningAlgorithm": "SHA256WITHECDSA", "Subject": {"CommonName": "x"}}


def error_of(call: Any, **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    error = info.value.response["Error"]
    return error["Code"], error["Message"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture(scope="module")
def root(pca: Any) -> str:
    return root_ca(pca, "Errors Root")


@pytest.fixture(scope="module")
def unchecked(server: Server) -> Any:
    """A client that skips botocore's own checks, so that the server sees what a careless SDK sends."""
    return server.client("acm-pca", config=botocore.config.Config(parameter_validation=False))


@pytest.mark.parametrize("arn,fragment", [
    ("arn:aws:acm-pca:us-east-1:123456789012:bogus/xyz", "does not name a certificate authority"),
    ("arn:aws:acm:us-east-1:123456789012:certificate/0b1e4b58-7b6a-4a0e-9a71-5b6f3e2a1c11", "not an ACM-PCA ARN"),
    ("arn:aws:acm-pca:us-east-1:12345:certificate-authority/0b1e4b58-7b6a-4a0e-9a71-5b6f3e2a1c11", "12-digit"),
])
def test_bad_arns(pca: Any, arn: str, fragment: str) -> None:
    code, message, status = error_of(pca.describe_certificate_authority, CertificateAuthorityArn=arn)
    assert (code, status) == ("InvalidArnException", 400)
    assert fragment in message and "CertificateAuthorityArn" in message


def test_unknown_ca(pca: Any, server: Server) -> None:
    account = pca.list_certificate_authorities()["CertificateAuthorities"]
    arn = (account[0]["Arn"].rsplit("/", 1)[0] if account else
           "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority") + "/0b1e4b58-7b6a-4a0e-9a71-5b6f3e2a1c11"
    code, _, _ = error_of(pca.describe_certificate_authority, CertificateAuthorityArn=arn)
    assert code == "ResourceNotFoundException"


@pytest.mark.parametrize("config,field", [
    ({**GOOD_CONFIG, "KeyAlgorithm": "EC_prime256v9"}, "certificateAuthorityConfiguration.keyAlgorithm"),
    ({**GOOD_CONFIG, "SigningAlgorithm": "MD5WITHRSA"}, "certificateAuthorityConfiguration.signingAlgorithm"),
    ({**GOOD_CONFIG, "Subject": {"CommonName": "x" * 65}}, "certificateAuthorityConfiguration.subject.commonName"),
    ({**GOOD_CONFIG, "Subject": {"Country": "USA"}}, "certificateAuthorityConfiguration.subject.country"),
])
def test_create_shape_violations(unchecked: Any, config: dict[str, Any], field: str) -> None:
    code, message, status = error_of(unchecked.create_certificate_authority, CertificateAuthorityType="ROOT",
                                     CertificateAuthorityConfiguration=config)
    assert (code, status) == ("ValidationException", 400)
    assert f"at '{field}'" in message


def test_create_requires_members(unchecked: Any) -> None:
    code, message, _ = error_of(unchecked.create_certificate_authority, CertificateAuthorityType="ROOT")
    assert code == "ValidationException"
    assert "certificateAuthorityConfiguration" in message and "must not be null" in message


def test_key_family_mismatch(pca: Any) -> None:
    code, message, _ = error_of(pca.create_certificate_authority, CertificateAuthorityType="ROOT",
                                CertificateAuthorityConfiguration={**GOOD_CONFIG, "SigningAlgorithm": "SHA256WITHRSA"})
    assert code == "InvalidArgsException" and "SigningAlgorithm" in message


def test_unsupported_key_algorithm(pca: Any) -> None:
    code, message, _ = error_of(pca.create_certificate_authority, CertificateAuthorityType="ROOT",
                                CertificateAuthorityConfiguration={**GOOD_CONFIG, "KeyAlgorithm": "ML_DSA_44",
                                                                   "SigningAlgorithm": "ML_DSA_44"})
    assert code == "InvalidArgsException" and "KeyAlgorithm" in message


def test_crl_disabled_with_other_members(pca: Any) -> None:
    code, message, _ = error_of(pca.create_certificate_authority, CertificateAuthorityType="ROOT",
                                CertificateAuthorityConfiguration=GOOD_CONFIG,
                                RevocationConfiguration={"CrlConfiguration": {"Enabled": False, "ExpirationInDays": 3}})
    assert code == "InvalidArgsException" and "CrlConfiguration" in message


def test_malformed_csr(pca: Any, root: str) -> None:
    code, message, _ = error_of(pca.issue_certificate, CertificateAuthorityArn=root, Csr=b"not a csr",
                                SigningAlgorithm="SHA256WITHECDSA", Validity={"Type": "DAYS", "Value": 1})
    assert code == "MalformedCSRException" and "Csr" in message


def test_csr_with_bad_signature(pca: Any, root: str) -> None:
    csr, _ = make_csr("tampered.test")
    der = bytearray(base64.b64decode(b"".join(csr.splitlines()[1:-1])))
    der[-5] ^= 0xFF  # flip bits inside the signature
    body = base64.encodebytes(bytes(der))
    tampered = b"-----BEGIN CERTIFICATE REQUEST-----\n" + body + b"-----END CERTIFICATE REQUEST-----\n"
    code, message, _ = error_of(pca.issue_certificate, CertificateAuthorityArn=root, Csr=tampered,
                                SigningAlgorithm="SHA256WITHECDSA", Validity={"Type": "DAYS", "Value": 1})
    assert code == "MalformedCSRException" and "signature" in message


@pytest.mark.parametrize("signing,validity,code,fragments", [
    ("SHA256WITHECDSA", {"Type": "YEARS", "Value": 50}, "InvalidArgsException",
     ("Validity", "CA certificate expires")),
    ("SHA256WITHRSA", {"Type": "DAYS", "Value": 1}, "InvalidArgsException", ("SigningAlgorithm",)),
    ("SHA256WITHECDSA", {"Type": "WEEKS", "Value": 1}, "ValidationException", ("validity.type",)),
])
def test_issue_argument_errors(unchecked: Any, root: str, signing: str, validity: dict[str, Any], code: str,
                               fragments: tuple[str, ...]) -> None:
    csr, _ = make_csr("arguments.test")
    got, message, _ = error_of(unchecked.issue_certificate, CertificateAuthorityArn=root, Csr=csr,
                               SigningAlgorithm=signing, Validity=validity)
    assert got == code and all(fragment in message for fragment in fragments), message


def test_bad_template(pca: Any, root: str) -> None:
    csr, _ = make_csr("t.test")
    code, message, _ = error_of(pca.issue_certificate, CertificateAuthorityArn=root, Csr=csr,
                                SigningAlgorithm="SHA256WITHECDSA", Validity={"Type": "DAYS", "Value": 1},
                                TemplateArn="arn:aws:acm-pca:::template/NoSuchTemplate/V1")
    assert code == "InvalidArgsException" and "TemplateArn" in message


def test_issue_from_pending_ca(pca: Any) -> None:
    arn = create_ca(pca, "ROOT", "Pending Root")
    csr, _ = make_csr("p.test")
    code, message, _ = error_of(pca.issue_certificate, CertificateAuthorityArn=arn, Csr=csr,
                                SigningAlgorithm="SHA256WITHECDSA", Validity={"Type": "DAYS", "Value": 1})
    assert code == "InvalidStateException" and "PENDING_CERTIFICATE" in message


def test_import_checks(pca: Any, root: str) -> None:
    arn = create_ca(pca, "ROOT", "Import Root")
    # A certificate whose key is not the CA's key.
    csr, _ = make_csr("not-the-ca.test")
    _, foreign = issue(pca, root, csr)
    code, message, _ = error_of(pca.import_certificate_authority_certificate, CertificateAuthorityArn=arn,
                                Certificate=foreign["Certificate"].encode())
    assert code == "CertificateMismatchException" and "key" in message
    code, _, _ = error_of(pca.import_certificate_authority_certificate, CertificateAuthorityArn=arn,
                          Certificate=b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert code == "MalformedCertificateException"
    # A subordinate cannot sign its own certificate with the root template (self-signed import: unit tests).
    sub = create_ca(pca, "SUBORDINATE", "Import Sub")
    sub_csr = pca.get_certificate_authority_csr(CertificateAuthorityArn=sub)["Csr"].encode()
    code, message, _ = error_of(pca.issue_certificate, CertificateAuthorityArn=sub, Csr=sub_csr,
                                SigningAlgorithm="SHA256WITHECDSA", TemplateArn=ROOT_TEMPLATE,
                                Validity={"Type": "YEARS", "Value": 1})
    assert code == "InvalidStateException" and "PENDING_CERTIFICATE" in message


def test_subordinate_chain_order(pca: Any, root: str) -> None:
    middle = create_ca(pca, "SUBORDINATE", "Middle")
    csr = pca.get_certificate_authority_csr(CertificateAuthorityArn=middle)["Csr"].encode()
    _, issued = issue(pca, root, csr, template="arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen1/V1",
                      validity={"Type": "YEARS", "Value": 2})
    pca.import_certificate_authority_certificate(CertificateAuthorityArn=middle,
                                                 Certificate=issued["Certificate"].encode(),
                                                 CertificateChain=issued["CertificateChain"].encode())
    low = create_ca(pca, "SUBORDINATE", "Low")
    low_csr = pca.get_certificate_authority_csr(CertificateAuthorityArn=low)["Csr"].encode()
    _, low_issued = issue(pca, middle, low_csr,
                          template="arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1",
                          validity={"Type": "YEARS", "Value": 1})
    chain = low_issued["CertificateChain"]
    parts = [p + "-----END CERTIFICATE-----\n" for p in chain.split("-----END CERTIFICATE-----\n") if p.strip()]
    assert len(parts) == 2
    code, message, _ = error_of(pca.import_certificate_authority_certificate, CertificateAuthorityArn=low,
                                Certificate=low_issued["Certificate"].encode(),
                                CertificateChain="".join(reversed(parts)).encode())
    assert code == "CertificateMismatchException" and "order" in message
    code, _, _ = error_of(pca.import_certificate_authority_certificate, CertificateAuthorityArn=low,
                          Certificate=low_issued["Certificate"].encode())
    assert code == "InvalidRequestException"
    pca.import_certificate_authority_certificate(CertificateAuthorityArn=low,
                                                 Certificate=low_issued["Certificate"].encode(),
                                                 CertificateChain=chain.encode())
    # PathLen0 CA cannot sign another CA.
    deeper = create_ca(pca, "SUBORDINATE", "Too Deep")
    deeper_csr = pca.get_certificate_authority_csr(CertificateAuthorityArn=deeper)["Csr"].encode()
    code, message, _ = error_of(pca.issue_certificate, CertificateAuthorityArn=low, Csr=deeper_csr,
                                SigningAlgorithm="SHA256WITHECDSA",
                                TemplateArn="arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1",
                                Validity={"Type": "DAYS", "Value": 30})
    assert code == "InvalidArgsException" and "path length" in message


def test_revoke_errors(pca: Any, root: str) -> None:
    code, _, _ = error_of(pca.revoke_certificate, CertificateAuthorityArn=root, CertificateSerial="zz:zz",
                          RevocationReason="UNSPECIFIED")
    assert code == "InvalidRequestException"
    code, _, _ = error_of(pca.revoke_certificate, CertificateAuthorityArn=root, CertificateSerial="0badc0de",
                          RevocationReason="UNSPECIFIED")
    assert code == "ResourceNotFoundException"


def test_lifecycle_transitions(pca: Any, unchecked: Any) -> None:
    arn = root_ca(pca, "Lifecycle Root")
    code, message, _ = error_of(pca.delete_certificate_authority, CertificateAuthorityArn=arn)
    assert code == "InvalidStateException" and "disable" in message
    pca.update_certificate_authority(CertificateAuthorityArn=arn, Status="DISABLED")
    csr, _ = make_csr("disabled.test")
    code, _, _ = error_of(pca.issue_certificate, CertificateAuthorityArn=arn, Csr=csr,
                          SigningAlgorithm="SHA256WITHECDSA", Validity={"Type": "DAYS", "Value": 1})
    assert code == "InvalidStateException"
    code, _, _ = error_of(unchecked.delete_certificate_authority, CertificateAuthorityArn=arn,
                          PermanentDeletionTimeInDays=3)
    assert code == "ValidationException"
    pca.delete_certificate_authority(CertificateAuthorityArn=arn, PermanentDeletionTimeInDays=7)
    described = pca.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]
    assert described["Status"] == "DELETED" and "RestorableUntil" in described
    pca.restore_certificate_authority(CertificateAuthorityArn=arn)
    assert pca.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]["Status"] == "DISABLED"
    code, _, _ = error_of(pca.restore_certificate_authority, CertificateAuthorityArn=arn)
    assert code == "InvalidStateException"
    pca.update_certificate_authority(CertificateAuthorityArn=arn, Status="ACTIVE")
    assert pca.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]["Status"] == "ACTIVE"


def test_tags_policy_permissions(pca: Any, root: str) -> None:
    pca.tag_certificate_authority(CertificateAuthorityArn=root, Tags=[{"Key": "team", "Value": "infra"},
                                                                       {"Key": "env", "Value": "prod"}])
    pca.untag_certificate_authority(CertificateAuthorityArn=root, Tags=[{"Key": "env", "Value": "dev"}])
    tags = pca.list_tags(CertificateAuthorityArn=root)["Tags"]
    assert {t["Key"] for t in tags} == {"team", "env"}
    pca.untag_certificate_authority(CertificateAuthorityArn=root, Tags=[{"Key": "env"}])
    assert pca.list_tags(CertificateAuthorityArn=root)["Tags"] == [{"Key": "team", "Value": "infra"}]
    code, _, _ = error_of(pca.tag_certificate_authority, CertificateAuthorityArn=root,
                          Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert code == "TooManyTagsException"
    code, _, _ = error_of(pca.tag_certificate_authority, CertificateAuthorityArn=root, Tags=[{"Key": "aws:x"}])
    assert code == "InvalidTagException"

    code, _, _ = error_of(pca.get_policy, ResourceArn=root)
    assert code == "ResourceNotFoundException"
    code, message, _ = error_of(pca.put_policy, ResourceArn=root, Policy="{not json")
    assert code == "InvalidPolicyException" and "JSON" in message
    policy = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},'
              '"Action":["acm-pca:IssueCertificate","acm-pca:GetCertificate"],"Resource":"' + root + '"}]}')
    pca.put_policy(ResourceArn=root, Policy=policy)
    assert pca.get_policy(ResourceArn=root)["Policy"] == policy
    pca.delete_policy(ResourceArn=root)
    pca.delete_policy(ResourceArn=root)

    pca.create_permission(CertificateAuthorityArn=root, Principal="acm.amazonaws.com",
                          Actions=["IssueCertificate", "GetCertificate", "ListPermissions"])
    code, _, _ = error_of(pca.create_permission, CertificateAuthorityArn=root, Principal="acm.amazonaws.com",
                          Actions=["IssueCertificate"])
    assert code == "PermissionAlreadyExistsException"
    permissions = pca.list_permissions(CertificateAuthorityArn=root)["Permissions"]
    assert permissions[0]["Principal"] == "acm.amazonaws.com" and len(permissions[0]["Actions"]) == 3
    code, _, _ = error_of(pca.create_permission, CertificateAuthorityArn=root, Principal="evil.example.com",
                          Actions=["IssueCertificate"])
    assert code == "InvalidArgsException"
    pca.delete_permission(CertificateAuthorityArn=root, Principal="acm.amazonaws.com")
    assert pca.list_permissions(CertificateAuthorityArn=root)["Permissions"] == []


def test_pagination_and_bad_token(pca: Any) -> None:
    for index in range(3):
        create_ca(pca, "ROOT", f"Page {index}")
    seen: list[str] = []
    token = None
    while True:
        page = pca.list_certificate_authorities(MaxResults=2, **({"NextToken": token} if token else {}))
        assert len(page["CertificateAuthorities"]) <= 2
        seen.extend(ca["Arn"] for ca in page["CertificateAuthorities"])
        token = page.get("NextToken")
        if not token:
            break
    assert len(seen) == len(set(seen)) >= 3
    code, _, _ = error_of(pca.list_certificate_authorities, NextToken="garbage!")
    assert code == "InvalidNextTokenException"


def test_idempotency_tokens(pca: Any, root: str) -> None:
    first = pca.create_certificate_authority(CertificateAuthorityType="ROOT", CertificateAuthorityConfiguration=GOOD_CONFIG,
                                             IdempotencyToken="same-token")["CertificateAuthorityArn"]
    again = pca.create_certificate_authority(CertificateAuthorityType="ROOT", CertificateAuthorityConfiguration=GOOD_CONFIG,
                                             IdempotencyToken="same-token")["CertificateAuthorityArn"]
    assert first == again
    csr, _ = make_csr("idem.test")
    kwargs = dict(CertificateAuthorityArn=root, Csr=csr, SigningAlgorithm="SHA256WITHECDSA",
                  Validity={"Type": "DAYS", "Value": 3}, IdempotencyToken="issue-token")
    assert pca.issue_certificate(**kwargs)["CertificateArn"] == pca.issue_certificate(**kwargs)["CertificateArn"]


def test_tags_given_at_creation(pca: Any, unchecked: Any) -> None:
    arn = create_ca(pca, "ROOT", "Tagged Root", Tags=[{"Key": "owner", "Value": "platform"}, {"Key": "bare"}])
    assert pca.list_tags(CertificateAuthorityArn=arn)["Tags"] == [{"Key": "owner", "Value": "platform"}, {"Key": "bare"}]
    code, message, _ = error_of(unchecked.create_certificate_authority, CertificateAuthorityType="ROOT",
                                CertificateAuthorityConfiguration=GOOD_CONFIG,
                                Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])
    assert code == "ValidationException" and "tags" in message
    code, message, _ = error_of(unchecked.tag_certificate_authority, CertificateAuthorityArn=arn,
                                Tags=[{"Key": "k" * 129, "Value": "v"}])
    assert code == "ValidationException" and "tags.1.member.key" in message
