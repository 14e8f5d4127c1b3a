"""seals and checkpoints: rows bound to the hash chain, signed chain heads

Adds ``events.seals`` (the seals of the rows an event wrote), a ``salt`` to
``matters`` and ``followups`` (so their seals reveal nothing of what the log
must not hold) and the append-only ``checkpoints`` table. Rows that exist
already are sealed as they stand now, by ``rows_sealed`` events appended to
the chain (what was changed before this upgrade cannot be told any more).

The downgrade drops all of it; events written under this revision carry
seals in their hash, so the previous revision's ``verify`` would take them for
altered: downgrade only to undo an upgrade, not after serving on it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

BATCH = 500  # rows sealed per rows_sealed event


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seals', sa.JSON(none_as_null=True), nullable=True))
    for name in ('matters', 'followups'):
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.add_column(sa.Column('salt', sa.String(length=32), nullable=True))
    op.create_table('checkpoints',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('prev', sa.String(length=64), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('public_key', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    _seal_existing_rows(op.get_bind())


def _seal_existing_rows(conn: sa.Connection) -> None:
    from server.records.chain import ChainHead
    from server.records.seals import SEALED, seals_of_rows

    # the tables as they are at this revision (reflected: a later revision may add columns to the metadata)
    meta = sa.MetaData()
    tables = {name: sa.Table(name, meta, autoload_with=conn) for name in (*SEALED, 'events', 'chain_head')}
    events, chain_head = tables['events'], tables['chain_head']
    for name in ('matters', 'followups'):
        table = tables[name]
        ids = [r[0] for r in conn.execute(sa.select(table.c.id).where(table.c.salt.is_(None)))]
        if ids:
            conn.execute(table.update().where(table.c.id == sa.bindparam('row_id')).values(salt=sa.bindparam('s')),
                         [{'row_id': i, 's': secrets.token_hex(16)} for i in ids])
    last_hash, count = conn.execute(sa.select(chain_head.c.last_hash, chain_head.c.count)
                                    .where(chain_head.c.id == 1)).one()
    head = ChainHead(last_hash, count)
    now = time.time()
    rows: list[dict[str, Any]] = []
    for name, (_, key) in SEALED.items():
        table = tables[name]
        found = [dict(r._mapping) for r in conn.execute(table.select().order_by(table.c[key]))]
        for start in range(0, len(found), BATCH):
            part = found[start:start + BATCH]
            rows.append(head.event("rows_sealed", actor="system", at=now, seals=seals_of_rows(table, part),
                                   data={"table": name, "rows": len(part), "reason": "upgrade to revision 0005"}))
    if rows:
        conn.execute(events.insert(), rows)
        conn.execute(chain_head.update().where(chain_head.c.id == 1).values(last_hash=head.last_hash,
                                                                           count=head.count))


def downgrade() -> None:
    op.drop_table('checkpoints')
    for name in ('followups', 'matters'):
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.drop_column('salt')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('seals')
