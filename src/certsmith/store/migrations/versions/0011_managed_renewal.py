"""Managed renewal: next renewal and notice times, certificate versions, the event outbox, renewal policies,
CA re-issue runs

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 15:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import certsmith.store.tables

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ca_reissue_items',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('reissue_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('source_serial', sa.String(length=128), nullable=False),
    sa.Column('certificate_arn', sa.String(length=200), nullable=True),
    sa.Column('target_serial', sa.String(length=128), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('updated_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('reissue_id', 'kind', 'source_serial', name='uq_reissue_item')
    )
    op.create_table('ca_reissues',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('source_arn', sa.String(length=200), nullable=False),
    sa.Column('target_arn', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('rate', sa.Float(), nullable=False),
    sa.Column('revoke_source', sa.Boolean(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('cursor', sa.String(length=200), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('created_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('updated_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('finished_at', certsmith.store.tables.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ca_reissues', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ca_reissues_source_arn'), ['source_arn'], unique=False)

    op.create_table('certificate_versions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('certificate_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('serial', sa.String(length=128), nullable=False),
    sa.Column('not_before', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('not_after', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('issued_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('issuer', sa.Text(), nullable=True),
    sa.Column('certificate_pem', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('certificate_id', 'version', name='uq_certificate_version')
    )
    op.create_table('event_outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('detail_type', sa.String(length=80), nullable=False),
    sa.Column('resources', sa.JSON(), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('time', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('created_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('delivered_at', certsmith.store.tables.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    with op.batch_alter_table('event_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_event_outbox_pending', ['delivered_at', 'id'], unique=False)

    op.create_table('renewal_policies',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('scope', sa.String(length=400), nullable=False),
    sa.Column('renew_before', sa.String(length=32), nullable=True),
    sa.Column('windows', sa.JSON(), nullable=False),
    sa.Column('reuse_key', sa.Boolean(), nullable=True),
    sa.Column('strict_eligibility', sa.Boolean(), nullable=True),
    sa.Column('created_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('updated_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account_id', 'region', 'scope', name='uq_renewal_policy_scope')
    )
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_renewal_at', certsmith.store.tables.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('renewal_plan', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('next_notice_at', certsmith.store.tables.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('notices', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index('ix_certificates_next_notice', ['next_notice_at'], unique=False)
        batch_op.create_index('ix_certificates_next_renewal', ['next_renewal_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.drop_index('ix_certificates_next_renewal')
        batch_op.drop_index('ix_certificates_next_notice')
        batch_op.drop_column('version')
        batch_op.drop_column('notices')
        batch_op.drop_column('next_notice_at')
        batch_op.drop_column('renewal_plan')
        batch_op.drop_column('next_renewal_at')

    op.drop_table('renewal_policies')
    with op.batch_alter_table('event_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_event_outbox_pending')

    op.drop_table('event_outbox')
    op.drop_table('certificate_versions')
    with op.batch_alter_table('ca_reissues', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ca_reissues_source_arn'))

    op.drop_table('ca_reissues')
    op.drop_table('ca_reissue_items')
