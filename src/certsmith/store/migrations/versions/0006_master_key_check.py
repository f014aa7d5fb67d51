"""The master key's check value

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 10:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import certsmith.store.tables

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database migrated from before this revision gets its check value at the next start, once the
    # master key has opened one of its sealed secrets (services/master_key.py).
    op.create_table('master_key_check',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('check_value', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', certsmith.store.tables.UTCDateTime(), nullable=False),
    sa.Column('rotated_at', certsmith.store.tables.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('master_key_check')
