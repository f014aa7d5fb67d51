"""Two simulated years of managed renewal: 300 certificates of every kind on a FixedClock, checked from the database.

Every six simulated hours the scheduler and the notice sweep run and the worker runs what is due, as a worker's
loop would. Afterwards each certificate's versions, events and key ids are compared with what the renewal plan
(recomputed here from the previous version) and the expiry-notice schedule say should have happened.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from certsmith.domain.clock import FixedClock
from certsmith.domain.events import APPROACHING, AVAILABLE, EXPIRED
from certsmith.domain.maintenance import MaintenanceWindow
from certsmith.domain.renewal import RenewalPolicy, RenewBefore, default_margin, plan_renewal
from certsmith.services.acm.private_signing import VALIDITY_TAG
from certsmith.services.context import Caller
from certsmith.services.wiring import Container
from certsmith.store.renewal_tables import CertificateVersionRow, EventOutboxRow
from certsmith.store.tables import CertificateRow

from .ca_world import drain, make_root, world
from .renewal_world import DAY, imported_bundle, make_rsa_root, request_private, step

__all__ = ["world"]

STEP = timedelta(hours=12)
SPAN = 730 * DAY
DAYS_BEFORE_EXPIRY = 45
POLICY_TAG = "renewal"
WINDOW = {"Cron": "0 0 * * 6", "Duration": "24h", "Timezone": "Europe/Berlin"}  # Saturdays, Berlin time
SETTINGS: dict[str, dict[str, Any]] = {"fast": {"renew_before": "20d"}, "window": {"windows": [WINDOW]},
                                        "reuse": {"reuse_key": True}}  # what each tag's policy is put with
POLICIES = {  # ... and what it means, to recompute plans with
    "fast": RenewalPolicy(renew_before=RenewBefore.parse("20d")),
    "window": RenewalPolicy(windows=(MaintenanceWindow.parse(WINDOW["Cron"], WINDOW["Duration"], WINDOW["Timezone"]),)),
    "reuse": RenewalPolicy(reuse_key=True),
}
# (lifetime tag, key algorithm, policy, how many); imported certificates make up the rest of the 300.
PRIVATE_FLEET: list[tuple[str | None, str, str | None, int]] = [
    (None, "EC_prime256v1", None, 70), (None, "EC_prime256v1", "fast", 25), (None, "EC_prime256v1", "window", 25),
    (None, "EC_prime256v1", "reuse", 20), (None, "RSA_2048", None, 10), (None, "RSA_2048", "fast", 5),
    (None, "RSA_2048", "reuse", 5),
    ("90d", "EC_prime256v1", None, 16), ("90d", "EC_prime256v1", "fast", 10), ("90d", "EC_prime256v1", "window", 10),
    ("90d", "EC_prime256v1", "reuse", 8), ("90d", "RSA_2048", None, 4),
    ("7d", "EC_prime256v1", None, 6), ("7d", "EC_prime256v1", "window", 3), ("7d", "EC_prime256v1", "reuse", 3),
]
TOTAL = 300


@dataclass(frozen=True, slots=True)
class Member:
    arn: str
    kind: str  # "13 months", "90d", "7d" or "imported"
    policy: str | None


def _fleet(container: Container, caller: Caller) -> list[Member]:
    for name, settings in SETTINGS.items():
        unset = {"renew_before": None, "windows": None, "reuse_key": None, "strict_eligibility": None}
        container.renewal_policies.put(caller, f"tag:{POLICY_TAG}={name}", **{**unset, **settings})
    cas = {"EC_prime256v1": make_root(container, caller, years=5), "RSA_2048": make_rsa_root(container, caller, years=5)}
    members: list[Member] = []
    for validity, algorithm, policy, count in PRIVATE_FLEET:
        tags = ([{"Key": VALIDITY_TAG, "Value": validity}] if validity else []) + \
            ([{"Key": POLICY_TAG, "Value": policy}] if policy else [])
        for _ in range(count):
            arn = request_private(container, caller, cas[algorithm], f"h{len(members)}.fleet.test", key_algorithm=algorithm,
                                  tags=tags)
            members.append(Member(arn, validity or "13 months", policy))
    drain(container)  # RSA keys are made by the issue jobs
    rng = random.Random(2030)
    now = container.clock.now()
    while len(members) < TOTAL:
        lifetime = timedelta(days=rng.randint(20, 400), minutes=rng.randint(0, 1439))
        not_before = now - timedelta(minutes=rng.randint(1, int((lifetime - DAY) / timedelta(minutes=1))))
        bundle = imported_bundle(f"i{len(members)}.fleet.test", not_before, not_before + lifetime)
        members.append(Member(container.imports.import_certificate(caller, bundle, None, None), "imported", None))
    return members


def _check_none_expired(container: Container, managed: int, now: datetime) -> None:
    with container.database.read() as session:
        count, soonest = session.execute(select(func.count(), func.min(CertificateRow.not_after)).where(
            CertificateRow.type == "PRIVATE", CertificateRow.status == "ISSUED")).one()
    assert count == managed, f"at {now} only {count} of {managed} managed certificates are ISSUED"
    assert soonest is not None and soonest > now, f"at {now} a managed certificate expired at {soonest}"


def _check_renewals(member: Member, row: CertificateRow, chain: list[CertificateVersionRow], end: datetime,
                    tally: Counter[str]) -> None:
    """Each version after the first came at the first step at or after the previous version's plan; the last one's
    plan lies ahead and is the one stored."""
    policy = POLICIES.get(member.policy or "", RenewalPolicy())
    assert chain[0].action == "ISSUANCE" and [v.version for v in chain] == list(range(1, len(chain) + 1))
    for previous, current in itertools.pairwise(chain):
        plan = plan_renewal(previous.not_before, previous.not_after, policy, f"{member.arn}#{previous.version}")
        where = f"{member.kind} {member.policy} {member.arn} v{current.version}"
        assert current.action == "RENEWAL", where
        assert current.issued_at < previous.not_after, where
        if policy.windows and not plan.reason.startswith("expiry is near"):
            window = policy.windows[0]
            assert window.contains(plan.at), (where, plan.at)
            if current.issued_at < plan.at + STEP:
                assert window.contains(current.issued_at), (where, plan.at, current.issued_at)
                tally["renewed inside the window"] += 1
            elif not window.contains(current.issued_at):
                # Found after its window closed, and the next opens too late: renewed at the expiry-is-near deadline.
                assert policy.renew_before is None
                deadline = previous.not_after - default_margin(previous.not_before, previous.not_after) / 2
                assert deadline <= current.issued_at < deadline + STEP, (where, deadline, current.issued_at)
                tally["found after its window closed, renewed at the expiry-is-near deadline"] += 1
            else:  # planned in the window's last step, found after it closed: renewed in the next window
                closed = window.opening(plan.at)
                later = window.opening(current.issued_at)
                assert closed is not None and later is not None and later[0] > closed[1], where
                assert current.issued_at < later[0] + STEP, (where, later[0], current.issued_at)
                tally["found after its window closed, renewed in the next window"] += 1
            continue
        assert plan.at <= current.issued_at < plan.at + STEP, (where, plan.at, current.issued_at)
        if policy.windows:
            tally["renewed at the expiry-is-near deadline"] += 1
    last = plan_renewal(chain[-1].not_before, chain[-1].not_after, policy, f"{member.arn}#{chain[-1].version}")
    assert last.at > end - STEP, f"{member.arn} was due at {last.at} and not renewed"
    assert (row.next_renewal_at, (row.renewal_plan or {}).get("at")) == (last.at, last.at.isoformat()), member.arn
    keys = [v.key_id for v in chain]
    if member.policy == "reuse":
        assert len(set(keys)) == 1, f"{member.arn} changed its key despite reuse_key"
    else:
        assert len(set(keys)) == len(keys), f"{member.arn} kept a key across versions"


def _check_imported(member: Member, row: CertificateRow, chain: list[CertificateVersionRow], sweeps: list[datetime],
                    told: dict[str, list[EventOutboxRow]]) -> None:
    """Never renewed; daily Approaching Expiration in the last 45 days, then one Expired and status EXPIRED."""
    assert [v.action for v in chain] == ["IMPORT"] and row.status == "EXPIRED" and row.version == 1, member.arn
    assert row.not_after is not None
    not_after = row.not_after
    countdown_days = {-((t - not_after) // DAY) for t in sweeps if not_after - DAYS_BEFORE_EXPIRY * DAY <= t < not_after}
    approaching = told[APPROACHING]
    days = [e.detail["DaysToExpiry"] for e in approaching]
    assert len(approaching) == len(countdown_days), (member.arn, len(approaching), len(countdown_days))
    assert days == sorted(set(days), reverse=True), f"{member.arn}: DaysToExpiry {days} is not decreasing"
    assert len({-((e.time - not_after) // DAY) for e in approaching}) == len(approaching), "two notices on one day"
    assert all(not_after - DAYS_BEFORE_EXPIRY * DAY <= e.time < not_after for e in approaching)
    assert len(told[EXPIRED]) == 1 and not_after <= told[EXPIRED][0].time < not_after + STEP, member.arn


def test_two_years_of_managed_renewal(world: Any) -> None:
    container, caller, clock = world
    assert isinstance(clock, FixedClock)
    started = time.monotonic()
    members = _fleet(container, caller)
    managed = sum(1 for m in members if m.kind != "imported")
    setup = time.monotonic() - started
    start, worker, sweeps = clock.now(), container.worker(), []
    while clock.now() < start + SPAN:
        step(container, clock, worker, STEP)
        sweeps.append(clock.now())
        _check_none_expired(container, managed, clock.now())
    end = clock.now()
    simulated = time.monotonic() - started - setup

    with container.database.read() as session:
        rows = {r.arn: r for r in session.scalars(select(CertificateRow))}
        chains: dict[str, list[CertificateVersionRow]] = defaultdict(list)
        for version in session.scalars(select(CertificateVersionRow).order_by(CertificateVersionRow.version)):
            chains[version.certificate_id].append(version)
        # ACM's events only: the outbox also holds ACM-PCA's (aws.acm-pca) and certsmith's own.
        outbox = list(session.scalars(select(EventOutboxRow).where(EventOutboxRow.source == "aws.acm")
                                      .order_by(EventOutboxRow.id)))
    told: dict[str, dict[str, list[EventOutboxRow]]] = defaultdict(lambda: defaultdict(list))
    for event in outbox:
        assert len(event.resources) == 1
        told[event.resources[0]][event.detail_type].append(event)

    tally: Counter[str] = Counter()
    assert len(rows) == TOTAL == len(members)
    for member in members:
        row, chain = rows[member.arn], chains[rows[member.arn].id]
        actions = Counter(e.detail["Action"] for e in told[member.arn][AVAILABLE])
        if member.kind == "imported":
            _check_imported(member, row, chain, sweeps, told[member.arn])
            assert actions == {"IMPORT": 1}, member.arn
            continue
        _check_renewals(member, row, chain, end, tally)
        assert row.status == "ISSUED" and row.version == len(chain) and not told[member.arn][EXPIRED], member.arn
        assert actions == {"ISSUANCE": 1, "RENEWAL": len(chain) - 1}, (member.arn, actions, len(chain))
        tally[f"renewals of {member.kind} certificates"] += len(chain) - 1
    assert set(Counter(e.detail_type for e in outbox)) <= {AVAILABLE, APPROACHING, EXPIRED}  # no renewal ever failed

    print(f"\n{TOTAL} certificates ({managed} managed), {len(sweeps)} steps of {STEP} over {SPAN.days} days: "
          f"setup {setup:.1f}s, simulation {simulated:.1f}s, checks {time.monotonic() - started - setup - simulated:.1f}s")
    for what, count in sorted(tally.items()):
        print(f"  {what}: {count}")
    for detail_type, count in sorted(Counter(e.detail_type for e in outbox).items()):
        print(f"  {detail_type}: {count}")
    assert tally["renewals of 7d certificates"] > 100 and tally["renewed inside the window"] > 20
