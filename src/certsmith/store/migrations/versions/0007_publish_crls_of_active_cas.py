"""publish the CRLs of answering CAs

A CA with CRLs on used to publish its first CRL only after its first IssueCertificate, and its refresh
schedule ended for good when a refresh found CRLs off or the CA DELETED. Since then activation, CRL
settings and restores queue a refresh; this queues one for every CA that answers (ACTIVE or DISABLED,
with a certificate) and has CRLs on, so that those CAs publish, and resume their schedule, without
waiting for a revocation. The refresh itself re-checks everything, so a CA that changed meanwhile is
skipped.

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    authorities = sa.table("certificate_authorities", sa.column("id", sa.String), sa.column("status", sa.String),
                           sa.column("revocation", sa.JSON), sa.column("certificate_pem", sa.Text))
    jobs = sa.table("jobs", sa.column("kind", sa.String), sa.column("payload", sa.JSON),
                    sa.column("state", sa.String), sa.column("run_after", sa.DateTime),
                    sa.column("attempts", sa.Integer), sa.column("max_attempts", sa.Integer),
                    sa.column("created_at", sa.DateTime), sa.column("updated_at", sa.DateTime))
    now = datetime.now(UTC).replace(tzinfo=None)  # the UTC columns hold naive UTC
    rows = bind.execute(sa.select(authorities.c.id, authorities.c.revocation).where(
        authorities.c.status.in_(("ACTIVE", "DISABLED")), authorities.c.certificate_pem.is_not(None))).all()
    queued = [{"kind": "crl.refresh", "payload": {"authority_id": authority_id}, "state": "ready", "run_after": now,
               "attempts": 0, "max_attempts": 36, "created_at": now, "updated_at": now}
              for authority_id, revocation in rows
              if (json.loads(revocation) if isinstance(revocation, str) else revocation or {}).get("crl_enabled")]
    if queued:
        op.bulk_insert(jobs, queued)


def downgrade() -> None:
    pass  # the queued refreshes are ordinary work: nothing to undo
