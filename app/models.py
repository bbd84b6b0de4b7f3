"""Typed SQLAlchemy 2 models: accounts, users, API keys, uploads, tasks, their events and
artifacts, the durable queue controls, metered usage with its prices, the totals behind
the Prometheus counters, and webhooks (endpoints, deliveries, attempts). Rows only: queue
logic lives in `app.queue`, use cases in `app.services`.
"""

import datetime
import decimal
import enum
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects import postgresql

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UTCDateTime(sa.types.TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a timezone-aware column")
        value = value.astimezone(datetime.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value.astimezone(datetime.UTC)


def utcnow() -> datetime.datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.datetime.now(datetime.UTC)


class Base(orm.DeclarativeBase):
    registry = orm.registry(
        metadata=sa.MetaData(naming_convention=NAMING),
        type_annotation_map={datetime.datetime: UTCDateTime, dict[str, Any]: JSONType, uuid.UUID: sa.Uuid},
    )


class Status(enum.StrEnum):
    """Task states; the allowed moves between them are in `app.queue.states`."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Priority(enum.IntEnum):
    """Task priorities; a lower number starts first."""

    URGENT = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3


class Account(Base):
    __tablename__ = "accounts"

    id: orm.Mapped[uuid.UUID] = orm.mapped_column(primary_key=True, default=uuid.uuid4)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(200), unique=True)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    # Fair share and quotas (`app.services.accounts.configure`); NULL takes the platform default.
    # A weight of 2 gets twice the starts of a weight of 1 when both have tasks waiting.
    weight: orm.Mapped[float] = orm.mapped_column(sa.Float, default=1.0)
    max_waiting: orm.Mapped[int | None]
    max_running: orm.Mapped[int | None]
    submit_rate: orm.Mapped[str | None] = orm.mapped_column(sa.String(64))
    allow_urgent: orm.Mapped[bool] = orm.mapped_column(default=False)

    __table_args__ = (
        sa.CheckConstraint("weight > 0", name="weight"),
        sa.CheckConstraint("max_waiting IS NULL OR max_waiting >= 0", name="max_waiting"),
        sa.CheckConstraint("max_running IS NULL OR max_running >= 0", name="max_running"),
    )


class User(Base):
    __tablename__ = "users"

    id: orm.Mapped[uuid.UUID] = orm.mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: orm.Mapped[uuid.UUID] = orm.mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(200))
    role: orm.Mapped[str] = orm.mapped_column(sa.String(20), default="member")
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("account_id", "name", name="uq_users_account_name"),
        sa.CheckConstraint("role IN ('operator', 'admin', 'member')", name="role"),
    )


class ApiKey(Base):
    """A user's API key. Only its SHA-256 digest is stored; the key itself is shown once."""

    __tablename__ = "api_keys"

    id: orm.Mapped[uuid.UUID] = orm.mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: orm.Mapped[uuid.UUID] = orm.mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    user_id: orm.Mapped[uuid.UUID] = orm.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(200))
    prefix: orm.Mapped[str] = orm.mapped_column(sa.String(16), unique=True)
    digest: orm.Mapped[str] = orm.mapped_column(sa.String(64), unique=True)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    last_used_at: orm.Mapped[datetime.datetime | None]
    revoked_at: orm.Mapped[datetime.datetime | None]


class Upload(Base):
    """A file a user uploaded to use as a task's source; its bytes live in the storage adapter."""

    __tablename__ = "uploads"

    id: orm.Mapped[uuid.UUID] = orm.mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: orm.Mapped[uuid.UUID] = orm.mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    user_id: orm.Mapped[uuid.UUID | None] = orm.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    filename: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    kind: orm.Mapped[str] = orm.mapped_column(sa.String(16))
    mime: orm.Mapped[str] = orm.mapped_column(sa.String(100))
    size: orm.Mapped[int] = orm.mapped_column(sa.BigInteger)
    sha256: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    storage_key: orm.Mapped[str] = orm.mapped_column(sa.String(500))
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)


