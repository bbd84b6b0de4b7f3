"""Partial indexes for idempotency keys and parents; drop the unused status/finished index.

Every new row version of a task enters every index it is in: rows with no idempotency key or
no parent (most of them) now stay out of those two indexes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

KEYED = sa.text("idempotency_key IS NOT NULL")
CHILD = sa.text("parent_id IS NOT NULL")


def upgrade():
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_status_finished")
        batch_op.drop_index("ix_tasks_parent_id")
        batch_op.drop_constraint("uq_tasks_account_idempotency_key", type_="unique")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("uq_tasks_account_idempotency_key", ["account_id", "idempotency_key"], unique=True,
                              postgresql_where=KEYED, sqlite_where=KEYED)
        batch_op.create_index("ix_tasks_parent_id", ["parent_id"], postgresql_where=CHILD, sqlite_where=CHILD)


def downgrade():
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_parent_id")
        batch_op.drop_index("uq_tasks_account_idempotency_key")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_tasks_account_idempotency_key", ["account_id", "idempotency_key"])
        batch_op.create_index("ix_tasks_parent_id", ["parent_id"])
        batch_op.create_index("ix_tasks_status_finished", ["status", "finished_at"])
