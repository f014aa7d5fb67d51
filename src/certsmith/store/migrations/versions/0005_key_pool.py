"""Spare private keys for ACM private certificates (the key pool)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 10:05:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import certsmith.store.tables

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('key_pool',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('key_algorithm', sa.String(length=24), nullable=False),
    sa.Column('sealed_key', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('key_pool', schema=None) as batch_op:
        batch_op.create_index('ix_key_pool_algorithm', ['key_algorithm'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('key_pool', schema=None) as batch_op:
        batch_op.drop_index('ix_key_pool_algorithm')
    op.drop_table('key_pool')
