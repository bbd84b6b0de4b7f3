"""Metered usage: what each task attempt consumed (tokens, characters of speech, images,
seconds) and the prices an operator bills it at.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "usage_records",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("measure", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_usage_records_quantity")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_usage_records_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_records")),
    )
    op.create_index("ix_usage_records_account_day", "usage_records", ["account_id", "day"])
    op.create_index(op.f("ix_usage_records_task_id"), "usage_records", ["task_id"])
    op.create_table(
        "prices",
        sa.Column("measure", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("price", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("per", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price >= 0", name=op.f("ck_prices_price")),
        sa.CheckConstraint("per > 0", name=op.f("ck_prices_per")),
        sa.PrimaryKeyConstraint("measure", "model", name=op.f("pk_prices")),
    )


def downgrade():
    op.drop_table("prices")
    op.drop_index(op.f("ix_usage_records_task_id"), table_name="usage_records")
    op.drop_index("ix_usage_records_account_day", table_name="usage_records")
    op.drop_table("usage_records")
