"""ACM private certificates against the real server: boto3 and the AWS CLI, as ACM's documentation uses them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, WaiterError
from cryptography import x509

from certsmith.testing.pki import WAIT, root_ca

from ..conftest import Server, need_binary


@pytest.fixture(scope="module")
def acm(server: Server) -> Any:
    return server.client("acm")


@pytest.fixture(scope="module")
def rsa_ca(pca: Any) -> str:
    return root_ca(pca, "ACM RSA Root", key_algorithm="RSA_2048", signing="SHA256WITHRSA")


@pytest.fixture(scope="module")
def ec_ca(pca: Any) -> str:
    return root_ca(pca, "ACM EC Root")


def request(acm: Any, ca: str, domain: str, **extra: Any) -> str:
    arn: str = acm.request_certificate(DomainName=domain, CertificateAuthorityArn=ca, **extra)["CertificateArn"]
    return arn


def issued(acm: Any, ca: str, domain: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    arn = request(acm, ca, domain, **extra)
    acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig=WAIT)
    return arn, acm.describe_certificate(CertificateArn=arn)["Certificate"]


def error_code(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def test_private_certificate_is_issued_by_the_ca(acm: Any, pca: Any, rsa_ca: str, tmp_path: Path) -> None:
    arn, detail = issued(acm, rsa_ca, "app.internal.test",
                         SubjectAlternativeNames=["api.internal.test", "app.internal.test", "*.svc.internal.test"],
                         Tags=[{"Key": "team", "Value": "edge"}])
    assert arn.startswith("arn:aws:acm:us-east-1:") and ":certificate/" in arn
    assert detail["Status"] == "ISSUED" and detail["Type"] == "PRIVATE"
    assert detail["DomainName"] == "app.internal.test"
    assert detail["SubjectAlternativeNames"] == ["app.internal.test", "api.internal.test", "*.svc.internal.test"]
    assert detail["KeyAlgorithm"] == "RSA_2048" and detail["SignatureAlgorithm"] == "SHA256WITHRSA"
    # Every certificate certsmith issued is renewed by default, exported or not (ACM's stricter rule is a policy).
    assert detail["CertificateAuthorityArn"] == rsa_ca and detail["RenewalEligibility"] == "ELIGIBLE"
    assert detail["CertificateKeyPairOrigin"] == "AWS_MANAGED" and detail["InUseBy"] == []
    assert detail["Subject"] == "CN=app.internal.test" and detail["Issuer"] == "certsmith tests"
    assert "FailureReason" not in detail and "ResourceRecord" not in detail["DomainValidationOptions"][0]
    assert [(o["DomainName"], o["ValidationStatus"]) for o in detail["DomainValidationOptions"]] == [
        ("app.internal.test", "SUCCESS"), ("api.internal.test", "SUCCESS"), ("*.svc.internal.test", "SUCCESS")]
    assert {"Name": "TLS_WEB_SERVER_AUTHENTICATION", "OID": "1.3.6.1.5.5.7.3.1"} in detail["ExtendedKeyUsages"]
    assert {"Name": "DIGITAL_SIGNATURE"} in detail["KeyUsages"]
    lifetime = detail["NotAfter"] - detail["NotBefore"]
    assert 394 <= lifetime.days <= 396  # 13 months

    got = acm.get_certificate(CertificateArn=arn)
    leaf = x509.load_pem_x509_certificate(got["Certificate"].encode())
    assert ":".join(f"{b:02x}" for b in leaf.serial_number.to_bytes((leaf.serial_number.bit_length() + 7) // 8,
                                                                      "big")) == detail["Serial"]
    (tmp_path / "leaf.pem").write_text(got["Certificate"])
    (tmp_path / "chain.pem").write_text(got["CertificateChain"])
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "chain.pem"), str(tmp_path / "leaf.pem")],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    # The CA knows it issued the certificate.
    serial_hex = format(leaf.serial_number, "x")
    from_ca = pca.get_certificate(CertificateAuthorityArn=rsa_ca, CertificateArn=f"{rsa_ca}/certificate/{serial_hex}")
    assert from_ca["Certificate"] == got["Certificate"]
    assert acm.list_tags_for_certificate(CertificateArn=arn)["Tags"] == [{"Key": "team", "Value": "edge"}]


def test_idempotency_token_returns_the_same_certificate(acm: Any, rsa_ca: str) -> None:
    first = request(acm, rsa_ca, "idem.internal.test", IdempotencyToken="deploy42")
    assert request(acm, rsa_ca, "idem.internal.test", IdempotencyToken="deploy42") == first
    assert request(acm, rsa_ca, "idem.internal.test", IdempotencyToken="deploy43") != first


def test_ca_problems_end_in_failed_with_the_pca_reason(acm: Any, pca: Any, rsa_ca: str) -> None:
    # An EC key cannot be signed by an RSA CA: the family must suit the CA.
    arn = request(acm, rsa_ca, "mismatch.internal.test", KeyAlgorithm="EC_prime256v1")
    with pytest.raises(WaiterError, match="terminal failure"):  # the waiter gives up on FAILED
        acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig=WAIT)
    detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert (detail["Status"], detail["FailureReason"]) == ("FAILED", "PCA_INVALID_ARGS")
    assert "Serial" not in detail
    assert error_code(acm.get_certificate, CertificateArn=arn)[0] == "InvalidStateException"

    pending = root_ca(pca, "ACM Disabled Root", key_algorithm="RSA_2048", signing="SHA256WITHRSA")
    pca.update_certificate_authority(CertificateAuthorityArn=pending, Status="DISABLED")
    arn = request(acm, pending, "disabled.internal.test")
    with pytest.raises(WaiterError, match="terminal failure"):
        acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig=WAIT)
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["FailureReason"] == "PCA_INVALID_STATE"


def test_list_defaults_filters_and_pages(acm: Any, rsa_ca: str, ec_ca: str) -> None:
    request(acm, rsa_ca, "failed-ec.internal.test", KeyAlgorithm="EC_prime256v1")  # FAILED: wrong key family
    rsa_arn, _ = issued(acm, rsa_ca, "list-rsa.internal.test")
    ec_arn, ec_detail = issued(acm, ec_ca, "list-ec.internal.test", KeyAlgorithm="EC_prime256v1")
    assert ec_detail["KeyAlgorithm"] == "EC_prime256v1" and ec_detail["SignatureAlgorithm"] == "SHA256WITHECDSA"
    bare = [s["CertificateArn"] for s in acm.list_certificates()["CertificateSummaryList"]]
    assert rsa_arn in bare and ec_arn not in bare  # a bare call lists RSA certificates only
    ec_only = acm.list_certificates(CertificateStatuses=["ISSUED"],
                                    Includes={"keyTypes": ["EC_prime256v1"]})["CertificateSummaryList"]
    assert ec_arn in [s["CertificateArn"] for s in ec_only] and rsa_arn not in [s["CertificateArn"] for s in ec_only]
    assert {s["KeyAlgorithm"] for s in ec_only} == {"EC_prime256v1"} and {s["Status"] for s in ec_only} == {"ISSUED"}
    summary = next(s for s in ec_only if s["CertificateArn"] == ec_arn)
    assert summary["Status"] == "ISSUED" and summary["Type"] == "PRIVATE" and summary["InUse"] is False
    assert summary["SubjectAlternativeNameSummaries"] == ["list-ec.internal.test"]
    assert "TLS_WEB_SERVER_AUTHENTICATION" in summary["ExtendedKeyUsages"]
    def listed(**includes: Any) -> list[str]:
        page = acm.list_certificates(Includes={"keyTypes": ["EC_prime256v1"], **includes})
        return [s["CertificateArn"] for s in page["CertificateSummaryList"]]

    assert ec_arn not in listed(extendedKeyUsage=["CODE_SIGNING"])
    assert ec_arn in listed(extendedKeyUsage=["CODE_SIGNING", "TLS_WEB_SERVER_AUTHENTICATION"])
    assert ec_arn in listed(keyUsage=["DIGITAL_SIGNATURE"]) and ec_arn not in listed(keyUsage=["CRL_SIGNING"])
    assert ec_arn in listed(exportOption="DISABLED") and ec_arn not in listed(exportOption="ENABLED")
    assert listed(managedBy="CLOUDFRONT") == []
    failed = acm.list_certificates(CertificateStatuses=["FAILED"], Includes={"keyTypes": ["EC_prime256v1"]})
    assert failed["CertificateSummaryList"] and {s["Status"] for s in failed["CertificateSummaryList"]} == {"FAILED"}

    for index in range(2):  # enough RSA certificates for two pages of two, whatever else the account holds
        issued(acm, rsa_ca, f"page{index}.internal.test")
    seen: list[str] = []
    token = None
    while True:
        kwargs: dict[str, Any] = {"MaxItems": 2, "SortBy": "CREATED_AT", "SortOrder": "ASCENDING"}
        if token:
            kwargs["NextToken"] = token
        page = acm.list_certificates(**kwargs)
        seen += [s["CertificateArn"] for s in page["CertificateSummaryList"]]
        if token is None:  # a certificate added while paging shows up at the end, never twice
            added, _ = issued(acm, rsa_ca, "added-while-paging.internal.test")
        token = page.get("NextToken")
        if not token:
            break
    assert len(seen) == len(set(seen)) and rsa_arn in seen and added in seen
    assert error_code(acm.list_certificates, SortBy="CREATED_AT")[0] == "ValidationException"
    assert error_code(acm.list_certificates, NextToken="bm90IGEgdG9rZW4=")[0] == "InvalidNextTokenException"


def test_tags_and_delete(acm: Any, rsa_ca: str) -> None:
    arn = request(acm, rsa_ca, "tags.internal.test")
    acm.add_tags_to_certificate(CertificateArn=arn, Tags=[{"Key": "env", "Value": "prod"}, {"Key": "flag"}])
    acm.add_tags_to_certificate(CertificateArn=arn, Tags=[{"Key": "env", "Value": "stage"}])
    assert acm.list_tags_for_certificate(CertificateArn=arn)["Tags"] == [{"Key": "env", "Value": "stage"},
                                                                          {"Key": "flag"}]
    acm.remove_tags_from_certificate(CertificateArn=arn, Tags=[{"Key": "flag"}])
    assert acm.list_tags_for_certificate(CertificateArn=arn)["Tags"] == [{"Key": "env", "Value": "stage"}]
    code, message = error_code(acm.add_tags_to_certificate, CertificateArn=arn, Tags=[{"Key": "aws:x", "Value": "y"}])
    assert code == "InvalidTagException" and "aws:" in message
    code, _ = error_code(acm.add_tags_to_certificate, CertificateArn=arn,
                         Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert code == "TooManyTagsException"
    acm.delete_certificate(CertificateArn=arn)
    assert error_code(acm.describe_certificate, CertificateArn=arn)[0] == "ResourceNotFoundException"
    assert error_code(acm.delete_certificate, CertificateArn=arn)[0] == "ResourceNotFoundException"


@pytest.mark.parametrize(("kwargs", "code", "field"), [
    ({"DomainName": "bad_name.test"}, "ValidationException", "DomainName"),
    ({"DomainName": "a.*.test"}, "ValidationException", "DomainName"),
    ({"DomainName": "localhost"}, "ValidationException", "DomainName"),
    ({"DomainName": "ok.test", "SubjectAlternativeNames": ["ab--cd.test"]}, "ValidationException",
     "SubjectAlternativeNames[0]"),
    ({"DomainName": "ok.test", "KeyAlgorithm": "RSA_1024"}, "ValidationException", "KeyAlgorithm"),
    ({"DomainName": "ok.test", "SubjectAlternativeNames": [f"n{i}.ok.test" for i in range(100)]},
     "ValidationException", "SubjectAlternativeNames"),  # 101 names with DomainName
])
def test_bad_requests_name_the_field(acm: Any, rsa_ca: str, kwargs: dict[str, Any], code: str, field: str) -> None:
    got, message = error_code(acm.request_certificate, CertificateAuthorityArn=rsa_ca, **kwargs)
    assert got == code and field.split("[")[0].lower() in message.lower()  # AWS names members in camelCase


def test_public_requests_and_bad_arns_are_refused(acm: Any, rsa_ca: str) -> None:
    code, message = error_code(acm.request_certificate, DomainName="www.example.com")
    assert code == "ValidationException" and "CertificateAuthorityArn" in message
    code, _ = error_code(acm.describe_certificate, CertificateArn="arn:aws:acm:us-east-1:123456789012:certificate/x")
    assert code == "InvalidArnException"
    missing = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    assert error_code(acm.get_certificate, CertificateArn=missing)[0] == "ResourceNotFoundException"
    arn = request(acm, rsa_ca, "resend.internal.test")
    assert error_code(acm.resend_validation_email, CertificateArn=arn, Domain="resend.internal.test",
                      ValidationDomain="internal.test")[0] == "InvalidStateException"


def test_aws_cli_commands_from_the_acm_guide(server: Server, rsa_ca: str, ec_ca: str, tmp_path: Path) -> None:
    aws = need_binary("aws")

    def run(*args: str) -> Any:
        result = subprocess.run([aws, "acm", *args, "--endpoint-url", server.endpoint, "--output", "json"],
                                capture_output=True, text=True, env=server.env(), timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else None

    arn = run("request-certificate", "--domain-name", "cli.internal.test", "--subject-alternative-names",
              "cli.internal.test", "www.cli.internal.test", "--certificate-authority-arn", ec_ca,
              "--key-algorithm", "EC_prime256v1")["CertificateArn"]
    run("wait", "certificate-validated", "--certificate-arn", arn)
    detail = run("describe-certificate", "--certificate-arn", arn)["Certificate"]
    assert detail["Status"] == "ISSUED" and detail["SubjectAlternativeNames"] == ["cli.internal.test",
                                                                                   "www.cli.internal.test"]
    listed = run("list-certificates", "--includes", "keyTypes=EC_prime256v1")["CertificateSummaryList"]
    assert arn in [s["CertificateArn"] for s in listed]
    got = run("get-certificate", "--certificate-arn", arn)
    assert got["Certificate"].startswith("-----BEGIN CERTIFICATE-----")


def test_update_options(acm: Any, rsa_ca: str) -> None:
    arn, detail = issued(acm, rsa_ca, "options.internal.test")
    assert detail["Options"] == {"CertificateTransparencyLoggingPreference": "ENABLED", "Export": "DISABLED"}
    acm.update_certificate_options(CertificateArn=arn, Options={"CertificateTransparencyLoggingPreference": "DISABLED"})
    options = acm.describe_certificate(CertificateArn=arn)["Certificate"]["Options"]
    assert options["CertificateTransparencyLoggingPreference"] == "DISABLED"
    code, message = error_code(acm.update_certificate_options, CertificateArn=arn, Options={"Export": "ENABLED"})
    assert code == "ValidationException" and "Export" in message


def test_account_configuration(acm: Any) -> None:
    assert acm.get_account_configuration()["ExpiryEvents"] == {"DaysBeforeExpiry": 45}
    acm.put_account_configuration(ExpiryEvents={"DaysBeforeExpiry": 30}, IdempotencyToken="first")
    assert acm.get_account_configuration()["ExpiryEvents"] == {"DaysBeforeExpiry": 30}
    # The same token within the hour is the same request: the first call's values stay.
    acm.put_account_configuration(ExpiryEvents={"DaysBeforeExpiry": 10}, IdempotencyToken="first")
    assert acm.get_account_configuration()["ExpiryEvents"] == {"DaysBeforeExpiry": 30}
    acm.put_account_configuration(ExpiryEvents={"DaysBeforeExpiry": 10}, IdempotencyToken="second")
    assert acm.get_account_configuration()["ExpiryEvents"] == {"DaysBeforeExpiry": 10}
    code, message = error_code(acm.put_account_configuration, IdempotencyToken="third")
    assert (code, message) == ("ValidationException", "Configuration for events is empty.")
    code, message = error_code(acm.put_account_configuration, ExpiryEvents={"DaysBeforeExpiry": 46},
                               IdempotencyToken="fourth")
    assert code == "ValidationException" and "DaysBeforeExpiry" in message
