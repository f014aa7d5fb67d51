"""Certificates stored before managed renewal existed are planned at the next start, once, without events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select

from certsmith.services.acm.certificates import RequestedCertificate
from certsmith.services.wiring import build
from certsmith.store.tables import CertificateRow, CertificateVersionRow, EventOutboxRow

from .ca_world import drain, make_root, world

__all__ = ["world"]


def test_certificates_from_before_managed_renewal_are_planned_at_start(world: Any, tmp_path: Path) -> None:
    container, caller, clock = world
    ca = make_root(container, caller, years=5)
    arn = container.certificates.request(caller, RequestedCertificate("old.internal.test", [], ca, "EC_prime256v1",
                                                                      None, {}, []))
    drain(container)
    certificate_id = arn.rsplit("/", 1)[1]
    with container.database.transaction() as session:  # as a row stored by an earlier certsmith looks
        session.execute(delete(CertificateVersionRow))
        session.execute(delete(EventOutboxRow))
        row = session.get(CertificateRow, certificate_id)
        assert row is not None
        row.version, row.renewal_plan, row.next_renewal_at, row.notices, row.next_notice_at = 0, None, None, None, None

    again = build(container.settings, clock)
    try:
        with again.database.read() as session:
            row = session.get(CertificateRow, certificate_id)
            assert row is not None and row.version == 1 and row.next_renewal_at is not None
            assert row.not_after is not None and row.next_renewal_at < row.not_after
            assert (row.renewal_plan or {})["eligibility"] == "ELIGIBLE" and row.next_notice_at is not None
            assert session.scalar(select(func.count()).select_from(CertificateVersionRow)) == 1
            assert session.scalar(select(func.count()).select_from(EventOutboxRow)) == 0  # nothing new was issued
        assert again.renewal_status.versions(caller, arn)[0].current
    finally:
        again.writes.close()
        again.database.dispose()
