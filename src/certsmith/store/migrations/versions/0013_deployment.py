"""Deployment: bindings of certificates to targets, deployments and their items, agents; each version's chain and key

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 21:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import certsmith.store.tables

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deploy_agents',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('access_key_id', sa.String(length=128), nullable=False),
    sa.Column('created_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('last_seen_at', certsmith.store.tables.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('access_key_id'),
    sa.UniqueConstraint('account_id', 'region', 'name', name='uq_deploy_agent_name')
    )
    op.create_table('deploy_bindings',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('arn', sa.String(length=200), nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('certificate_arn', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('sealed_secrets', sa.LargeBinary(), nullable=True),
    sa.Column('agent', sa.String(length=64), nullable=True),
    sa.Column('verify', sa.JSON(), nullable=True),
    sa.Column('rollback', sa.Boolean(), nullable=False),
    sa.Column('target_state', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('deployed_version', sa.Integer(), nullable=True),
    sa.Column('deployed_serial', sa.String(length=128), nullable=True),
    sa.Column('deployed_at', certsmith.store.tables.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', certsmith.store.tables.UTCDateTime(), nullable=True),
    sa.Column('created_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('updated_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('arn')
    )
    with op.batch_alter_table('deploy_bindings', schema=None) as batch_op:
        batch_op.create_index('ix_deploy_bindings_agent', ['account_id', 'region', 'agent'], unique=False)
        batch_op.create_index(batch_op.f('ix_deploy_bindings_certificate_arn'), ['certificate_arn'], unique=False)

    op.create_table('deployment_items',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('deployment_id', sa.String(length=36), nullable=False),
    sa.Column('binding_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('previous_version', sa.Integer(), nullable=True),
    sa.Column('verified_serial', sa.String(length=128), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('started_at', certsmith.store.tables.UTCDateTime(), nullable=True),
    sa.Column('finished_at', certsmith.store.tables.UTCDateTime(), nullable=True),
    sa.Column('updated_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('deployment_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deployment_items_binding_id'), ['binding_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_deployment_items_deployment_id'), ['deployment_id'], unique=False)

    op.create_table('deployments',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('certificate_arn', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('serial', sa.String(length=128), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('started_at', certsmith.store.tables.UTCDateTime(), nullable=True),
    sa.Column('finished_at', certsmith.store.tables.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deployments_certificate_arn'), ['certificate_arn'], unique=False)

    with op.batch_alter_table('certificate_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain_pem', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('sealed_key', sa.LargeBinary(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('certificate_versions', schema=None) as batch_op:
        batch_op.drop_column('sealed_key')
        batch_op.drop_column('chain_pem')

    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deployments_certificate_arn'))

    op.drop_table('deployments')
    with op.batch_alter_table('deployment_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deployment_items_deployment_id'))
        batch_op.drop_index(batch_op.f('ix_deployment_items_binding_id'))

    op.drop_table('deployment_items')
    with op.batch_alter_table('deploy_bindings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deploy_bindings_certificate_arn'))
        batch_op.drop_index('ix_deploy_bindings_agent')

    op.drop_table('deploy_bindings')
    op.drop_table('deploy_agents')
