"""ImportCertificate against the real server: the vectors of tests/vectors, re-import, the AWS CLI, fuzzing."""

from __future__ import annotations

import base64
import json
import subprocess
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..conftest import Server, need_binary
from ..unit.test_import_check import BAD, VECTORS
from .test_acm_private import error_code, issued
from .test_wire import signed


def check(response: httpx.Response) -> None:
    """Only the AWS error shape: never a 5xx or a traceback."""
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        document: dict[str, Any] = response.json()
        assert set(document) == {"__type", "message"} and document["message"]
        assert "Traceback" not in document["message"]


def read(name: str | None) -> bytes | None:
    return (VECTORS / name).read_bytes() if name else None


def import_vector(acm: Any, certificate: str, key: str, chain: str | None, **extra: Any) -> str:
    kwargs: dict[str, Any] = {"Certificate": read(certificate), "PrivateKey": read(key), **extra}
    if chain:
        kwargs["CertificateChain"] = read(chain)
    arn: str = acm.import_certificate(**kwargs)["CertificateArn"]
    return arn


@pytest.fixture(scope="module")
def acm(server: Server) -> Any:
    return server.client("acm")


def test_import_rsa_and_ec(acm: Any) -> None:
    arn = import_vector(acm, "rsa/leaf.pem", "rsa/leaf.key", "rsa/chain.pem", Tags=[{"Key": "source", "Value": "ca"}])
    detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert (detail["Type"], detail["Status"], detail["KeyAlgorithm"]) == ("IMPORTED", "ISSUED", "RSA_2048")
    assert detail["DomainName"] == "rsa.vectors.test" and detail["Issuer"] == "certsmith vectors"
    assert detail["CertificateKeyPairOrigin"] == "CUSTOMER_PROVIDED" and "ImportedAt" in detail
    assert "CreatedAt" not in detail and "DomainValidationOptions" not in detail
    assert "CertificateAuthorityArn" not in detail and detail["RenewalEligibility"] == "INELIGIBLE"
    got = acm.get_certificate(CertificateArn=arn)
    assert got["Certificate"].encode() == read("rsa/leaf.pem") and got["CertificateChain"].encode() == \
        read("rsa/chain.pem")
    assert acm.list_tags_for_certificate(CertificateArn=arn)["Tags"] == [{"Key": "source", "Value": "ca"}]
    code, message = error_code(acm.export_certificate, CertificateArn=arn, Passphrase=b"passphrase")
    assert code == "ValidationException" and "IMPORTED" in message

    ec_arn = import_vector(acm, "ec/leaf.pem", "ec/leaf.sec1.key", "ec/chain.pem")
    assert acm.describe_certificate(CertificateArn=ec_arn)["Certificate"]["KeyAlgorithm"] == "EC_prime256v1"
    small = import_vector(acm, "rsa/rsa1024.pem", "rsa/rsa1024.key", "rsa/chain.pem")
    listed = [s["CertificateArn"] for s in acm.list_certificates()["CertificateSummaryList"]]
    assert small in listed and arn in listed and ec_arn not in listed  # RSA_1024 and RSA_2048 by default


@pytest.mark.parametrize(("certificate", "key", "chain", "problem", "repairable"), BAD)
def test_bad_bundles_get_the_exact_problem(acm: Any, certificate: str, key: str, chain: str | None, problem: str,
                                           repairable: bool) -> None:
    kwargs: dict[str, Any] = {"Certificate": read(certificate), "PrivateKey": read(key)}
    if chain:
        kwargs["CertificateChain"] = read(chain)
    code, message = error_code(acm.import_certificate, **kwargs)
    assert code == "ValidationException" and problem in message


def test_one_error_lists_every_problem(acm: Any) -> None:
    code, message = error_code(acm.import_certificate, Certificate=read("rsa/leaf.crlf.pem"),
                               PrivateKey=read("rsa/other.key"), CertificateChain=read("rsa/chain-wrong-order.pem"))
    assert code == "ValidationException" and "3 problems" in message
    assert "CRLF" in message and "does not match" in message and "wrong order" in message


def test_reimport_keeps_the_arn(acm: Any, pca: Any) -> None:
    arn = import_vector(acm, "rsa/leaf.pem", "rsa/leaf.key", "rsa/chain.pem")
    again = import_vector(acm, "rsa/leaf.pem", "rsa/leaf.pkcs1.key", "rsa/chain.pem", CertificateArn=arn)
    assert again == arn
    code, message = error_code(acm.import_certificate, CertificateArn=arn, Certificate=read("ec/leaf.pem"),
                               PrivateKey=read("ec/leaf.key"), CertificateChain=read("ec/chain.pem"))
    assert code == "ValidationException" and "RSA_2048" in message
    code, message = error_code(acm.import_certificate, CertificateArn=arn, Certificate=read("rsa/leaf.pem"),
                               PrivateKey=read("rsa/leaf.key"), CertificateChain=read("rsa/chain.pem"),
                               Tags=[{"Key": "a", "Value": "b"}])
    assert code == "ValidationException" and "Tags" in message
    missing = arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    code, _ = error_code(acm.import_certificate, CertificateArn=missing, Certificate=read("rsa/leaf.pem"),
                         PrivateKey=read("rsa/leaf.key"), CertificateChain=read("rsa/chain.pem"))
    assert code == "ResourceNotFoundException"