class Task(Base):
    __tablename__ = "tasks"

    # Not columns: what a new task's submit found out right after its commit (`lifecycle.submit`):
    # the tasks ahead of it, if it counted them, and whether it notified a waiting worker (None:
    # it did not look for one).
    ahead_at_submit = None
    notified_at_submit = None

    id: orm.Mapped[uuid.UUID] = orm.mapped_column(primary_key=True, default=uuid.uuid4)
    type: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    pool: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    status: orm.Mapped[str] = orm.mapped_column(sa.String(16), default=Status.QUEUED)
    priority: orm.Mapped[int] = orm.mapped_column(sa.SmallInteger, default=Priority.NORMAL)
    # The priority the claim orders by: `priority`, raised one level per aging period waited
    # (`queue.aging`).
    effective_priority: orm.Mapped[int] = orm.mapped_column(sa.SmallInteger, default=Priority.NORMAL)
    # The task's place in its account's fair share of the pool (`queue.fairness`): within a
    # priority the claim takes the lowest, so accounts' tasks interleave by weight.
    fair_seq: orm.Mapped[float] = orm.mapped_column(sa.Double, default=0.0)
    params: orm.Mapped[dict[str, Any]] = orm.mapped_column(default=dict)
    result: orm.Mapped[dict[str, Any] | None]
    error: orm.Mapped[dict[str, Any] | None]
    attempt: orm.Mapped[int] = orm.mapped_column(default=0)
    max_attempts: orm.Mapped[int] = orm.mapped_column(default=1)
    run_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    lease_until: orm.Mapped[datetime.datetime | None]
    heartbeat_at: orm.Mapped[datetime.datetime | None]
    worker: orm.Mapped[str | None] = orm.mapped_column(sa.String(200))
    cancel_requested_at: orm.Mapped[datetime.datetime | None]
    progress: orm.Mapped[float] = orm.mapped_column(default=0.0)
    stage: orm.Mapped[str | None] = orm.mapped_column(sa.String(100))
    message: orm.Mapped[str | None] = orm.mapped_column(sa.String(500))
    idempotency_key: orm.Mapped[str | None] = orm.mapped_column(sa.String(200))
    account_id: orm.Mapped[uuid.UUID] = orm.mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    user_id: orm.Mapped[uuid.UUID | None] = orm.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    parent_id: orm.Mapped[uuid.UUID | None] = orm.mapped_column(sa.ForeignKey("tasks.id", ondelete="SET NULL"))
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    updated_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    started_at: orm.Mapped[datetime.datetime | None]
    finished_at: orm.Mapped[datetime.datetime | None]

    __table_args__ = (
        sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="status"),
        sa.CheckConstraint("priority BETWEEN 0 AND 3", name="priority"),
        # Partial indexes: every new row version of a task enters every index it is in, so rows
        # with no key or no parent stay out of these two.
        sa.Index(
            "uq_tasks_account_idempotency_key",
            "account_id",
            "idempotency_key",
            unique=True,
            postgresql_where=sa.text("idempotency_key IS NOT NULL"),
            sqlite_where=sa.text("idempotency_key IS NOT NULL"),
        ),
        sa.Index(
            "ix_tasks_parent_id",
            "parent_id",
            postgresql_where=sa.text("parent_id IS NOT NULL"),
            sqlite_where=sa.text("parent_id IS NOT NULL"),
        ),
        # The claim reads only this index: its size follows the waiting tasks, not the history.
        sa.Index(
            "ix_tasks_claim",
            "pool",
            "effective_priority",
            "fair_seq",
            "run_at",
            postgresql_where=sa.text("status = 'queued'"),
            sqlite_where=sa.text("status = 'queued'"),
        ),
        # A submit reads its account's last place in the pool; quotas count waiting tasks.
        sa.Index(
            "ix_tasks_account_queued",
            "account_id",
            "pool",
            "fair_seq",
            postgresql_where=sa.text("status = 'queued'"),
            sqlite_where=sa.text("status = 'queued'"),
        ),
        # Aging reads the waiting tasks that can still rise, oldest due first.
        sa.Index(
            "ix_tasks_aging",
            "run_at",
            postgresql_where=sa.text("status = 'queued' AND effective_priority > 0"),
            sqlite_where=sa.text("status = 'queued' AND effective_priority > 0"),
        ),
        # Account limits count an account's running attempts.
        sa.Index(
            "ix_tasks_running_account",
            "account_id",
            postgresql_where=sa.text("status = 'running'"),
            sqlite_where=sa.text("status = 'running'"),
        ),
        # ETAs read the latest successes of a type; each task enters this index once.
        sa.Index(
            "ix_tasks_succeeded",
            "type",
            "finished_at",
            postgresql_where=sa.text("status = 'succeeded'"),
            sqlite_where=sa.text("status = 'succeeded'"),
        ),
        # Retention reads each type's failed and cancelled tasks oldest first (`queue.retention`);
        # succeeded ones through ix_tasks_succeeded.
        sa.Index(
            "ix_tasks_failed",
            "type",
            "finished_at",
            postgresql_where=sa.text("status = 'failed'"),
            sqlite_where=sa.text("status = 'failed'"),
        ),
        sa.Index(
            "ix_tasks_cancelled",
            "type",
            "finished_at",
            postgresql_where=sa.text("status = 'cancelled'"),
            sqlite_where=sa.text("status = 'cancelled'"),
        ),
        # Concurrency limits count running tasks per type; the sweeper scans expired leases.
        sa.Index(
            "ix_tasks_running",
            "type",
            "lease_until",
            postgresql_where=sa.text("status = 'running'"),
            sqlite_where=sa.text("status = 'running'"),
        ),
        sa.Index("ix_tasks_account_created", "account_id", "created_at"),
    )


