"""``certsmith ca rotate | reissue | reissue-status`` against the real server, with its own worker."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from cryptography import x509

from certsmith.testing.pki import make_csr

from ..conftest import Server
from .test_cli import cli

RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _words(text: str) -> str:
    return " ".join(text.split())


def _fleet(server: Server, tmp_path: Path, ca: str, label: str, acm: int, pca: int) -> tuple[list[str], list[str]]:
    acm_arns = [cli(server, "cert", "request", f"{label}{index}.rotation.cli.test", "--ca", ca, "-q").stdout.strip()
                for index in range(acm)]
    pca_arns = []
    for index in range(pca):
        csr, _ = make_csr(f"{label}-host{index}.rotation.cli.test", [f"{label}-host{index}.rotation.cli.test"])
        (tmp_path / f"{label}{index}.csr").write_bytes(csr)
        pca_arns.append(cli(server, "ca", "issue", ca, "--csr", str(tmp_path / f"{label}{index}.csr"), "--days", "20",
                            "-q").stdout.strip())
    return acm_arns, pca_arns


def test_rotate_then_reissue_with_the_old_certificates_revoked(server: Server, pca: Any, tmp_path: Path) -> None:
    old = json.loads(cli(server, "ca", "create", "--root", "-n", "Rotate CLI Root", "--crl", "--ocsp",
                         "--json").stdout)["Arn"]
    acm_arns, pca_arns = _fleet(server, tmp_path, old, "fleet", 3, 3)

    rotated = cli(server, "ca", "rotate", old)
    new = rotated.stdout.strip()
    assert rotated.stdout == new + "\n" and new != old
    assert f"certsmith ca reissue {old} --to {new}" in _words(rotated.stderr)
    described = pca.describe_certificate_authority(CertificateAuthorityArn=new)["CertificateAuthority"]
    before = pca.describe_certificate_authority(CertificateAuthorityArn=old)["CertificateAuthority"]
    assert described["Status"] == "ACTIVE" and described["Type"] == "ROOT"
    assert described["CertificateAuthorityConfiguration"] == before["CertificateAuthorityConfiguration"]
    assert described["RevocationConfiguration"] == before["RevocationConfiguration"]

    plan = cli(server, "ca", "reissue", old, "--to", new, "--dry-run")
    assert "would re-issue 3 ACM certificates and 3 IssueCertificate certificates" in _words(plan.stdout)
    assert "Nothing was changed" in plan.stdout and acm_arns[0] in plan.stdout
    planned = json.loads(cli(server, "ca", "reissue", old, "--to", new, "--dry-run", "--json").stdout)
    assert planned["Plan"]["AcmCertificates"] == 3 and planned["Plan"]["PcaCertificates"] == 3
    assert "ReissueId" not in planned and planned["Reissue"]["State"] == "DRY_RUN"

    started = time.monotonic()
    done = cli(server, "ca", "reissue", old, "--to", new, "--rate", "4/s", "--revoke-old", "--json")
    finished = json.loads(done.stdout)
    assert finished["State"] == "SUCCEEDED" and (finished["Done"], finished["Failed"], finished["Total"]) == (6, 0, 6)
    assert time.monotonic() - started >= 6 / 4 * 0.9  # batches of 2 at 4/s: 1.5 s at least
    assert "re-issuing" in done.stderr and "6/6" in done.stderr  # the progress bar
    status = json.loads(cli(server, "ca", "reissue-status", finished["ReissueId"], "--items", "--json").stdout)
    assert status["State"] == "SUCCEEDED" and len(status["Items"]) == 6
    assert {item["State"] for item in status["Items"]} == {"REVOKED"}
    pca_items = [item for item in status["Items"] if item["Kind"] == "PCA"]
    assert len(pca_items) == 3 and all(item["CertificateArn"].startswith(f"{new}/certificate/") for item in pca_items)
    shown = cli(server, "ca", "reissue-status", finished["ReissueId"], "--items").stdout
    assert "SUCCEEDED" in shown and "6 done, 0 failed of 6" in shown and pca_items[0]["CertificateArn"] in shown

    acm = server.client("acm")
    for arn in acm_arns:
        assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["CertificateAuthorityArn"] == new
    old_serials = {item["SourceSerial"] for item in status["Items"]}
    deadline = time.monotonic() + 30
    while True:
        crl = json.loads(cli(server, "ca", "crl", old, "--json").stdout)
        revoked = {entry["serial"]: entry["reason"] for entry in crl["revoked"]}
        if old_serials <= set(revoked) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {revoked.get(serial) for serial in old_serials} == {"superseded"}
    for item in pca_items:
        got = pca.get_certificate(CertificateAuthorityArn=new, CertificateArn=item["CertificateArn"])
        leaf = x509.load_pem_x509_certificate(got["Certificate"].encode())
        assert format(leaf.serial_number, "x") == item["TargetSerial"]
    assert {format(x509.load_pem_x509_certificate(pca.get_certificate(
        CertificateAuthorityArn=old, CertificateArn=arn)["Certificate"].encode()).serial_number, "x")
        for arn in pca_arns} == {item["SourceSerial"] for item in pca_items}


def test_rotating_a_subordinate_and_what_the_api_says(server: Server, pca: Any) -> None:
    root = cli(server, "ca", "create", "--root", "-q", "-n", "Rotate CLI Parent").stdout.strip()
    sub = cli(server, "ca", "create", "--parent", root, "--path-length", "1", "-q", "-n", "Rotate CLI Issuing") \
        .stdout.strip()
    described = json.loads(cli(server, "ca", "rotate", sub, "--json").stdout)
    assert described["Status"] == "ACTIVE" and described["Type"] == "SUBORDINATE" and described["Arn"] != sub
    new_cert = pca.get_certificate_authority_certificate(CertificateAuthorityArn=described["Arn"])
    parent_cert = x509.load_pem_x509_certificate(
        pca.get_certificate_authority_certificate(CertificateAuthorityArn=root)["Certificate"].encode())
    certificate = x509.load_pem_x509_certificate(new_cert["Certificate"].encode())
    certificate.verify_directly_issued_by(parent_cert)
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 1
    assert x509.load_pem_x509_certificate(new_cert["CertificateChain"].encode()) == parent_cert

    ours = server.client("certsmith")
    assert ours.rotate_certificate_authority(CertificateAuthorityArn=root)["Status"] == "ACTIVE"
    started = ours.start_certificate_reissue(SourceCertificateAuthorityArn=sub,
                                             TargetCertificateAuthorityArn=described["Arn"], Rate="10/s")
    run = ours.describe_certificate_reissue(ReissueId=started["ReissueId"])["Reissue"]
    assert run["SourceCertificateAuthorityArn"] == sub and run["Rate"] == "10/s" and run["RevokeSource"] is False
    assert ours.list_certificate_reissue_items(ReissueId=started["ReissueId"])["Items"] == []


def test_refusals_and_no_wait(server: Server, tmp_path: Path) -> None:
    old = cli(server, "ca", "create", "--root", "-q", "-n", "Refusing Root").stdout.strip()
    _fleet(server, tmp_path, old, "refusing", 2, 0)
    new = cli(server, "ca", "rotate", old).stdout.strip()
    pending = cli(server, "ca", "create", "-q", "-n", "Refusing Pending").stdout.strip()
    elsewhere = old.replace(old.split(":")[4], "999999999999")

    def refused(*args: str) -> str:
        result = cli(server, "ca", "reissue", *args, ok=False)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        return _words(result.stderr)

    same = refused(old, "--to", old)
    assert "InvalidArgsException" in same and "TargetCertificateAuthorityArn is the source CA itself" in same
    not_active = refused(old, "--to", pending)
    assert "InvalidStateException" in not_active and "PENDING_CERTIFICATE" in not_active
    other = refused(old, "--to", elsewhere)
    assert "InvalidArgsException" in other and "account 999999999999" in other
    for rate in ("fast", "0/s", "1001/s"):
        bad = refused(old, "--to", new, "--rate", rate)
        assert "ValidationException" in bad and "Rate" in bad, bad
    rotated_pending = cli(server, "ca", "rotate", pending, ok=False)
    assert rotated_pending.returncode == 1 and "InvalidStateException" in rotated_pending.stderr

    waiting = cli(server, "ca", "reissue", old, "--to", new, "--rate", "1/h", "--no-wait")
    run_id = waiting.stdout.strip()
    assert RUN_ID.fullmatch(run_id), waiting.stdout
    busy = refused(old, "--to", new)
    assert "ConflictException" in busy and run_id in busy
    shown = json.loads(cli(server, "ca", "reissue-status", run_id, "--json").stdout)
    assert shown["State"] == "RUNNING" and shown["Rate"] == "1/h" and shown["Total"] == 2
    missing = cli(server, "ca", "reissue-status", "00000000-0000-0000-0000-000000000000", ok=False)
    assert missing.returncode == 1 and "ResourceNotFoundException" in missing.stderr
