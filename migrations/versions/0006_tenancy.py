"""Tenancy: account weights and quotas, the operator role, fair places and aging for tasks.

- accounts: `weight`, `max_waiting`, `max_running`, `submit_rate`, `allow_urgent`;
- users: the platform-wide `operator` role. Admins of the local account (the key
  `manage.py run` makes) become operators: they used to stop the whole queue, which is now an
  operator's right;
- tasks: `effective_priority` (starts as `priority`) and `fair_seq` (the fair-share place;
  existing waiting tasks keep their order by taking their age in seconds); the claim index
  orders by them; new partial indexes for an account's waiting and running tasks and aging;
- pool_clocks: each pool's fair-share clock.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

QUEUED = sa.text("status = 'queued'")
RUNNING = sa.text("status = 'running'")
RISING = sa.text("status = 'queued' AND effective_priority > 0")


def upgrade():
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("weight", sa.Float(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("max_waiting", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("max_running", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("submit_rate", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("allow_urgent", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_check_constraint(op.f("ck_accounts_weight"), "weight > 0")
        batch_op.create_check_constraint(op.f("ck_accounts_max_waiting"), "max_waiting IS NULL OR max_waiting >= 0")
        batch_op.create_check_constraint(op.f("ck_accounts_max_running"), "max_running IS NULL OR max_running >= 0")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_users_role"), type_="check")
        batch_op.create_check_constraint(op.f("ck_users_role"), "role IN ('operator', 'admin', 'member')")
    op.execute(
        "UPDATE users SET role = 'operator' WHERE role = 'admin'"
        " AND account_id IN (SELECT id FROM accounts WHERE name = 'local')"
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("effective_priority", sa.SmallInteger(), nullable=False, server_default="2"))
        batch_op.add_column(sa.Column("fair_seq", sa.Double(), nullable=False, server_default="0"))
        batch_op.drop_index("ix_tasks_claim")
    op.execute("UPDATE tasks SET effective_priority = priority")
    _order_waiting_tasks()
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tasks_claim",
            ["pool", "effective_priority", "fair_seq", "run_at"],
            postgresql_where=QUEUED,
            sqlite_where=QUEUED,
        )
        batch_op.create_index(
            "ix_tasks_account_queued",
            ["account_id", "pool", "fair_seq"],
            postgresql_where=QUEUED,
            sqlite_where=QUEUED,
        )
        batch_op.create_index("ix_tasks_aging", ["run_at"], postgresql_where=RISING, sqlite_where=RISING)
        batch_op.create_index("ix_tasks_running_account", ["account_id"], postgresql_where=RUNNING, sqlite_where=RUNNING)
    op.create_table(
        "pool_clocks",
        sa.Column("pool", sa.String(length=32), nullable=False),
        sa.Column("fair_seq", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pool", name=op.f("pk_pool_clocks")),
    )


def _order_waiting_tasks():
    # Tasks waiting at upgrade keep their order: their place is their age in seconds, far
    # below any place a new submit takes from a fresh pool clock.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE tasks SET fair_seq = extract(epoch FROM created_at) - 2e9 WHERE status = 'queued'")
    else:
        op.execute("UPDATE tasks SET fair_seq = unixepoch(created_at) - 2e9 WHERE status = 'queued'")


def downgrade():
    op.drop_table("pool_clocks")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_running_account", postgresql_where=RUNNING)
        batch_op.drop_index("ix_tasks_aging", postgresql_where=RISING)
        batch_op.drop_index("ix_tasks_account_queued", postgresql_where=QUEUED)
        batch_op.drop_index("ix_tasks_claim", postgresql_where=QUEUED)
        batch_op.drop_column("fair_seq")
        batch_op.drop_column("effective_priority")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tasks_claim", ["pool", "priority", "run_at", "created_at"], postgresql_where=QUEUED, sqlite_where=QUEUED
        )
    op.execute("UPDATE users SET role = 'admin' WHERE role = 'operator'")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_users_role"), type_="check")
        batch_op.create_check_constraint(op.f("ck_users_role"), "role IN ('admin', 'member')")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_accounts_max_running"), type_="check")
        batch_op.drop_constraint(op.f("ck_accounts_max_waiting"), type_="check")
        batch_op.drop_constraint(op.f("ck_accounts_weight"), type_="check")
        for column in ("allow_urgent", "submit_rate", "max_running", "max_waiting", "weight"):
            batch_op.drop_column(column)