class TaskEvent(Base):
    __tablename__ = "task_events"

    # The sequence id is the Server-Sent Events id: strictly increasing, so resume is exact.
    id: orm.Mapped[int] = orm.mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: orm.Mapped[uuid.UUID] = orm.mapped_column(sa.ForeignKey("tasks.id", ondelete="CASCADE"))
    attempt: orm.Mapped[int] = orm.mapped_column(default=0)
    kind: orm.Mapped[str] = orm.mapped_column(sa.String(16))
    data: orm.Mapped[dict[str, Any]] = orm.mapped_column(default=dict)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("kind IN ('status', 'progress', 'artifact', 'log')", name="kind"),
        sa.Index("ix_task_events_task_id_id", "task_id", "id"),
    )


class Artifact(Base):
    __tablename__ = "artifacts"

    id: orm.Mapped[uuid.UUID] = orm.mapped_column(primary_key=True, default=uuid.uuid4)
    task_id: orm.Mapped[uuid.UUID] = orm.mapped_column(sa.ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    attempt: orm.Mapped[int]
    kind: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    storage_key: orm.Mapped[str] = orm.mapped_column(sa.String(500))
    mime: orm.Mapped[str | None] = orm.mapped_column(sa.String(100))
    size: orm.Mapped[int] = orm.mapped_column(sa.BigInteger)
    meta: orm.Mapped[dict[str, Any]] = orm.mapped_column("metadata", default=dict)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)


class PoolClock(Base):
    """The fair-share clock of a pool: the place of the latest task the sweeper saw start, so
    an account that waited gets no more than an even share, however long it was idle."""

    __tablename__ = "pool_clocks"

    pool: orm.Mapped[str] = orm.mapped_column(sa.String(32), primary_key=True)
    fair_seq: orm.Mapped[float] = orm.mapped_column(sa.Double, default=0.0)
    updated_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)


class QueueControl(Base):
    """A durable switch: pause the whole queue, a pool or a type, or cap a type's concurrency."""

    __tablename__ = "queue_controls"

    id: orm.Mapped[int] = orm.mapped_column(BigId, primary_key=True, autoincrement=True)
    scope: orm.Mapped[str] = orm.mapped_column(sa.String(8))
    name: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    paused: orm.Mapped[bool] = orm.mapped_column(default=False)
    concurrency_limit: orm.Mapped[int | None]
    updated_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("scope", "name", name="uq_queue_controls_scope_name"),
        sa.CheckConstraint("scope IN ('queue', 'pool', 'type')", name="scope"),
        sa.CheckConstraint("concurrency_limit IS NULL OR concurrency_limit >= 0", name="concurrency_limit"),
    )


