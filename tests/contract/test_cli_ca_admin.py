"""``certsmith ca`` checks a parent before it creates anything, and cleans up: disable, enable, update, delete,
restore — each seen through boto3 against the real server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from certsmith.testing.pki import create_ca

from ..conftest import Server
from .test_cli import cli


def _arns(pca: Any) -> set[str]:
    return {ca["Arn"] for page in pca.get_paginator("list_certificate_authorities").paginate()
            for ca in page["CertificateAuthorities"]}


def _described(pca: Any, arn: str) -> dict[str, Any]:
    described: dict[str, Any] = pca.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]
    return described


def test_a_parent_whose_path_length_forbids_the_subordinate_is_refused_before_anything_is_created(
        server: Server, pca: Any) -> None:
    root = cli(server, "ca", "create", "--root", "-q", "-n", "Admin Path Root").stdout.strip()
    zero = cli(server, "ca", "create", "--parent", root, "-q", "-n", "Admin Path 0").stdout.strip()
    one = cli(server, "ca", "create", "--parent", root, "--path-length", "1", "-q", "-n", "Admin Path 1").stdout.strip()
    pending_root = cli(server, "ca", "create", "-q", "-n", "Admin Pending Root").stdout.strip()
    pending = create_ca(pca, "SUBORDINATE", "Admin Pending Subordinate")  # what ca create --parent leaves on failure
    before = _arns(pca)

    under_zero = cli(server, "ca", "create", "--parent", zero, "-n", "Under Zero", ok=False)
    assert under_zero.returncode == 1, under_zero.stdout
    assert f"the parent CA {zero} has path length 0: it may sign end-entity certificates but no other CA" \
        in " ".join(under_zero.stderr.split())
    too_long = cli(server, "ca", "create", "--parent", one, "--path-length", "1", "-n", "Too Long", ok=False)
    assert too_long.returncode == 1
    assert f"the parent CA {one} has path length 1: a subordinate under it may have --path-length 0 at most, not 1" \
        in " ".join(too_long.stderr.split())
    activate = cli(server, "ca", "activate", pending, "--parent", zero, ok=False)
    assert activate.returncode == 1 and "has path length 0" in activate.stderr
    root_under_parent = cli(server, "ca", "activate", pending_root, "--parent", one, ok=False)
    assert root_under_parent.returncode == 1 and "is a ROOT CA" in root_under_parent.stderr
    no_parent = cli(server, "ca", "activate", pending, ok=False)
    assert no_parent.returncode == 1 and "is a SUBORDINATE CA: name the CA that signs it with --parent" \
        in no_parent.stderr
    for result in (under_zero, too_long, activate, root_under_parent, no_parent):
        assert "Traceback" not in result.stderr and result.stdout == ""
    assert _arns(pca) == before  # nothing was created
    assert _described(pca, pending)["Status"] == "PENDING_CERTIFICATE"  # and nothing was signed
    assert _described(pca, pending_root)["Status"] == "PENDING_CERTIFICATE"

    allowed = cli(server, "ca", "create", "--parent", one, "-q", "-n", "Under One").stdout.strip()
    assert _described(pca, allowed)["Status"] == "ACTIVE"
    cli(server, "ca", "activate", pending, "--parent", one)
    assert _described(pca, pending)["Status"] == "ACTIVE"


def test_disable_enable_update_delete_restore(server: Server, pca: Any) -> None:
    arn = cli(server, "ca", "create", "--root", "-q", "-n", "Admin Lifecycle").stdout.strip()

    assert f"{arn} is DISABLED" in cli(server, "ca", "disable", arn).stdout
    assert _described(pca, arn)["Status"] == "DISABLED"
    assert f"{arn} is ACTIVE" in cli(server, "ca", "enable", arn).stdout
    assert _described(pca, arn)["Status"] == "ACTIVE"

    shown = cli(server, "ca", "update", arn, "--crl", "--crl-days", "3", "--ocsp").stdout
    assert "CRL: enabled, valid 3 days" in shown and "OCSP: enabled" in shown
    revocation = _described(pca, arn)["RevocationConfiguration"]
    assert revocation["CrlConfiguration"]["Enabled"] and revocation["CrlConfiguration"]["ExpirationInDays"] == 3
    assert revocation["OcspConfiguration"]["Enabled"]
    cli(server, "ca", "update", arn, "--no-ocsp", "--crl-cname", "crl.admin.test")
    revocation = _described(pca, arn)["RevocationConfiguration"]
    assert not revocation["OcspConfiguration"]["Enabled"]  # what was not named stays as it was
    assert revocation["CrlConfiguration"] == {**revocation["CrlConfiguration"], "Enabled": True,
                                              "ExpirationInDays": 3, "CustomCname": "crl.admin.test"}
    cli(server, "ca", "update", arn, "--crl-cname", "")
    assert "CustomCname" not in _described(pca, arn)["RevocationConfiguration"]["CrlConfiguration"]
    cli(server, "ca", "update", arn, "--no-crl")
    assert not _described(pca, arn)["RevocationConfiguration"]["CrlConfiguration"]["Enabled"]
    nothing = cli(server, "ca", "update", arn, ok=False)
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr
    days_without_crl = cli(server, "ca", "update", arn, "--crl-days", "5", ok=False)
    assert days_without_crl.returncode == 2 and "add --crl" in days_without_crl.stderr

    active = cli(server, "ca", "delete", arn, ok=False)
    assert active.returncode == 1 and f"disable it first (certsmith ca disable {arn})" in active.stderr
    assert _described(pca, arn)["Status"] == "ACTIVE"
    short = cli(server, "ca", "delete", arn, "--restore-days", "6", ok=False)
    assert short.returncode == 2 and "--restore-days" in short.stderr
    cli(server, "ca", "disable", arn)
    deleted = cli(server, "ca", "delete", arn, "--restore-days", "7").stdout
    assert f"certsmith ca restore {arn}" in deleted
    described = _described(pca, arn)
    assert described["Status"] == "DELETED"
    assert abs(described["RestorableUntil"] - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=5)

    assert f"{arn} is DISABLED" in cli(server, "ca", "restore", arn).stdout
    assert _described(pca, arn)["Status"] == "DISABLED"
    for result in (nothing, days_without_crl, active, short):
        assert "Traceback" not in result.stderr

    # A CA that was never activated is deleted without being disabled, and listed as DELETED.
    pending = cli(server, "ca", "create", "-q", "-n", "Admin Never Active").stdout.strip()
    pca.get_waiter("certificate_authority_csr_created").wait(CertificateAuthorityArn=pending,
                                                             WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    cli(server, "ca", "delete", pending)
    assert _described(pca, pending)["Status"] == "DELETED"
