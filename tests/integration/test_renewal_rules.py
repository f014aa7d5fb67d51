"""Managed renewal's rules on a FixedClock: a disabled CA, StrictEligibility, policy changes, RenewCertificate
during a scheduled renewal, and policies refused with the field named."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from certsmith.domain.authority import AuthorityStatus
from certsmith.domain.clock import FixedClock
from certsmith.domain.errors import RequestInProgressError, ResourceNotFoundError, ValidationError
from certsmith.domain.events import ACTION_REQUIRED, AVAILABLE, EXPIRED
from certsmith.domain.renewal import RenewalPolicy, RenewBefore, plan_renewal
from certsmith.services.acm.certificate_records import renewal_eligibility
from certsmith.services.context import Caller
from certsmith.services.wiring import Container
from certsmith.store.tables import CertificateRow

from .ca_world import drain, make_root, world
from .renewal_world import DAY, certificate, events, renewal_jobs, request_private, run_until, step, versions

__all__ = ["world"]

SEVEN_DAYS = [{"Key": "certsmith:validity", "Value": "7d"}]


def _plan(row: CertificateRow, policy: RenewalPolicy | None = None) -> datetime:
    """When the current version's renewal should start (recomputed here from the row)."""
    assert row.not_before is not None and row.not_after is not None
    return plan_renewal(row.not_before, row.not_after, policy or RenewalPolicy(), f"{row.arn}#{row.version}").at


def _renewal(container: Container, caller: Caller, arn: str) -> dict[str, Any]:
    """DescribeCertificate's RenewalSummary."""
    return dict(container.certificates.describe(caller, arn).renewal or {})


def _failing_renewal(world: Any) -> tuple[Container, Caller, FixedClock, str, str, list[timedelta]]:
    """A 13-month certificate whose CA is disabled before its renewal: run until one day before expiry.

    Returns the world, the CA and certificate ARNs, and the delays between the first retries (read from the job).
    """
    container, caller, clock = world
    ca = make_root(container, caller, years=3)
    arn = request_private(container, caller, ca, "disabled-ca.test")
    drain(container)
    planned = _plan(certificate(container, arn))
    assert certificate(container, arn).next_renewal_at == planned
    worker = container.worker()
    run_until(container, clock, worker, planned - DAY)
    container.authorities.update(caller, ca, AuthorityStatus.DISABLED, None)
    run_until(container, clock, worker, planned)
    delays: list[timedelta] = []
    for _ in range(12):  # the job waits, and its next run moves further away each time
        jobs = renewal_jobs(container, certificate(container, arn).id)
        assert len(jobs) == 1 and jobs[0].state == "ready" and "PCA_INVALID_STATE" in (jobs[0].last_error or "")
        delays.append(jobs[0].run_after - clock.now())
        step(container, clock, worker, jobs[0].run_after - clock.now())
    summary = _renewal(container, caller, arn)
    assert (summary["RenewalStatus"], summary["RenewalStatusReason"]) == ("PENDING_AUTO_RENEWAL", "PCA_INVALID_STATE")
    not_after = certificate(container, arn).not_after
    assert not_after is not None
    run_until(container, clock, worker, not_after - DAY + timedelta(hours=1))
    return container, caller, clock, ca, arn, delays


def _check_told(container: Container, arn: str) -> None:
    told = events(container, ACTION_REQUIRED, arn)
    assert [e.detail["DaysToExpiry"] for e in told] == [45, 30, 15, 3, 1]
    assert {e.detail["RenewalStatusReason"] for e in told} == {"PCA_INVALID_STATE"}


def test_a_disabled_ca_is_retried_with_backoff_and_renews_once_enabled(world: Any) -> None:
    container, caller, clock, ca, arn, delays = _failing_renewal(world)
    minutes = [d / timedelta(minutes=1) for d in delays]
    assert minutes == [1, 2, 4, 8, 16, 32, 64, 128, 256, 360, 360, 360]
    assert _renewal(container, caller, arn)["RenewalStatus"] == "PENDING_AUTO_RENEWAL"
    _check_told(container, arn)
    assert versions(container, arn)[-1].version == 1

    (job,) = renewal_jobs(container, certificate(container, arn).id)
    container.authorities.update(caller, ca, AuthorityStatus.ACTIVE, None)
    worker = container.worker()
    run_until(container, clock, worker, clock.now() + 3 * DAY)
    renewed = versions(container, arn)
    assert [v.action for v in renewed] == ["ISSUANCE", "RENEWAL"] and renewed[1].issued_at == job.run_after
    summary = _renewal(container, caller, arn)
    assert (summary["RenewalStatus"], summary.get("RenewalStatusReason")) == ("SUCCESS", None)
    assert [e.detail["Action"] for e in events(container, AVAILABLE, arn)] == ["ISSUANCE", "RENEWAL"]
    row = certificate(container, arn)
    assert row.status == "ISSUED" and row.next_renewal_at == _plan(row) and not renewal_jobs(container, row.id)
    _check_told(container, arn)  # nothing more once it succeeded


