"""Every region is a service of its own: indexes and account settings by account and region

Rows made before keep the region they were made in (certificates and CAs always stored it); ACM
account settings, which had none, belong to the server's configured region.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 11:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

import certsmith.store.tables

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    region = context.config.attributes.get("certsmith_region", "us-east-1")
    with op.batch_alter_table('certificate_authorities', schema=None) as batch_op:
        batch_op.drop_index('ix_authorities_idempotency')
        batch_op.create_index('ix_authorities_scope_idempotency', ['account_id', 'region', 'idempotency_token'],
                              unique=False)
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.drop_index('ix_certificates_account_created')
        batch_op.drop_index('ix_certificates_account_key_created')
        batch_op.drop_index('ix_certificates_idempotency')
        batch_op.create_index('ix_certificates_scope_created', ['account_id', 'region', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_certificates_scope_key_created',
                              ['account_id', 'region', 'key_algorithm', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_certificates_scope_idempotency', ['account_id', 'region', 'idempotency_token'],
                              unique=False)
    # The primary key gains the region: a new table, the rows copied into the configured region.
    op.create_table('account_configuration_scoped',
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('days_before_expiry', sa.Integer(), nullable=False),
    sa.Column('idempotency_token', sa.String(length=64), nullable=True),
    sa.Column('updated_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('account_id', 'region')
    )
    op.execute(sa.text("INSERT INTO account_configuration_scoped "
                       "(account_id, region, days_before_expiry, idempotency_token, updated_at) "
                       "SELECT account_id, :region, days_before_expiry, idempotency_token, updated_at "
                       "FROM account_configuration").bindparams(region=region))
    op.drop_table('account_configuration')
    op.rename_table('account_configuration_scoped', 'account_configuration')


def downgrade() -> None:
    raise NotImplementedError("regions cannot be merged back into one")
