"""Validation without hand work: DNS providers, HTTP-01 key authorizations, an issuer's direct DNS provider

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 14:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import certsmith.store.tables

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dns_providers',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('arn', sa.String(length=200), nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('sealed_secrets', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('updated_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('arn'),
    sa.UniqueConstraint('account_id', 'region', 'name', name='uq_dns_provider_name')
    )
    op.create_table('http_challenges',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('token', sa.String(length=255), nullable=False),
    sa.Column('key_authorization', sa.String(length=512), nullable=False),
    sa.Column('certificate_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('http_challenges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_http_challenges_certificate_id'), ['certificate_id'], unique=False)
        batch_op.create_index('ix_http_challenges_token', ['label', 'token'], unique=False)
    with op.batch_alter_table('issuers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dns_provider', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('issuers', schema=None) as batch_op:
        batch_op.drop_column('dns_provider')
    with op.batch_alter_table('http_challenges', schema=None) as batch_op:
        batch_op.drop_index('ix_http_challenges_token')
        batch_op.drop_index(batch_op.f('ix_http_challenges_certificate_id'))
    op.drop_table('http_challenges')
    op.drop_table('dns_providers')
