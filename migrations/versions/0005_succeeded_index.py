"""A partial index on successful tasks by type and finish time, for ETAs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

"""

import sqlalchemy as sa
from alembic import op


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tasks_succeeded",
            ["type", "finished_at"],
            unique=False,
            postgresql_where=sa.text("status = 'succeeded'"),
            sqlite_where=sa.text("status = 'succeeded'"),
        )


def downgrade():
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_succeeded", postgresql_where=sa.text("status = 'succeeded'"))