def test_a_ca_left_disabled_fails_the_renewal_at_expiry(world: Any) -> None:
    container, caller, clock, _, arn, _ = _failing_renewal(world)
    row = certificate(container, arn)
    assert row.not_after is not None
    run_until(container, clock, container.worker(), row.not_after + 2 * DAY)
    summary = _renewal(container, caller, arn)
    assert (summary["RenewalStatus"], summary["RenewalStatusReason"]) == ("FAILED", "PCA_INVALID_STATE")
    row = certificate(container, arn)
    assert row.status == "EXPIRED" and row.version == 1 and row.next_renewal_at is None
    assert len(events(container, EXPIRED, arn)) == 1 and not renewal_jobs(container, row.id)
    assert [e.detail["Action"] for e in events(container, AVAILABLE, arn)] == ["ISSUANCE"]
    _check_told(container, arn)


def test_strict_eligibility_renews_only_what_was_exported(world: Any) -> None:
    container, caller, clock = world
    container.renewal_policies.put(caller, "account", renew_before=None, windows=None, reuse_key=None,
                                   strict_eligibility=True)
    ca = make_root(container, caller, years=3)
    kept, exported = (request_private(container, caller, ca, f"{n}.strict.test", tags=SEVEN_DAYS) for n in "ab")
    drain(container)
    for arn in (kept, exported):
        assert renewal_eligibility(container.certificates.describe(caller, arn)) == "INELIGIBLE"
        assert certificate(container, arn).next_renewal_at is None
    listed = {e.arn: e for e in container.renewal_status.page(caller, None, None)[0]}
    assert listed[kept].eligibility == "INELIGIBLE" and listed[kept].planned_at is None
    assert "not been exported and is not in use" in (listed[kept].reason or "")
    assert "StrictEligibility" in (listed[kept].reason or "")

    worker = container.worker()
    step(container, clock, worker, DAY)
    container.lifecycle.export(caller, exported, b"passphrase")
    assert renewal_eligibility(container.certificates.describe(caller, exported)) == "ELIGIBLE"
    step(container, clock, worker, timedelta(0))  # the next sweep plans it
    row = certificate(container, exported)
    planned = _plan(row)
    assert row.next_renewal_at == planned and (row.renewal_plan or {}).get("eligibility") == "ELIGIBLE"

    run_until(container, clock, worker, clock.now() + 7 * DAY)
    renewed = versions(container, exported)
    assert [v.action for v in renewed] == ["ISSUANCE", "RENEWAL"] and renewed[1].issued_at == planned
    # ACM's rule: eligible when exported since issued or last renewed; the new version has not been exported yet.
    assert renewal_eligibility(container.certificates.describe(caller, exported)) == "INELIGIBLE"
    assert certificate(container, exported).next_renewal_at is None
    untouched = certificate(container, kept)
    assert untouched.status == "EXPIRED" and untouched.version == 1
    assert len(events(container, EXPIRED, kept)) == 1
    assert [e.detail["Action"] for e in events(container, AVAILABLE, kept)] == ["ISSUANCE"]


def test_a_policy_change_replans_existing_certificates(world: Any) -> None:
    container, caller, clock = world
    ca = make_root(container, caller, years=3)
    web = request_private(container, caller, ca, "web.policy.test", tags=[{"Key": "team", "Value": "web"}])
    other = request_private(container, caller, ca, "other.policy.test")
    drain(container)
    default = {arn: _plan(certificate(container, arn)) for arn in (web, other)}
    assert {arn: certificate(container, arn).next_renewal_at for arn in default} == default

    worker = container.worker()
    step(container, clock, worker, DAY)
    container.renewal_policies.put(caller, "tag:team=web", renew_before="20d", windows=None, reuse_key=None,
                                   strict_eligibility=None)
    step(container, clock, worker, timedelta(0))  # the re-planning job runs: only the tagged one changes
    twenty = RenewalPolicy(renew_before=RenewBefore.parse("20d"))
    row = certificate(container, web)
    assert row.next_renewal_at == _plan(row, twenty) != default[web]
    assert (row.renewal_plan or {}).get("source") == "tag:team=web"
    assert certificate(container, other).next_renewal_at == default[other]

    container.renewal_policies.put(caller, "account", renew_before="33%", windows=None, reuse_key=None,
                                   strict_eligibility=None)
    step(container, clock, worker, timedelta(0))
    third = RenewalPolicy(renew_before=RenewBefore.parse("33%"))
    assert certificate(container, other).next_renewal_at == _plan(certificate(container, other), third) != default[other]
    assert certificate(container, web).next_renewal_at == _plan(row, twenty)  # the tag's policy comes first

    container.renewal_policies.delete(caller, "tag:team=web")
    step(container, clock, worker, timedelta(0))
    assert certificate(container, web).next_renewal_at == _plan(row, third)
    assert all(len(versions(container, arn)) == 1 for arn in (web, other))


