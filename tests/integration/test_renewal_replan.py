"""A policy change answers at once; a job plans the account's certificates anew, 500 to a transaction."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select

from certsmith.services.acm.certificates import RequestedCertificate
from certsmith.services.renewal.policies import REPLAN_JOB
from certsmith.store.tables import CertificateRow, JobRow

from .ca_world import drain, make_root, world

__all__ = ["world"]


def test_a_policy_change_replans_a_large_account_in_batches(world: Any) -> None:
    container, caller, _ = world
    ca = make_root(container, caller, years=5)
    for index in range(1100):
        container.certificates.request(caller, RequestedCertificate(f"r{index}.replan.test", [], ca, "EC_prime256v1",
                                                                    None, {}, []))
    drain(container)
    started = time.monotonic()
    container.renewal_policies.put(caller, "account", renew_before="45d", windows=None, reuse_key=None,
                                   strict_eligibility=None)
    assert time.monotonic() - started < 1.0  # nothing is planned in the request itself
    with container.database.read() as session:
        assert session.scalar(select(func.count()).select_from(JobRow).where(JobRow.kind == REPLAN_JOB)) == 1
    worker = container.worker()
    runs = 0
    while worker.run_once():
        runs += 1
    with container.database.read() as session:
        sources = session.execute(select(CertificateRow.renewal_plan)).scalars().all()
        assert session.scalar(select(func.count()).select_from(JobRow).where(JobRow.kind == REPLAN_JOB)) == 0
    assert len(sources) == 1100 and all(plan["source"] == "account" and "renew-before 45d" in plan["reason"]
                                        for plan in sources)
    assert runs >= 3  # 1,100 certificates: three batches, each its own job
