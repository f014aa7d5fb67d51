"""Bundles out of order (the intermediate or the root before the leaf) through ``certsmith cert import`` and
through ImportCertificate with boto3, both against the real server."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from ..conftest import Server, need_binary
from ..unit.test_import_check import VECTORS
from .test_acm_private import error_code
from .test_cli import cli

RSA_FULLCHAIN = VECTORS / "rsa/fullchain-intermediate-first.pem"  # intermediate, leaf, root
EC_FULLCHAIN = VECTORS / "ec/fullchain-reversed.pem"  # root, intermediate, leaf


@pytest.fixture(scope="module")
def acm(server: Server) -> Any:
    return server.client("acm")


def words(text: str) -> str:
    """The CLI's output without the line breaks Rich puts in long lines."""
    return " ".join(text.split())


def public_key(openssl: str, *args: str) -> str:
    return subprocess.run([openssl, *args], capture_output=True, text=True, check=True).stdout


def rsa_certificates(acm: Any) -> set[str]:
    pages = acm.get_paginator("list_certificates").paginate(Includes={"keyTypes": ["RSA_2048"]})
    return {summary["CertificateArn"] for page in pages for summary in page["CertificateSummaryList"]}


def test_check_reports_the_order_and_fix_repairs_and_imports(server: Server, acm: Any, tmp_path: Path) -> None:
    openssl = need_binary("openssl")
    key = str(VECTORS / "rsa/leaf.key")
    report = cli(server, "cert", "import", "--check", str(RSA_FULLCHAIN), key, ok=False)
    assert report.returncode == 1, report.stderr
    text = words(report.stdout)
    assert "1 problem(s)" in text and "Certificate: the bundle is out of order" in text
    assert "'rsa.vectors.test' (the private key is its key)" in text and "(--fix repairs this)" in text
    assert "then 'Vector rsa Intermediate', then 'Vector rsa Root' (root)" in text
    assert "does not match" not in text and "not in the chain" not in text and "intermediate certificate" not in text

    fixed = words(cli(server, "cert", "import", "--check", "--fix", str(RSA_FULLCHAIN), key,
                      "--out", str(tmp_path / "fixed")).stdout)
    assert "fixed: put the leaf first: 'rsa.vectors.test', the certificate of the private key" in fixed
    assert "ready to import: RSA_2048, 2 certificate(s) in the chain" in fixed
    folder = tmp_path / "fixed"
    assert (folder / "certificate.pem").read_bytes() == (VECTORS / "rsa/leaf.pem").read_bytes()
    assert (folder / "chain.pem").read_bytes() == (VECTORS / "rsa/chain.pem").read_bytes()
    # openssl agrees: the written certificate is the key's, and the chain written after it verifies it.
    assert public_key(openssl, "x509", "-in", str(folder / "certificate.pem"), "-pubkey", "-noout") == \
        public_key(openssl, "pkey", "-in", str(folder / "private-key.pem"), "-pubout")
    verified = subprocess.run([openssl, "verify", "-CAfile", str(folder / "chain.pem"), str(folder / "certificate.pem")],
                              capture_output=True, text=True)
    assert verified.returncode == 0 and verified.stdout.strip().endswith(": OK"), verified.stdout + verified.stderr

    # The key file first and the fullchain after it, as the issue gave them: --fix imports the leaf and its chain in order.
    imported = words(cli(server, "cert", "import", "--fix", key, str(RSA_FULLCHAIN), "--tag", "source=misordered").stdout)
    arn = imported.split("imported: ")[1].split()[0]
    got = acm.get_certificate(CertificateArn=arn)
    assert got["Certificate"].encode() == (VECTORS / "rsa/leaf.pem").read_bytes()
    assert got["CertificateChain"].encode() == (VECTORS / "rsa/chain.pem").read_bytes()
    detail = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert (detail["DomainName"], detail["KeyAlgorithm"], detail["Issuer"]) == \
        ("rsa.vectors.test", "RSA_2048", "certsmith vectors")
    acm.delete_certificate(CertificateArn=arn)


