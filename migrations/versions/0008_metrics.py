"""Metrics: the totals behind the Prometheus counters and histograms, and the cursor of the
job that counts task events into them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "metric_totals",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("labels", sa.String(length=500), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("name", "labels", name=op.f("pk_metric_totals")),
    )
    op.create_table(
        "metric_cursors",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_metric_cursors")),
    )


def downgrade():
    op.drop_table("metric_cursors")
    op.drop_table("metric_totals")