def test_turning_strict_eligibility_off_plans_the_unexported_certificates(world: Any) -> None:
    container, caller, clock = world
    container.renewal_policies.put(caller, "account", renew_before=None, windows=None, reuse_key=None,
                                   strict_eligibility=True)
    ca = make_root(container, caller, years=3)
    arn = request_private(container, caller, ca, "strict-off.test", tags=SEVEN_DAYS)
    drain(container)
    assert certificate(container, arn).next_renewal_at is None
    worker = container.worker()
    step(container, clock, worker, timedelta(hours=1))
    container.renewal_policies.put(caller, "account", renew_before=None, windows=None, reuse_key=None,
                                   strict_eligibility=False)
    step(container, clock, worker, timedelta(0))
    row = certificate(container, arn)
    assert row.next_renewal_at == _plan(row), "the account renews every certificate again, but this one stays unplanned"
    assert renewal_eligibility(container.certificates.describe(caller, arn)) == "ELIGIBLE"
    assert row.not_after is not None
    run_until(container, clock, worker, row.not_after + DAY)
    assert certificate(container, arn).status == "ISSUED" and len(versions(container, arn)) >= 2


def test_tagging_a_certificate_with_a_policy_tag_replans_it(world: Any) -> None:
    container, caller, clock = world
    container.renewal_policies.put(caller, "tag:renewal=early", renew_before="90d", windows=None, reuse_key=None,
                                   strict_eligibility=None)
    ca = make_root(container, caller, years=3)
    arn = request_private(container, caller, ca, "tagged-later.test")
    drain(container)
    default = _plan(certificate(container, arn))
    step(container, clock, container.worker(), DAY)
    container.certificates.change_tags(caller, arn, add=[{"Key": "renewal", "Value": "early"}])
    step(container, clock, container.worker(), timedelta(0))
    row = certificate(container, arn)
    early = _plan(row, RenewalPolicy(renew_before=RenewBefore.parse("90d")))
    assert early < default
    assert row.next_renewal_at == early, f"planned at {row.next_renewal_at} by the old policy, not at {early} by the tag's"


def test_renew_certificate_while_a_scheduled_renewal_waits_renews_once(world: Any) -> None:
    container, caller, clock = world
    ca = make_root(container, caller, years=3)
    arn = request_private(container, caller, ca, "manual.test", tags=SEVEN_DAYS)
    drain(container)
    row = certificate(container, arn)
    clock.advance(_plan(row) - clock.now())
    assert [d.arn for d in container.scheduler.sweep()] == [arn]
    container.lifecycle.renew(caller, arn)
    with pytest.raises(RequestInProgressError):
        container.lifecycle.renew(caller, arn)
    assert [j.kind for j in renewal_jobs(container, row.id)] == ["renewal.check", "acm.renew"]
    drain(container)
    assert [v.action for v in versions(container, arn)] == ["ISSUANCE", "RENEWAL"]
    assert [e.detail["Action"] for e in events(container, AVAILABLE, arn)] == ["ISSUANCE", "RENEWAL"]
    row = certificate(container, arn)
    assert (row.renewal or {}).get("RenewalStatus") == "SUCCESS" and not renewal_jobs(container, row.id)
    assert row.next_renewal_at == _plan(row) > clock.now()
    run_until(container, clock, container.worker(), row.next_renewal_at - timedelta(minutes=1))
    assert len(versions(container, arn)) == 2


@pytest.mark.parametrize(("settings", "field"), [
    ({"renew_before": "0%"}, "RenewBefore"),
    ({"renew_before": "30"}, "RenewBefore"),
    ({"windows": [{"Cron": "61 * * * *", "Duration": "1h"}]}, "MaintenanceWindows[0].Cron"),
    ({"windows": [{"Cron": "0 2 * * 6", "Duration": "4h", "Timezone": "Mars/Base"}]}, "MaintenanceWindows[0].Timezone"),
])
def test_a_bad_policy_is_refused_naming_the_field(world: Any, settings: dict[str, Any], field: str) -> None:
    container, caller, _ = world
    put = {"renew_before": None, "windows": None, "reuse_key": None, "strict_eligibility": None}
    container.renewal_policies.put(caller, "tag:env=prod", **{**put, "renew_before": "30d"})
    for scope in ("account", "tag:env=prod"):
        with pytest.raises(ValidationError) as refused:
            container.renewal_policies.put(caller, scope, **{**put, **settings})
        assert refused.value.field == field and refused.value.message.startswith(field), refused.value.message
    with pytest.raises(ResourceNotFoundError):
        container.renewal_policies.describe(caller, "account")
    assert container.renewal_policies.describe(caller, "tag:env=prod").renew_before == "30d"
