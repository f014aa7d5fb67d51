"""Events and monitoring: event rules and targets, deliveries, monitored endpoints; when a certificate was validated

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 18:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import certsmith.store.tables

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('validated_at', certsmith.store.tables.UTCDateTime(), nullable=True))

    op.create_table('endpoints',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('host', sa.String(length=253), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('server_name', sa.String(length=253), nullable=False),
    sa.Column('certificate_arn', sa.String(length=200), nullable=True),
    sa.Column('trust', sa.Text(), nullable=True),
    sa.Column('interval_seconds', sa.Integer(), nullable=False),
    sa.Column('created_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('next_probe_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('lease_until', certsmith.store.tables.UTCDateTime(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('probed_at', certsmith.store.tables.UTCDateTime(), nullable=True),
    sa.Column('handshake_ms', sa.Float(), nullable=True),
    sa.Column('served_serial', sa.String(length=128), nullable=True),
    sa.Column('served_not_after', certsmith.store.tables.UTCDateTime(), nullable=True),
    sa.Column('chain', sa.JSON(), nullable=True),
    sa.Column('hostname_match', sa.Boolean(), nullable=True),
    sa.Column('trusted', sa.Boolean(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account_id', 'region', 'host', 'port', 'server_name', name='uq_endpoint')
    )
    with op.batch_alter_table('endpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_endpoints_next_probe_at'), ['next_probe_at'], unique=False)

    op.create_table('event_deliveries',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('outbox_id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('delivered_at', certsmith.store.tables.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('outbox_id', 'target_id', name='uq_event_delivery'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('event_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_event_deliveries_due', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_event_deliveries_queue', ['target_id', 'state', 'id'], unique=False)

    op.create_table('event_rules',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('event_pattern', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('updated_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account_id', 'region', 'name', name='uq_event_rule_name')
    )
    op.create_table('event_targets',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('rule_id', sa.String(length=36), nullable=False),
    sa.Column('target_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('secret', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('updated_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', certsmith.store.tables.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('rule_id', 'target_id', name='uq_event_target_id')
    )
    with op.batch_alter_table('event_targets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_targets_rule_id'), ['rule_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('event_targets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_targets_rule_id'))

    op.drop_table('event_targets')
    op.drop_table('event_rules')
    with op.batch_alter_table('event_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_event_deliveries_queue')
        batch_op.drop_index('ix_event_deliveries_due')

    op.drop_table('event_deliveries')
    with op.batch_alter_table('endpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_endpoints_next_probe_at'))

    op.drop_table('endpoints')
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.drop_column('validated_at')
