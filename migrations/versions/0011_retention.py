"""Retention and the dashboard's charts: partial indexes on failed and cancelled tasks by type
and end time, so the sweeper finds the ones past their keep time without reading the rest of
the history (succeeded ones use ix_tasks_succeeded); per-minute metric counts for the charts.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

"""

import sqlalchemy as sa
from alembic import op


revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

STATES = ("failed", "cancelled")


def upgrade():
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        for state in STATES:
            where = sa.text(f"status = '{state}'")
            batch_op.create_index(
                f"ix_tasks_{state}", ["type", "finished_at"], postgresql_where=where, sqlite_where=where
            )
    op.create_table(
        "metric_minutes",
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("labels", sa.String(length=500), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("minute", "name", "labels", name=op.f("pk_metric_minutes")),
    )


def downgrade():
    op.drop_table("metric_minutes")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        for state in STATES:
            batch_op.drop_index(f"ix_tasks_{state}")