class UsageRecord(Base):
    """What one attempt of a task consumed of one measure (tokens, characters of speech, images,
    seconds), written when the processor meters it. Kept when the task is purged, for billing."""

    __tablename__ = "usage_records"

    id: orm.Mapped[int] = orm.mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: orm.Mapped[uuid.UUID] = orm.mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    task_id: orm.Mapped[uuid.UUID] = orm.mapped_column(index=True)
    attempt: orm.Mapped[int]
    type: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    measure: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    # The provider's model or engine ("gpt-4o-mini", "elevenlabs:eleven_multilingual_v2"); "" if none.
    model: orm.Mapped[str] = orm.mapped_column(sa.String(200), default="")
    quantity: orm.Mapped[float] = orm.mapped_column(sa.Double)
    day: orm.Mapped[datetime.date] = orm.mapped_column(sa.Date)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("quantity >= 0", name="quantity"),
        sa.Index("ix_usage_records_account_day", "account_id", "day"),
    )


class Price(Base):
    """The price of `per` units of a measure, for one model or ("") for any other."""

    __tablename__ = "prices"

    measure: orm.Mapped[str] = orm.mapped_column(sa.String(32), primary_key=True)
    model: orm.Mapped[str] = orm.mapped_column(sa.String(200), primary_key=True, default="")
    price: orm.Mapped[decimal.Decimal] = orm.mapped_column(sa.Numeric(20, 10))
    per: orm.Mapped[int] = orm.mapped_column(sa.BigInteger, default=1)
    updated_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("price >= 0", name="price"),
        sa.CheckConstraint("per > 0", name="per"),
    )


class MetricTotal(Base):
    """One series of a Prometheus counter or histogram, kept in the database so every API
    process answers a scrape the same and a restart loses nothing. `labels` is the series'
    labels in exposition form, sorted (`outcome="succeeded",type="voice"`)."""

    __tablename__ = "metric_totals"

    name: orm.Mapped[str] = orm.mapped_column(sa.String(100), primary_key=True)
    labels: orm.Mapped[str] = orm.mapped_column(sa.String(500), primary_key=True, default="")
    value: orm.Mapped[float] = orm.mapped_column(sa.Double, default=0.0)


class MetricCursor(Base):
    """How far a counting job has read (the id of the last task event it counted)."""

    __tablename__ = "metric_cursors"

    name: orm.Mapped[str] = orm.mapped_column(sa.String(32), primary_key=True)
    position: orm.Mapped[int] = orm.mapped_column(sa.BigInteger, default=0)
    updated_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)


class MetricMinute(Base):
    """What the counting job saw in one UTC minute of one series (tasks finished by pool and
    outcome, first-attempt queue waits by pool and bucket): the dashboard's charts of the last
    hour and day, read without touching the tasks' history. Kept `counting.MINUTES_KEPT`."""

    __tablename__ = "metric_minutes"

    minute: orm.Mapped[datetime.datetime] = orm.mapped_column(primary_key=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(100), primary_key=True)
    labels: orm.Mapped[str] = orm.mapped_column(sa.String(500), primary_key=True, default="")
    value: orm.Mapped[float] = orm.mapped_column(sa.Double, default=0.0)


class WebhookEndpoint(Base):
    """An account's webhook: where to POST which task events, signed with `secret`
    (Standard Webhooks: "whsec_" + base64 of the key), shown once when it is made."""

    __tablename__ = "webhook_endpoints"

    id: orm.Mapped[uuid.UUID] = orm.mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: orm.Mapped[uuid.UUID] = orm.mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    url: orm.Mapped[str] = orm.mapped_column(sa.String(2000))
    events: orm.Mapped[list[str]] = orm.mapped_column(JSONType, default=list)
    secret: orm.Mapped[str] = orm.mapped_column(sa.String(100))
    description: orm.Mapped[str] = orm.mapped_column(sa.String(500), default="")
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    disabled_at: orm.Mapped[datetime.datetime | None]