def test_a_reversed_fullchain_is_imported_leaf_first(server: Server, acm: Any) -> None:
    key = str(VECTORS / "ec/leaf.key")
    text = words(cli(server, "cert", "import", "--check", str(EC_FULLCHAIN), key, ok=False).stdout)
    assert "1 problem(s)" in text and "it starts with 'Vector ec Root' (root)" in text
    assert "does not match" not in text
    imported = words(cli(server, "cert", "import", "--fix", str(EC_FULLCHAIN), key).stdout)
    assert "fixed: reordered the chain: 'Vector ec Intermediate', then 'Vector ec Root' (root)" in imported
    arn = imported.split("imported: ")[1].split()[0]
    got = acm.get_certificate(CertificateArn=arn)
    leaf = x509.load_pem_x509_certificate(got["Certificate"].encode())
    chain = x509.load_pem_x509_certificates(got["CertificateChain"].encode())
    assert [c.subject.rfc4514_string() for c in [leaf, *chain]] == [
        "CN=ec.vectors.test,O=certsmith vectors", "CN=Vector ec Intermediate,O=certsmith vectors",
        "CN=Vector ec Root,O=certsmith vectors"]
    leaf.verify_directly_issued_by(chain[0])
    chain[0].verify_directly_issued_by(chain[1])
    acm.delete_certificate(CertificateArn=arn)


def test_without_a_readable_key_the_leaf_is_still_found(server: Server, tmp_path: Path) -> None:
    """An encrypted key cannot say which certificate is its own: the one that signs no other is the leaf."""
    result = cli(server, "cert", "import", "--fix", str(RSA_FULLCHAIN), str(VECTORS / "rsa/leaf.encrypted.key"),
                 "--out", str(tmp_path / "fixed"), ok=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    text = words(result.stdout)
    assert "fixed: put the leaf first: 'rsa.vectors.test', the one certificate signing no other" in text
    assert "1 problem(s)" in text and "PrivateKey: is encrypted" in text
    assert (tmp_path / "fixed" / "certificate.pem").read_bytes() == (VECTORS / "rsa/leaf.pem").read_bytes()
    assert (tmp_path / "fixed" / "chain.pem").read_bytes() == (VECTORS / "rsa/chain.pem").read_bytes()


def test_import_certificate_names_the_order_and_keeps_acm_rules(server: Server, acm: Any, tmp_path: Path) -> None:
    """ImportCertificate takes the leaf, then its chain issuer first (as ACM): a misordered bundle is refused,
    and its error says that the order is wrong and which certificate is the leaf; repaired, it imports."""
    intermediate, leaf, root = x509.load_pem_x509_certificates(RSA_FULLCHAIN.read_bytes())
    blocks = RSA_FULLCHAIN.read_bytes().split(b"-----END CERTIFICATE-----\n")
    first, rest = blocks[0] + b"-----END CERTIFICATE-----\n", b"-----END CERTIFICATE-----\n".join(blocks[1:])
    assert x509.load_pem_x509_certificate(first) == intermediate
    assert x509.load_pem_x509_certificates(rest) == [leaf, root]
    key = (VECTORS / "rsa/leaf.key").read_bytes()
    before = rsa_certificates(acm)

    code, message = error_code(acm.import_certificate, Certificate=first, PrivateKey=key, CertificateChain=rest)
    assert code == "ValidationException"
    assert "the bundle is out of order: it starts with 'Vector rsa Intermediate'" in message
    assert "'rsa.vectors.test' (the private key is its key)" in message and "'Vector rsa Root' (root)" in message
    assert "does not match" not in message and "not in the chain" not in message

    code, message = error_code(acm.import_certificate, Certificate=RSA_FULLCHAIN.read_bytes(), PrivateKey=key)
    assert code == "ValidationException" and "(2 problems)" in message
    assert "holds 3 certificates" in message and "the bundle is out of order" in message
    assert rsa_certificates(acm) == before  # nothing was stored

    # The files `cert import --fix --out` writes are what ImportCertificate accepts.
    cli(server, "cert", "import", "--fix", str(RSA_FULLCHAIN), str(VECTORS / "rsa/leaf.key"),
        "--out", str(tmp_path / "fixed"), "--check")
    folder = tmp_path / "fixed"
    arn = acm.import_certificate(Certificate=(folder / "certificate.pem").read_bytes(),
                                 PrivateKey=(folder / "private-key.pem").read_bytes(),
                                 CertificateChain=(folder / "chain.pem").read_bytes())["CertificateArn"]
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["DomainName"] == "rsa.vectors.test"
    acm.delete_certificate(CertificateArn=arn)
