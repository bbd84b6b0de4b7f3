"""Schedules: tasks submitted at the matches of a cron expression in a timezone, or every
interval, fired by the sweeper.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    op.create_table(
        "schedules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("params", JSONType, nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=True),
        sa.Column("cron", sa.String(length=200), nullable=True),
        sa.Column("interval_seconds", sa.Integer(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("misfire", sa.String(length=16), nullable=False),
        sa.Column("next_fire_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_fire_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_task_id", sa.Uuid(), nullable=True),
        sa.Column("last_error", JSONType, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("(cron IS NULL) <> (interval_seconds IS NULL)", name=op.f("ck_schedules_cron_or_interval")),
        sa.CheckConstraint(
            "interval_seconds IS NULL OR interval_seconds > 0", name=op.f("ck_schedules_interval_seconds")
        ),
        sa.CheckConstraint("misfire IN ('catch_up', 'skip')", name=op.f("ck_schedules_misfire")),
        sa.CheckConstraint("priority IS NULL OR priority BETWEEN 0 AND 3", name=op.f("ck_schedules_priority")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_schedules_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_schedules_user_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
    )
    op.create_index(op.f("ix_schedules_account_id"), "schedules", ["account_id"])
    op.create_index(
        "ix_schedules_due",
        "schedules",
        ["next_fire_at"],
        postgresql_where=sa.text("NOT paused"),
        sqlite_where=sa.text("NOT paused"),
    )


def downgrade():
    op.drop_index("ix_schedules_due", table_name="schedules")
    op.drop_index(op.f("ix_schedules_account_id"), table_name="schedules")
    op.drop_table("schedules")