class WebhookDelivery(Base):
    """One task event to send to one endpoint (its id is the `webhook-id` header, the same on
    every retry and replay); made by the fan-out (`app.queue.webhooks`), sent by `delivery`."""

    __tablename__ = "webhook_deliveries"

    id: orm.Mapped[uuid.UUID] = orm.mapped_column(primary_key=True, default=uuid.uuid4)
    endpoint_id: orm.Mapped[uuid.UUID] = orm.mapped_column(sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    # No foreign key: a delivery outlives a purge of its task.
    task_id: orm.Mapped[uuid.UUID] = orm.mapped_column(index=True)
    event_id: orm.Mapped[int] = orm.mapped_column(sa.BigInteger)
    event_type: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    payload: orm.Mapped[dict[str, Any]] = orm.mapped_column(default=dict)
    status: orm.Mapped[str] = orm.mapped_column(sa.String(16), default="pending")
    attempts: orm.Mapped[int] = orm.mapped_column(default=0)
    next_attempt_at: orm.Mapped[datetime.datetime | None]
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    finished_at: orm.Mapped[datetime.datetime | None]

    __table_args__ = (
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        # One delivery per event and endpoint, whatever happens to the fan-out.
        sa.UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
        # The delivery loop reads only the pending rows, soonest due first.
        sa.Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
    )


class WebhookAttempt(Base):
    """One try at sending a delivery: when, how long, the receiver's status code or the error."""

    __tablename__ = "webhook_attempts"

    id: orm.Mapped[int] = orm.mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: orm.Mapped[uuid.UUID] = orm.mapped_column(sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    number: orm.Mapped[int]
    at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    status_code: orm.Mapped[int | None]
    error: orm.Mapped[str | None] = orm.mapped_column(sa.String(500))
    duration_ms: orm.Mapped[int] = orm.mapped_column(default=0)

    __table_args__ = (sa.Index("ix_webhook_attempts_delivery_number", "delivery_id", "number"),)


class Schedule(Base):
    """A task submitted again and again: at the matches of a cron expression in a timezone, or
    every `interval_seconds` (exactly one of the two). The sweeper fires it when
    `next_fire_at` comes (`app.queue.schedules`); `misfire` says what a fire time missed by
    more than the grace period gives: one task ("catch_up") or none ("skip")."""

    __tablename__ = "schedules"

    id: orm.Mapped[uuid.UUID] = orm.mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: orm.Mapped[uuid.UUID] = orm.mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    user_id: orm.Mapped[uuid.UUID | None] = orm.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    name: orm.Mapped[str] = orm.mapped_column(sa.String(200))
    type: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    params: orm.Mapped[dict[str, Any]] = orm.mapped_column(default=dict)
    priority: orm.Mapped[int | None] = orm.mapped_column(sa.SmallInteger)
    cron: orm.Mapped[str | None] = orm.mapped_column(sa.String(200))
    interval_seconds: orm.Mapped[int | None]
    timezone: orm.Mapped[str] = orm.mapped_column(sa.String(64), default="UTC")
    paused: orm.Mapped[bool] = orm.mapped_column(default=False)
    misfire: orm.Mapped[str] = orm.mapped_column(sa.String(16), default="catch_up")
    next_fire_at: orm.Mapped[datetime.datetime]
    last_fire_at: orm.Mapped[datetime.datetime | None]
    last_task_id: orm.Mapped[uuid.UUID | None]
    last_error: orm.Mapped[dict[str, Any] | None]
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)
    updated_at: orm.Mapped[datetime.datetime] = orm.mapped_column(default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("(cron IS NULL) <> (interval_seconds IS NULL)", name="cron_or_interval"),
        sa.CheckConstraint("interval_seconds IS NULL OR interval_seconds > 0", name="interval_seconds"),
        sa.CheckConstraint("misfire IN ('catch_up', 'skip')", name="misfire"),
        sa.CheckConstraint("priority IS NULL OR priority BETWEEN 0 AND 3", name="priority"),
        # The sweeper reads the due schedules in fire order; paused ones stay out.
        sa.Index(
            "ix_schedules_due",
            "next_fire_at",
            postgresql_where=sa.text("NOT paused"),
            sqlite_where=sa.text("NOT paused"),
        ),
    )
