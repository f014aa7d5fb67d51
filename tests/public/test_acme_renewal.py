"""Managed renewal of public certificates against Pebble 2.6 (ACME Renewal Information, RFC 9773), end to end:
BIND holds the user's persistent CNAMEs into certsmith's validation zone, and a certsmith server renews.

The CA's window decides when a certificate is renewed; a revocation at the CA pulls the renewal to now, and the order
names the certificate it replaces; a removed CNAME holds the renewal (PENDING_VALIDATION) until it is back; a renewal
wave that meets a CA that is down waits with backoff and completes, every certificate once, when the CA is back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from certsmith.acme import certificate_id
from certsmith.store.jobs import DEAD, READY

from .ari_world import AriWorld, ari_world, wait_for
from .conftest import wait_status

WAVE = 12  # certificates in the renewal wave
WAVE_TAG = {"Key": "wave", "Value": "1"}


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[AriWorld]:
    with ari_world(tmp_path / "world") as started:
        yield started


def issued(world: AriWorld, *arns: str) -> None:
    """Wait until each certificate is ISSUED and its first renewal check (which asks the CA's window) has run."""
    for arn in arns:
        detail = wait_status(world.acm, arn)
        assert detail["Status"] == "ISSUED", detail
    wait_for("the first renewal check of every certificate",
             lambda: all(world.renewals()[arn].get("PolicySource") == "ari" for arn in arns))


def renewed(world: AriWorld, arns: list[str], seconds: float = 90) -> dict[str, dict[str, Any]]:
    """Wait until every certificate's renewal succeeded and its new certificate had its own first check."""
    def done() -> dict[str, dict[str, Any]] | None:
        entries = world.renewals()
        mine = {arn: entries[arn] for arn in arns}
        if all(e.get("RenewalStatus") == "SUCCESS" and e["Version"] == 2 and e.get("PolicySource") == "ari"
               for e in mine.values()):
            return mine
        return None
    return wait_for(f"the renewal of {len(arns)} certificate(s)", done, seconds)


def assert_renewed_once(world: AriWorld, arn: str, old_serial: str) -> None:
    """Two versions (ISSUANCE, RENEWAL) under the same ARN, a new serial, one Available event per version."""
    versions = world.versions(arn)
    assert [(v["Version"], v["Action"], v["Current"]) for v in versions] == [(1, "ISSUANCE", False), (2, "RENEWAL", True)]
    assert versions[0]["Serial"] == old_serial != versions[1]["Serial"]
    detail = world.detail(arn)
    assert detail["CertificateArn"] == arn and detail["Status"] == "ISSUED"
    assert detail["Serial"] == versions[1]["Serial"]
    assert detail["RenewalSummary"]["RenewalStatus"] == "SUCCESS"
    assert all(o["ValidationStatus"] == "SUCCESS" for o in detail["RenewalSummary"]["DomainValidationOptions"])
    assert [e["Action"] for e in world.events(arn)] == ["ISSUANCE", "RENEWAL"]
    assert all(job.state != DEAD for job in world.renewal_jobs(arn))


def test_the_first_check_plans_inside_the_window_the_ca_suggests(world: AriWorld) -> None:
    arn = world.request(["ari.example.test", "www.ari.example.test"])
    issued(world, arn)
    asked_at = datetime.now(UTC)
    info = world.renewal_info(arn)
    entry = world.renewals()[arn]
    leaf = world.leaf(arn)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(days=90) - timedelta(seconds=1)
    assert leaf.not_valid_before_utc < info.start < info.end < leaf.not_valid_after_utc
    assert entry["RenewalEligibility"] == "ELIGIBLE" and entry["PolicySource"] == "ari"
    assert info.start <= entry["PlannedAt"] < info.end, (entry, info)
    assert "(ARI)" in entry["Reason"]
    assert info.retry_after is not None  # Pebble: 6 hours
    assert datetime.now(UTC) < entry["NextCheckAt"] <= asked_at + timedelta(seconds=info.retry_after)
    assert entry["Version"] == 1 and "RenewalStatus" not in entry
    assert [v["Action"] for v in world.versions(arn)] == ["ISSUANCE"]


def test_a_certificate_the_ca_revoked_is_renewed_at_once_as_its_replacement(world: AriWorld) -> None:
    arn = world.request(["revoked.example.test"])
    issued(world, arn)
    old = world.leaf(arn)
    old_id, old_serial = certificate_id(old), world.detail(arn)["Serial"]
    assert world.renewals()[arn]["NextCheckAt"] > datetime.now(UTC) + timedelta(hours=1)

    world.revoke(arn)
    window = world.renewal_info(arn)
    assert window.end <= datetime.now(UTC)  # the CA wants it replaced now
    world.look_now(arn)  # rather than at the next check, hours away; the renewer decides from the window

    renewed(world, [arn])
    assert_renewed_once(world, arn, old_serial)
    assert world.orders(arn)[0]["replaces"] == old_id
    assert world.leaf(arn).serial_number != old.serial_number
    entry = world.renewals()[arn]
    assert entry["LastResult"] == "SUCCESS" and entry["PlannedAt"] > datetime.now(UTC) + timedelta(days=30)


def test_a_removed_cname_holds_the_renewal_until_it_is_back(world: AriWorld) -> None:
    kept, removed = "cname.example.test", "api.cname.example.test"
    arn = world.request([kept, removed])
    issued(world, arn)
    old_id, old_serial = certificate_id(world.leaf(arn)), world.detail(arn)["Serial"]
    record = {r["Name"].rstrip("."): r["Value"].rstrip(".") for r in world.records(arn)}
    removed_record = f"_acme-challenge.{removed}"
    assert set(record) == {f"_acme-challenge.{kept}", removed_record}

    world.bind.delete(removed_record, "CNAME")  # nsupdate, as the zone's owner would
    wait_for("the CNAME gone from BIND", lambda: not world.bind.query(removed_record, "CNAME"), 10)
    world.revoke(arn)
    world.look_now(arn)

    def held() -> dict[str, Any] | None:
        summary: dict[str, Any] = world.detail(arn).get("RenewalSummary", {})
        return summary if summary.get("RenewalStatus") == "PENDING_VALIDATION" else None
    summary = wait_for("the renewal waiting for the CNAME", held)
    assert summary["RenewalStatusReason"] == "PENDING_DOMAIN_VALIDATION"
    statuses = {o["DomainName"]: o["ValidationStatus"] for o in summary["DomainValidationOptions"]}
    assert statuses == {kept: "SUCCESS", removed: "PENDING_VALIDATION"}
    shown = {o["DomainName"]: o for o in summary["DomainValidationOptions"]}[removed]
    assert shown["ResourceRecord"] == {"Name": removed_record + ".", "Type": "CNAME", "Value": record[removed_record] + "."}
    entry = world.renewals()[arn]
    assert entry["RenewalStatus"] == "PENDING_VALIDATION"
    assert entry["LastError"] == f"the validation record of {removed} is not in place"
    detail = world.detail(arn)
    assert (detail["Status"], detail["Serial"], entry["Version"]) == ("ISSUED", old_serial, 1)
    jobs = [job for job in world.renewal_jobs(arn) if job.state == READY]
    assert len(jobs) == 1 and jobs[0].run_after - jobs[0].updated_at == timedelta(hours=1)  # it looks again hourly

    world.bind.set_cname(removed_record, record[removed_record])
    world.bind.wait_visible(removed_record, "CNAME", record[removed_record])
    assert world.hurry(arn) == 1  # the hourly look, now
    renewed(world, [arn])
    assert_renewed_once(world, arn, old_serial)
    assert world.orders(arn)[0]["replaces"] == old_id


def test_a_renewal_wave_waits_out_a_ca_that_is_down_and_loses_none(world: AriWorld) -> None:
    arns = [world.request([f"w{i}.wave.example.test"], tags=[WAVE_TAG]) for i in range(WAVE)]
    issued(world, *arns)
    serials = {arn: world.detail(arn)["Serial"] for arn in arns}

    # The CA revokes them all, then goes down before certsmith asks again: a CA that cannot be asked tells
    # nothing new, so each check keeps the window the CA suggested last (RFC 9773 §4.3) and asks again later.
    world.revoke(*arns)
    world.pebble.stop()
    looked = datetime.now(UTC)
    world.look_now(*arns)
    def replanned() -> dict[str, dict[str, Any]] | None:
        entries = world.renewals()
        return entries if all(entries[arn].get("PolicySource") == "ari" and
                              entries[arn].get("NextCheckAt", looked) > looked + timedelta(hours=1)
                              for arn in arns) else None
    planned = wait_for("the checks while the CA is down", replanned)
    for arn in arns:
        assert planned[arn]["PlannedAt"] > datetime.now(UTC) + timedelta(days=50)
        assert planned[arn]["NextCheckAt"] <= datetime.now(UTC) + timedelta(hours=12)  # the CA is asked again
        assert "RenewalStatus" not in planned[arn] and planned[arn]["Version"] == 1

    # The owner wants them renewed now: a policy for the tag, renew a minute short of the whole lifetime before
    # expiry, makes every one due (a minute after issuance, less its spread of up to a tenth), and the wave starts.
    world.certsmith.put_renewal_policy(Scope="tag:wave=1", RenewBefore="89d23h59m")
    backed_off: set[str] = set()

    def waiting() -> dict[str, dict[str, Any]] | None:
        listed = world.renewals()
        entries = {arn: listed[arn] for arn in arns}
        for arn in arns:
            for job in world.renewal_jobs(arn):
                if job.state == READY and job.run_after - job.updated_at >= timedelta(seconds=2):
                    backed_off.add(arn)  # a second wait, longer than the first
        if len(backed_off) == len(arns) and all(
                e.get("RenewalStatus") == "PENDING_AUTO_RENEWAL" and "the ACME CA is unavailable" in e.get("LastError", "")
                for e in entries.values()):
            return entries
        return None
    entries = wait_for("every renewal waiting, with backoff, for the CA", waiting, 60, seen=lambda: (
        sorted(backed_off), [(e["DomainName"], e.get("RenewalStatus"), e.get("LastError"), e.get("PolicySource"))
                             for a, e in world.renewals().items() if a in arns],
        [(j.state, j.run_after, j.updated_at, j.last_error) for a in arns for j in world.renewal_jobs(a)]))
    for arn in arns:
        assert entries[arn]["Version"] == 1 and entries[arn]["PolicySource"] == "tag:wave=1"
        assert world.detail(arn)["RenewalSummary"]["RenewalStatus"] == "PENDING_AUTO_RENEWAL"
        jobs = world.renewal_jobs(arn)
        assert len(jobs) == 1 and jobs[0].state != DEAD and jobs[0].attempts <= 1, jobs
        assert "the ACME CA is unavailable" in (jobs[0].last_error or "")
    # Renewals under way keep going without the policy, which would make every new certificate due at once too;
    # once renewed, the certificates are planned by the CA's window again.
    world.certsmith.delete_renewal_policy(Scope="tag:wave=1")

    world.pebble.start()  # a new CA: it forgot the account and the certificates
    renewed(world, arns, seconds=120)
    for arn in arns:
        assert_renewed_once(world, arn, serials[arn])
    wait_for("no renewal job left", lambda: not any(world.renewal_jobs(arn) for arn in arns), 10)
    orders = world.orders(*arns)  # placed with the account registered again, without "replaces"
    assert all("replaces" not in order and order["status"] == "valid" for order in orders), orders
