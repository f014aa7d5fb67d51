"""Public certificates: issuers, DNS-01 challenge values, the validation-label secret

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 12:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import certsmith.store.tables

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('issuers',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('arn', sa.String(length=200), nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('directory_url', sa.String(length=2048), nullable=True),
    sa.Column('contact_email', sa.String(length=254), nullable=True),
    sa.Column('eab_key_id', sa.String(length=256), nullable=True),
    sa.Column('sealed_eab_key', sa.LargeBinary(), nullable=True),
    sa.Column('ca_bundle_pem', sa.Text(), nullable=True),
    sa.Column('authority_arn', sa.String(length=200), nullable=True),
    sa.Column('caa_identities', sa.JSON(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('sealed_account_key', sa.LargeBinary(), nullable=True),
    sa.Column('account_url', sa.String(length=2048), nullable=True),
    sa.Column('created_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('updated_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('arn'),
    sa.UniqueConstraint('account_id', 'region', 'name', name='uq_issuer_name')
    )
    op.create_table('dns_challenges',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.Column('certificate_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('dns_challenges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dns_challenges_certificate_id'), ['certificate_id'], unique=False)
    op.create_table('installation_secrets',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('sealed_value', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('issuer_name', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('validations', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('acme', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.drop_column('acme')
        batch_op.drop_column('validations')
        batch_op.drop_column('issuer_name')
    op.drop_table('installation_secrets')
    with op.batch_alter_table('dns_challenges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dns_challenges_certificate_id'))
    op.drop_table('dns_challenges')
    op.drop_table('issuers')