def test_reimport_over_a_private_certificate_is_refused(acm: Any, pca: Any) -> None:
    from certsmith.testing.pki import root_ca
    ca = root_ca(pca, "Import Guard Root", key_algorithm="RSA_2048", signing="SHA256WITHRSA")
    private, _ = issued(acm, ca, "guard.internal.test")
    code, message = error_code(acm.import_certificate, CertificateArn=private, Certificate=read("rsa/leaf.pem"),
                               PrivateKey=read("rsa/leaf.key"), CertificateChain=read("rsa/chain.pem"))
    assert code == "ValidationException" and "PRIVATE" in message


def test_aws_cli_import(server: Server) -> None:
    aws = need_binary("aws")
    result = subprocess.run([aws, "acm", "import-certificate", "--certificate", f"fileb://{VECTORS / 'ec/leaf.pem'}",
                             "--private-key", f"fileb://{VECTORS / 'ec/leaf.key'}", "--certificate-chain",
                             f"fileb://{VECTORS / 'ec/chain.pem'}", "--endpoint-url", server.endpoint,
                             "--output", "json"], capture_output=True, text=True, env=server.env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert ":certificate/" in json.loads(result.stdout)["CertificateArn"]


GOOD_PEM = [(VECTORS / name).read_bytes() for name in ("rsa/leaf.pem", "rsa/leaf.key", "rsa/chain.pem")]
IMPORT_ERRORS = {"ValidationException", "InvalidArnException", "ResourceNotFoundException", "InvalidTagException",
                 "TooManyTagsException", "LimitExceededException"}


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few random byte changes, cuts or insertions."""
    value = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, max(0, len(value) - 1)))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip" and value:
            value[position] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del value[position:position + draw(st.integers(1, 64))]
        else:
            value[position:position] = draw(st.binary(min_size=1, max_size=16))
    return bytes(value)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(certificate=st.one_of(mutated(GOOD_PEM[0]), st.binary(max_size=300), st.just(GOOD_PEM[0])),
       key=st.one_of(mutated(GOOD_PEM[1]), st.binary(max_size=300), st.just(GOOD_PEM[1])),
       chain=st.one_of(st.none(), mutated(GOOD_PEM[2]), st.binary(max_size=300), st.just(GOOD_PEM[2])))
def test_random_and_mutated_pem_never_break_import(server: Server, certificate: bytes, key: bytes,
                                                   chain: bytes | None) -> None:
    body: dict[str, Any] = {"Certificate": base64.b64encode(certificate).decode(),
                            "PrivateKey": base64.b64encode(key).decode()}
    if chain is not None:
        body["CertificateChain"] = base64.b64encode(chain).decode()
    response = signed(server, "CertificateManager.ImportCertificate", json.dumps(body).encode(), service="acm")
    check(response)
    if response.status_code != 200:
        assert response.json()["__type"] in IMPORT_ERRORS, response.text



def test_import_without_a_chain_through_boto3_and_the_aws_cli(acm: Any, server: Server, tmp_path: Any) -> None:
    arn = import_vector(acm, "rsa/leaf.pem", "rsa/leaf.key", None)
    got = acm.get_certificate(CertificateArn=arn)
    assert got["Certificate"].startswith("-----BEGIN CERTIFICATE-----") and "CertificateChain" not in got
    for name in ("ec/leaf.pem", "ec/leaf.key"):
        (tmp_path / name.replace("/", "-")).write_bytes(read(name) or b"")
    result = subprocess.run([need_binary("aws"), "acm", "import-certificate", "--endpoint-url", server.endpoint,
                             "--certificate", f"fileb://{tmp_path / 'ec-leaf.pem'}",
                             "--private-key", f"fileb://{tmp_path / 'ec-leaf.key'}"],
                            capture_output=True, text=True, env=server.env(), check=False)
    assert result.returncode == 0, result.stderr
    cli_arn = json.loads(result.stdout)["CertificateArn"]
    assert acm.describe_certificate(CertificateArn=cli_arn)["Certificate"]["Type"] == "IMPORTED"


def test_reserved_tag_keys_cannot_be_removed_either(acm: Any) -> None:
    arn = import_vector(acm, "rsa/leaf.pem", "rsa/leaf.key", "rsa/chain.pem", Tags=[{"Key": "team", "Value": "a"}])
    for call, kwargs in ((acm.remove_tags_from_certificate, {"Tags": [{"Key": "aws:cloudformation"}]}),
                         (acm.untag_resource, {"TagKeys": ["team", "aws:createdBy"]})):
        arn_member = "CertificateArn" if call == acm.remove_tags_from_certificate else "ResourceArn"
        code, message = error_code(call, **{arn_member: arn}, **kwargs)
        assert code == "InvalidTagException" and "aws:" in message
    assert acm.list_tags_for_certificate(CertificateArn=arn)["Tags"] == [{"Key": "team", "Value": "a"}]
