"""cluster_fence: the routing leader's fencing token and the last journal entry whose records are committed

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table('cluster_fence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.BigInteger(), nullable=False),
    sa.Column('leader', sa.String(length=64), nullable=False, server_default=''),
    sa.Column('last_id', sa.String(length=32), nullable=False, server_default=''),
    sa.PrimaryKeyConstraint('id')
    )
    op.bulk_insert(table, [{'id': 1, 'epoch': 0, 'leader': '', 'last_id': ''}])


def downgrade() -> None:
    op.drop_table('cluster_fence')
