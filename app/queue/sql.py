"""Every statement the queue runs, named, each with a line on what it guarantees.

Statements are SQLAlchemy Core so one text serves PostgreSQL and SQLite: on PostgreSQL the
claim locks with `FOR UPDATE SKIP LOCKED`; on SQLite the same single UPDATE is atomic under
the database's one writer lock. Writes by a running attempt are fenced: they match
`attempt = :attempt AND status = 'running'`, so a stale attempt changes nothing.
"""

import dataclasses
import datetime
import functools
import uuid
import zlib

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext import compiler
from sqlalchemy.sql import functions

from app import models
from app.models import Status
from app.queue import states

tasks = models.Task.__table__
events = models.TaskEvent.__table__
controls = models.QueueControl.__table__
accounts = models.Account.__table__
clocks = models.PoolClock.__table__


class greatest(functions.ReturnTypeFromArgs):
    """GREATEST(a, b, ...): SQLite spells it max(a, b, ...)."""

    inherit_cache = True


@compiler.compiles(greatest, "sqlite")
def _greatest_sqlite(element, compiler_, **kw):
    return f"max({compiler_.process(element.clauses, **kw)})"


def _paused(t: sa.Table) -> sa.Exists:
    # A task is held if the whole queue, its pool or its type is paused.
    return sa.exists().where(
        controls.c.paused,
        sa.or_(
            controls.c.scope == "queue",
            sa.and_(controls.c.scope == "pool", controls.c.name == t.c.pool),
            sa.and_(controls.c.scope == "type", controls.c.name == t.c.type),
        ),
    )


def _at_limit(t: sa.Table) -> sa.Exists:
    # A type at its concurrency limit starts nothing more until one of its tasks ends.
    running = tasks.alias("r")
    count = (
        sa.select(sa.func.count())
        .select_from(running)
        .where(running.c.type == t.c.type, running.c.status == Status.RUNNING)
        .correlate(t)  # count this row's type, two levels up, not every row of the table
        .scalar_subquery()
    )
    return sa.exists().where(
        controls.c.scope == "type",
        controls.c.name == t.c.type,
        controls.c.concurrency_limit.is_not(None),
        controls.c.concurrency_limit <= count,
    )


def _account_at_limit(t: sa.Table, default: int | None) -> sa.Exists:
    # An account at its running limit (its own `max_running`, else `default`) starts nothing
    # more in any pool until one of its attempts ends.
    running = tasks.alias("mine_running")
    count = (
        sa.select(sa.func.count())
        .select_from(running)
        .where(running.c.account_id == t.c.account_id, running.c.status == Status.RUNNING)
        .correlate(t)
        .scalar_subquery()
    )
    cap = accounts.c.max_running
    if default is not None:
        cap = sa.func.coalesce(cap, sa.literal(default, sa.Integer))
    return sa.exists().where(accounts.c.id == t.c.account_id, cap.is_not(None), cap <= count)


def eligible(t: sa.Table, pool: str | None, now, account_limits: "AccountLimits | None" = None) -> list:
    """Conditions for a waiting task that may start now (optionally in one pool). With
    `account_limits`, an account at its running limit is held too."""
    where = [t.c.status == Status.QUEUED, t.c.run_at <= now, ~_paused(t), ~_at_limit(t)]
    if account_limits is not None:
        where.append(~_account_at_limit(t, account_limits.default))
    if pool is not None:
        where.append(t.c.pool == pool)
    return where


@dataclasses.dataclass(frozen=True)
class AccountLimits:
    """Some account has a running limit; `default` is the platform's (None: no default).
    Hashable, so claims built with it are cached like the others."""

    default: int | None = None


# What a claim returns: all a runner needs, and no more (each column costs a conversion).
CLAIMED = (
    tasks.c.id,
    tasks.c.type,
    tasks.c.pool,
    tasks.c.params,
    tasks.c.attempt,
    tasks.c.max_attempts,
    tasks.c.account_id,
)


@functools.cache
def claim(pool: str, account_limits: AccountLimits | None = None) -> sa.Update:
    """claim: take the best eligible task of a pool (effective priority, then fair place, then
    run_at), at most one claimer per task; SKIP LOCKED lets concurrent claims pass each other.
    With `account_limits`, skip the tasks of accounts at their running limit (exact only when
    claims are serialized across pools: `serialize_account_claims`).

    Built once per pool (it is on every worker's hot path); bind `claim_now`, `claim_lease_until`
    and `claim_worker` when executing it.
    """
    now, lease_until, worker = (sa.bindparam(name) for name in ("claim_now", "claim_lease_until", "claim_worker"))
    t = tasks.alias("t")
    best = (
        sa.select(t.c.id)
        .where(*eligible(t, pool, now, account_limits))
        .order_by(t.c.effective_priority, t.c.fair_seq, t.c.run_at)
        .limit(1)
        .with_for_update(skip_locked=True, of=t)
        .scalar_subquery()
    )
    return (
        sa.update(tasks)
        .where(tasks.c.id == best, tasks.c.status == Status.QUEUED)
        .values(
            status=Status.RUNNING,
            attempt=tasks.c.attempt + 1,
            lease_until=lease_until,
            heartbeat_at=now,
            started_at=now,
            updated_at=now,
            worker=worker,
            progress=0.0,
            stage=None,
            message=None,
        )
        .returning(*CLAIMED)
    )


@functools.cache
def claim_with_event(pool: str, rename: bool = False, account_limits: AccountLimits | None = None) -> sa.Select:
    """claim_with_event: `claim` and its `running` event in one statement (PostgreSQL), so a
    claim is one round trip; bind `event_data` and `event_at` too.

    It also returns `more`: whether another task of the pool was queued and due when the claim
    began (eligible or not), so a draining runner stops without one more, empty, claim. The
    statement's snapshot still shows the claimed row as queued, hence "more than one".

    With `rename`, a claim that takes a task also sets the session's `application_name` to
    `claim_session_name`: a waiting worker's mark (see `listen`) is cleared by the claim that
    ends its wait, with no round trip of its own."""
    t = tasks.alias("waiting")
    due = (
        sa.select(sa.literal(1))
        .where(t.c.status == Status.QUEUED, t.c.pool == pool, t.c.run_at <= sa.bindparam("claim_now"))
        .limit(2)
        .subquery("due")
    )
    more = (sa.select(sa.func.count()).select_from(due).scalar_subquery() > 1).label("more")
    statement = with_status_event(claim(pool, account_limits)).add_columns(more)
    if rename:
        name = sa.bindparam("claim_session_name", type_=sa.Text)
        statement = statement.add_columns(sa.func.set_config("application_name", name, False).label("renamed"))
    return statement


@functools.cache
def finish() -> sa.Update:
    """finish: the live attempt succeeds with its result; no row if it is stale. Bind
    `finish_id`, `finish_attempt`, `finish_result` and `finish_at`."""
    at = sa.bindparam("finish_at", type_=models.UTCDateTime())
    return (
        sa.update(tasks)
        .where(
            tasks.c.id == sa.bindparam("finish_id", type_=sa.Uuid()),
            tasks.c.attempt == sa.bindparam("finish_attempt"),
            tasks.c.status == Status.RUNNING,
        )
        .values(
            status=Status.SUCCEEDED,
            result=sa.bindparam("finish_result", type_=models.JSONType),
            error=None,
            progress=100.0,
            finished_at=at,
            updated_at=at,
            lease_until=None,
        )
        .returning(tasks.c.id, tasks.c.attempt)
    )


@functools.cache
def finish_with_event() -> sa.Select:
    """finish_with_event: `finish` and its `succeeded` event in one statement (PostgreSQL);
    bind `event_data` and `event_at` too."""
    return with_status_event(finish())


# The columns a submit binds; a new task also starts queued, at attempt 0 and progress 0, last
# updated when created. The others start NULL.
SUBMITTED = (
    "id",
    "type",
    "pool",
    "priority",
    "params",
    "max_attempts",
    "run_at",
    "account_id",
    "user_id",
    "parent_id",
    "idempotency_key",
    "created_at",
)


@functools.cache
def insert_task(fair: bool = True) -> sa.Insert:
    """insert_task: add a new task at its fair place (`fair_place`; without `fair`, at place 0:
    first come, first served); the idempotency index refuses a repeated key per account. Bind
    SUBMITTED by name."""
    row = {name: sa.bindparam(name, type_=tasks.c[name].type) for name in SUBMITTED}
    row.update(status=Status.QUEUED, attempt=0, progress=0.0, updated_at=row["created_at"])
    place = fair_place(row["account_id"], row["pool"]) if fair else sa.literal(0.0, sa.Double)
    row.update(effective_priority=row["priority"], fair_seq=place)
    return sa.insert(tasks).values(row).returning(tasks.c.id, tasks.c.attempt)


def fair_place(account: sa.ColumnElement, pool: sa.ColumnElement) -> sa.ColumnElement:
    """fair_place: a new task's place in the fair share of its pool, one step (1 / the account's
    weight) after the later of its account's last waiting task and the pool's virtual time (the
    latest place running, or the pool's clock when none runs). So an account's tasks go one
    per step, interleaved with the other accounts' by weight, and an account that was idle
    starts level with the others, not ahead by all the time it was away (start-time fair
    queueing; Hatchet's round-robin by key works the same way)."""
    return _fair_start(account, pool) + _fair_step(account)


def _fair_start(account: sa.ColumnElement, pool: sa.ColumnElement) -> sa.ColumnElement:
    # The later of the account's last waiting place and the pool's virtual time.
    mine, started = tasks.alias("mine"), tasks.alias("started")
    own = sa.select(sa.func.max(mine.c.fair_seq)).where(
        mine.c.account_id == account, mine.c.pool == pool, mine.c.status == Status.QUEUED
    )
    running = sa.select(sa.func.max(started.c.fair_seq)).where(
        started.c.pool == pool, started.c.status == Status.RUNNING
    )
    clock = sa.select(clocks.c.fair_seq).where(clocks.c.pool == pool)
    zero = sa.literal(0.0, sa.Double)
    return greatest(*(sa.func.coalesce(q.scalar_subquery(), zero) for q in (own, running, clock)))


def _fair_step(account: sa.ColumnElement) -> sa.ColumnElement:
    # One task's step in the account's share: 1 / its weight.
    step = sa.select(1.0 / accounts.c.weight).where(accounts.c.id == account)
    return sa.func.coalesce(step.scalar_subquery(), sa.literal(1.0, sa.Double))


def fair_start(account_id: uuid.UUID, pool: str) -> sa.Select:
    """fair_start: where a batch of an account's tasks starts in the fair share of a pool
    (`start`) and the step between them (`step`): its tasks take start + step, start + 2 step,
    and so on, as that many single submits would (`fair_place`)."""
    account, pool = sa.literal(account_id, tasks.c.account_id.type), sa.literal(pool, tasks.c.pool.type)
    return sa.select(_fair_start(account, pool).label("start"), _fair_step(account).label("step"))


# The columns a batch submit writes, for each task, in one multi-row INSERT.
BATCH_COLUMNS = (
    *SUBMITTED,
    "status",
    "attempt",
    "progress",
    "updated_at",
    "effective_priority",
    "fair_seq",
)


def insert_tasks() -> sa.Insert:
    """insert_tasks: add many new tasks in one statement (executemany: one multi-row INSERT);
    bind BATCH_COLUMNS of each. The idempotency index refuses a repeated key per account."""
    return sa.insert(tasks)


def insert_events() -> sa.Insert:
    """insert_events: append many events in one statement (executemany); bind `task_id`,
    `attempt`, `kind`, `data` and `created_at` of each."""
    return sa.insert(events)


def advance_clocks(dialect: str, now: datetime.datetime) -> sa.Insert:
    """advance_clocks: move each pool's clock up to the latest place running in it (never
    back), so places keep rising when the pool falls idle."""
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    running = (
        sa.select(tasks.c.pool, sa.func.max(tasks.c.fair_seq), sa.literal(now, models.UTCDateTime()))
        .where(tasks.c.status == Status.RUNNING)
        .group_by(tasks.c.pool)
    )
    statement = insert(clocks).from_select(["pool", "fair_seq", "updated_at"], running)
    return statement.on_conflict_do_update(
        index_elements=[clocks.c.pool],
        set_={"fair_seq": greatest(clocks.c.fair_seq, statement.excluded.fair_seq), "updated_at": now},
    )


# A waiting task's place counts at most this many tasks ahead of it (a range scan of the claim
# index), so POSITION_CAP + 1 means "at least that far back".
POSITION_CAP = 100


@functools.cache
def insert_with_event(fair: bool = True) -> sa.Select:
    """insert_with_event: `insert_task` and its `queued` event, made at `created_at`, in one
    statement (PostgreSQL); bind `event_data` too."""
    return with_status_event(insert_task(fair), at=sa.bindparam("created_at", type_=tasks.c.created_at.type))


@functools.cache
def after_submit(count_ahead: bool, notify: bool) -> sa.Select:
    """after_submit: what a submit does right after its commit, in a transaction of its own
    (PostgreSQL). With `count_ahead` it returns `ahead`: how many queued tasks of the pool come
    before the new one (`ahead`); bind `id` and `pool`.
    With `notify` it runs `notify_waiter` (bind `mark`) and returns `notified`, 1 if it found a
    waiting session, which gets its notice when this commits."""
    columns = []
    if count_ahead:
        new = sa.bindparam("id", type_=tasks.c.id.type)
        before = ahead(new, sa.bindparam("pool", type_=tasks.c.pool.type)).subquery("before")
        columns.append(_count(before).label("ahead"))
    if notify:
        columns.append(_count(notify_waiter().subquery("woken")).label("notified"))
    return sa.select(*columns)


def ahead(task_id: sa.ColumnElement, pool: sa.ColumnElement) -> sa.Select:
    """ahead: the queued tasks of a pool that come before a waiting task in claim order, at
    most POSITION_CAP of them (a range scan of the claim index)."""
    t, own = tasks.alias("ahead_of"), tasks.alias("own")
    order = ("effective_priority", "fair_seq", "run_at")
    theirs = sa.tuple_(*(t.c[name] for name in order))
    mine = sa.tuple_(*(sa.select(own.c[name]).where(own.c.id == task_id).scalar_subquery() for name in order))
    return (
        sa.select(sa.literal(1))
        .where(t.c.status == Status.QUEUED, t.c.pool == pool, t.c.id != task_id, theirs < mine)
        .limit(POSITION_CAP)
    )


def _count(rows: sa.Subquery) -> sa.ScalarSelect:
    return sa.select(sa.func.count()).select_from(rows).scalar_subquery()


# Waiting workers (`queue.listen`): a waiting session is marked with `application_name` =
# WAITING + pool and listens on WAKE + its backend pid.
WAITING = "conveyor-listen:"
WAKE = "conveyor_wake_"
_activity = sa.table(
    "pg_stat_activity",
    sa.column("pid", sa.Integer),
    sa.column("datname", sa.Text),
    sa.column("application_name", sa.Text),
)


@functools.cache
def notify_waiter() -> sa.Select:
    """notify_waiter: send a notice to one session of this database marked as waiting for a
    pool (PostgreSQL; bind `mark`, WAITING + the pool); one row if there was one. Notices are
    sent when the transaction commits, so the waiter's next claim sees what it committed."""
    channel = sa.literal(WAKE) + sa.cast(_activity.c.pid, sa.Text)
    return (
        sa.select(sa.func.pg_notify(channel, "").label("notified"))
        .where(
            _activity.c.datname == sa.func.current_database(),
            _activity.c.application_name == sa.bindparam("mark", type_=sa.Text),
        )
        .limit(1)
    )


def waiting_by_pool() -> sa.Select:
    """waiting_by_pool: `(pool, sessions)` for the sessions of this database marked as waiting
    (PostgreSQL): the idle workers a submit can wake with a notice."""
    pool = sa.func.substr(_activity.c.application_name, len(WAITING) + 1).label("pool")
    return (
        sa.select(pool, sa.func.count().label("sessions"))
        .where(
            _activity.c.datname == sa.func.current_database(),
            _activity.c.application_name.startswith(WAITING, autoescape=True),
        )
        .group_by(pool)
        .order_by(pool)
    )


def with_status_event(change: sa.Update | sa.Insert, at: sa.BindParameter | None = None) -> sa.Select:
    """with_status_event: apply a change that returns `id, attempt`, and append a status event
    for the row it changed, in one statement (PostgreSQL); no row changed, no event. Bind
    `event_data` (the event's JSON) and `event_at` (or the parameter `at`)."""
    changed = change.cte("changed")
    event = (
        sa.insert(events)
        .from_select(
            ["task_id", "attempt", "kind", "data", "created_at"],
            sa.select(
                changed.c.id,
                changed.c.attempt,
                sa.literal("status"),
                sa.bindparam("event_data", type_=models.JSONType),
                sa.bindparam("event_at", type_=models.UTCDateTime()) if at is None else at,
            ),
        )
        .cte("event")
    )
    return sa.select(changed).add_cte(event)


def serialize_claims(pool: str) -> sa.TextClause:
    """serialize_claims: claims in a pool take turns until their transaction ends (PostgreSQL),
    so two claims cannot both see a type under its concurrency limit and both start one."""
    return sa.text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=zlib.crc32(f"conveyor.claim.{pool}".encode()))


def serialize_account_claims() -> sa.TextClause:
    """serialize_account_claims: while any account has a running limit, claims in every pool
    take turns (PostgreSQL), so two pools cannot both start the attempt that fills it."""
    return sa.text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=zlib.crc32(b"conveyor.claim.accounts"))


def account_limits_set(default: int | None) -> sa.Select:
    """account_limits_set: whether any account has a running limit (or a default applies)."""
    if default is not None:
        return sa.select(sa.true())
    return sa.select(sa.exists().where(accounts.c.max_running.is_not(None)))


def heartbeat(task_id: uuid.UUID, attempt: int, now: datetime.datetime, lease_until: datetime.datetime) -> sa.Update:
    """heartbeat: extend this attempt's lease; returns the cancel request, or no row once the
    attempt is no longer the live one."""
    return (
        sa.update(tasks)
        .where(tasks.c.id == task_id, tasks.c.attempt == attempt, tasks.c.status == Status.RUNNING)
        .values(heartbeat_at=now, lease_until=lease_until)
        .returning(tasks.c.cancel_requested_at)
    )


def progress(
    task_id: uuid.UUID, attempt: int, now: datetime.datetime, percent: float, stage: str | None, message: str | None
) -> sa.Update:
    """progress: record the live attempt's progress; no row if the attempt is stale."""
    return (
        sa.update(tasks)
        .where(tasks.c.id == task_id, tasks.c.attempt == attempt, tasks.c.status == Status.RUNNING)
        .values(progress=percent, stage=stage, message=message, heartbeat_at=now, updated_at=now)
        .returning(tasks.c.cancel_requested_at)
    )


def end_attempt(task_id: uuid.UUID, attempt: int, **values) -> sa.Update:
    """end_attempt: move the live attempt's task out of `running`; no row if it is stale."""
    return (
        sa.update(tasks)
        .where(tasks.c.id == task_id, tasks.c.attempt == attempt, tasks.c.status == Status.RUNNING)
        .values(lease_until=None, **values)
        .returning(tasks.c.id, tasks.c.attempt)
    )


def requeue_attempt(task_id: uuid.UUID, attempt: int, **values) -> sa.Update:
    """requeue_attempt: put the live attempt's task back in line for a retry, unless a cancel
    was asked (a cancel wins over any retry); no row otherwise."""
    return (
        sa.update(tasks)
        .where(
            tasks.c.id == task_id,
            tasks.c.attempt == attempt,
            tasks.c.status == Status.RUNNING,
            tasks.c.cancel_requested_at.is_(None),
        )
        .values(lease_until=None, status=Status.QUEUED, effective_priority=tasks.c.priority, **values)
        .returning(tasks.c.id)
    )


def cancel_waiting(task_id: uuid.UUID, now: datetime.datetime) -> sa.Update:
    """cancel_waiting: a queued task is cancelled at once and can no longer be claimed."""
    return (
        sa.update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status == Status.QUEUED)
        .values(status=Status.CANCELLED, cancel_requested_at=now, finished_at=now, updated_at=now)
        .returning(tasks.c.attempt)
    )


def request_cancel(task_id: uuid.UUID, now: datetime.datetime) -> sa.Update:
    """request_cancel: mark a running task; its attempt sees it at the next heartbeat."""
    return (
        sa.update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status == Status.RUNNING, tasks.c.cancel_requested_at.is_(None))
        .values(cancel_requested_at=now, updated_at=now)
        .returning(tasks.c.attempt)
    )


def requeue(task_id: uuid.UUID, now: datetime.datetime, extra_attempts: int) -> sa.Update:
    """requeue: put a failed or cancelled task back in line, at a new fair place and its own
    priority, granting it more attempts."""
    return (
        sa.update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status.in_(states.REQUESTS["retry"]))
        .values(
            status=Status.QUEUED,
            effective_priority=tasks.c.priority,
            fair_seq=fair_place(tasks.c.account_id, tasks.c.pool),
            run_at=now,
            updated_at=now,
            finished_at=None,
            cancel_requested_at=None,
            max_attempts=tasks.c.attempt + extra_attempts,
        )
        .returning(tasks)
    )


def expired_leases(now: datetime.datetime, limit: int = 500) -> sa.Select:
    """expired_leases: running tasks whose worker stopped renewing; locked so one sweeper
    rescues each."""
    return (
        sa.select(tasks)
        .where(tasks.c.status == Status.RUNNING, tasks.c.lease_until < now)
        .order_by(tasks.c.lease_until)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def age_waiting(levels: int, due_before: datetime.datetime) -> sa.Update:
    """age_waiting: waiting tasks due since before `due_before` rise to at least `levels` above
    their own priority (never above urgent, never down)."""
    raised = sa.case((tasks.c.priority - levels < 0, 0), else_=tasks.c.priority - levels)
    return (
        sa.update(tasks)
        .where(
            tasks.c.status == Status.QUEUED,
            tasks.c.effective_priority > 0,
            tasks.c.run_at <= due_before,
            tasks.c.effective_priority > raised,
        )
        .values(effective_priority=raised)
    )


def eligible_counts(now: datetime.datetime, account_limits: AccountLimits | None = None) -> sa.Select:
    """eligible_counts: per pool, how many waiting tasks could start now."""
    t = tasks.alias("t")
    return sa.select(t.c.pool, sa.func.count()).where(*eligible(t, None, now, account_limits)).group_by(t.c.pool)


def waiting_quota(account_id: uuid.UUID, default: int) -> sa.Select:
    """waiting_quota: the account's waiting-task quota (its own, else `default`) and its waiting
    tasks, counted to at most quota + 1 on ix_tasks_account_queued, so the cost is bounded by
    the quota, not by the backlog."""
    cap = sa.select(sa.func.coalesce(accounts.c.max_waiting, default)).where(accounts.c.id == account_id)
    cap = cap.scalar_subquery()
    queued = (
        sa.select(sa.literal(1))
        .where(tasks.c.account_id == account_id, tasks.c.status == Status.QUEUED)
        .limit(sa.func.coalesce(cap, default) + 1)
        .subquery()
    )
    waiting = sa.select(sa.func.count()).select_from(queued).scalar_subquery()
    return sa.select(sa.func.coalesce(cap, default).label("cap"), waiting.label("waiting"))


def add_event(task_id: uuid.UUID, attempt: int, kind: str, data: dict, now: datetime.datetime) -> sa.Insert:
    """add_event: append one event; its id orders the task's history."""
    return sa.insert(events).values(task_id=task_id, attempt=attempt, kind=kind, data=data, created_at=now)


def events_after(task_id: uuid.UUID, after: int, limit: int) -> sa.Select:
    """events_after: a task's events in order, after a sequence id (SSE resume)."""
    return sa.select(events).where(events.c.task_id == task_id, events.c.id > after).order_by(events.c.id).limit(limit)


# Metrics: the totals behind the Prometheus counters, and the cursor of the counting job.
metric_totals = models.MetricTotal.__table__
metric_cursors = models.MetricCursor.__table__


def _upsert(dialect: str, table: sa.Table):
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def add_to_totals(dialect: str) -> sa.Insert:
    """add_to_totals: add each row's `value` to its series `(name, labels)`, made at 0 if new;
    atomic per row on both backends, so processes adding at once lose nothing."""
    insert = _upsert(dialect, metric_totals)
    return insert.on_conflict_do_update(
        index_elements=[metric_totals.c.name, metric_totals.c.labels],
        set_={"value": metric_totals.c.value + insert.excluded.value},
    )


metric_minutes = models.MetricMinute.__table__


def add_to_minutes(dialect: str) -> sa.Insert:
    """add_to_minutes: add each row's `value` to its series in its minute, made at 0 if new."""
    insert = _upsert(dialect, metric_minutes)
    keys = [metric_minutes.c.minute, metric_minutes.c.name, metric_minutes.c.labels]
    return insert.on_conflict_do_update(
        index_elements=keys, set_={"value": metric_minutes.c.value + insert.excluded.value}
    )


def forget_minutes(before: datetime.datetime) -> sa.Delete:
    """forget_minutes: drop the per-minute counts older than `before` (the primary key leads
    with the minute, so this reads only what it deletes)."""
    return sa.delete(metric_minutes).where(metric_minutes.c.minute < before)


def minutes_since(since: datetime.datetime, names: list[str]) -> sa.Select:
    """minutes_since: the per-minute counts of the series `names` from `since` on."""
    m = metric_minutes
    return sa.select(m.c.minute, m.c.name, m.c.labels, m.c.value).where(m.c.minute >= since, m.c.name.in_(names))


def add_cursor(dialect: str) -> sa.Insert:
    """add_cursor: make the cursor `:cursor_name` at position 0 unless it exists."""
    values = {"name": sa.bindparam("cursor_name"), "position": 0, "updated_at": sa.bindparam("cursor_at")}
    insert = _upsert(dialect, metric_cursors).values(**values)
    return insert.on_conflict_do_nothing(index_elements=[metric_cursors.c.name])


@functools.cache
def cursor_position() -> sa.Select:
    """cursor_position: the cursor `:cursor_name`'s position, its row locked until the transaction
    ends (PostgreSQL; SQLite's one writer serializes the counting anyway)."""
    query = sa.select(metric_cursors.c.position).where(metric_cursors.c.name == sa.bindparam("cursor_name"))
    return query.with_for_update()


@functools.cache
def move_cursor() -> sa.Update:
    """move_cursor: set the cursor `:cursor_name` to `:cursor_position`."""
    return (
        sa.update(metric_cursors)
        .where(metric_cursors.c.name == sa.bindparam("cursor_name"))
        .values(position=sa.bindparam("cursor_position"), updated_at=sa.bindparam("cursor_at"))
    )


@functools.cache
def status_events_after() -> sa.Select:
    """status_events_after: up to `:limit` status events after the id `:after`, oldest first,
    each with its task's type, pool, submit time, run_at, latest start and attempt (events of
    deleted tasks are gone with them). Reads the events' primary key, not the tasks' history."""
    e, t = events, tasks
    return (
        sa.select(
            e.c.id,
            e.c.attempt,
            e.c.data,
            e.c.created_at,
            t.c.type,
            t.c.pool,
            t.c.created_at.label("task_created_at"),
            t.c.run_at,
            t.c.started_at,
            t.c.attempt.label("task_attempt"),
        )
        .join(t, t.c.id == e.c.task_id)
        .where(e.c.id > sa.bindparam("after"), e.c.kind == "status")
        .order_by(e.c.id)
        .limit(sa.bindparam("limit"))
    )


# --- retention (`queue.retention`) ---------------------------------------------------------


def ended_before(status: str, type_: str, before: datetime.datetime) -> sa.ColumnElement:
    """ended_before: tasks of `type_` that ended `status` before `before`, with no child task
    left (a family goes children first). Read on ix_tasks_<status>, the state's partial index
    by type and end time, so the cost follows the tasks past their time, not the history."""
    child = tasks.alias("child")
    return sa.and_(
        tasks.c.status == status,
        tasks.c.type == type_,
        tasks.c.finished_at < before,
        ~sa.exists().where(child.c.parent_id == tasks.c.id),
    )


def expired_tasks(ended: sa.ColumnElement, limit: int) -> sa.Select:
    """expired_tasks: the ids of up to `limit` tasks matching `ended` (`ended_before`), oldest
    end first: retention's next batch."""
    return sa.select(tasks.c.id).where(ended).order_by(tasks.c.finished_at).limit(limit)


# Webhooks: the fan-out of task events to each account's endpoints (`queue.webhooks`) and the
# delivery loop (`queue.delivery`).
webhook_endpoints = models.WebhookEndpoint.__table__
webhook_deliveries = models.WebhookDelivery.__table__
webhook_attempts = models.WebhookAttempt.__table__


@functools.cache
def webhook_events_after() -> sa.Select:
    """webhook_events_after: up to `:limit` status and progress events after the id `:after`,
    oldest first, each with its task's type, account, latest attempt, status and result (events
    of deleted tasks are gone with them). Reads the events' primary key."""
    e, t, a = events, tasks, accounts
    return (
        sa.select(
            e.c.id,
            e.c.task_id,
            e.c.attempt,
            e.c.kind,
            e.c.data,
            e.c.created_at,
            t.c.type,
            t.c.account_id,
            t.c.status.label("task_status"),
            t.c.attempt.label("task_attempt"),
            t.c.result,
            a.c.name.label("account"),
        )
        .join(t, t.c.id == e.c.task_id)
        .join(a, a.c.id == t.c.account_id)
        .where(e.c.id > sa.bindparam("after"), e.c.kind.in_(("status", "progress")))
        .order_by(e.c.id)
        .limit(sa.bindparam("limit"))
    )


@functools.cache
def endpoints_of_accounts() -> sa.Select:
    """endpoints_of_accounts: the enabled endpoints of the accounts `:accounts` (a list)."""
    w = webhook_endpoints
    return (
        sa.select(w.c.id, w.c.account_id, w.c.events)
        .where(w.c.account_id.in_(sa.bindparam("accounts", expanding=True)), w.c.disabled_at.is_(None))
        .order_by(w.c.created_at, w.c.id)
    )


@functools.cache
def last_progress_deliveries() -> sa.Select:
    """last_progress_deliveries: per endpoint and task of `:tasks`, when its latest
    task.progress delivery was made (the throttle's memory)."""
    d = webhook_deliveries
    return (
        sa.select(d.c.endpoint_id, d.c.task_id, sa.func.max(d.c.created_at).label("at"))
        .where(d.c.task_id.in_(sa.bindparam("tasks", expanding=True)), d.c.event_type == "task.progress")
        .group_by(d.c.endpoint_id, d.c.task_id)
    )


def add_deliveries(dialect: str) -> sa.Insert:
    """add_deliveries: insert deliveries; one per event and endpoint (a repeat adds nothing)."""
    d = webhook_deliveries
    return _upsert(dialect, d).on_conflict_do_nothing(index_elements=[d.c.endpoint_id, d.c.event_id])


@functools.cache
def claim_deliveries() -> sa.Update:
    """claim_deliveries: take up to `:limit` pending deliveries due at `:now`, soonest first, and
    push their due time to `:lease_until`, so no other sender takes them while this one sends
    (SKIP LOCKED on PostgreSQL; SQLite's one writer makes the statement atomic). A sender that
    dies leaves them due again at `:lease_until`."""
    d = webhook_deliveries
    due = (
        sa.select(d.c.id)
        .where(d.c.status == "pending", d.c.next_attempt_at <= sa.bindparam("now", type_=models.UTCDateTime()))
        .order_by(d.c.next_attempt_at)
        .limit(sa.bindparam("limit"))
        .with_for_update(skip_locked=True)
    )
    return (
        sa.update(d)
        .where(d.c.id.in_(due.scalar_subquery()), d.c.status == "pending")
        .values(next_attempt_at=sa.bindparam("lease_until", type_=models.UTCDateTime()))
        .returning(d.c.id, d.c.endpoint_id, d.c.attempts, d.c.payload)
    )


@functools.cache
def end_delivery_attempt() -> sa.Update:
    """end_delivery_attempt: count a sent attempt of delivery `:delivery_id` that was claimed
    at `:attempts` attempts, setting `status`, `next_attempt_at` and `finished_at`; no row if
    it was deleted or replayed meanwhile. Bind `new_status`, `next_at` and `ended_at` too."""
    d = webhook_deliveries
    at = models.UTCDateTime()
    return (
        sa.update(d)
        .where(
            d.c.id == sa.bindparam("delivery_id", type_=sa.Uuid()),
            d.c.attempts == sa.bindparam("claimed_attempts"),
            d.c.status == "pending",
        )
        .values(
            attempts=d.c.attempts + 1,
            status=sa.bindparam("new_status"),
            next_attempt_at=sa.bindparam("next_at", type_=at),
            finished_at=sa.bindparam("ended_at", type_=at),
        )
        .returning(d.c.id)
    )


def add_webhook_attempt() -> sa.Insert:
    """add_webhook_attempt: keep one sent attempt (time, status code or error, duration)."""
    return sa.insert(webhook_attempts)


def replay_delivery(delivery_id: uuid.UUID, now: datetime.datetime) -> sa.Update:
    """replay_delivery: make a delivery pending and due now, whatever its state (a replay
    sends it again with the same `webhook-id`)."""
    d = webhook_deliveries
    return (
        sa.update(d)
        .where(d.c.id == delivery_id)
        .values(status="pending", next_attempt_at=now, finished_at=None)
        .returning(d.c.id)
    )


# Schedules: the due ones the sweeper fires (`app.queue.schedules`), each fire time once.
schedules = models.Schedule.__table__


@functools.cache
def due_schedules() -> sa.Select:
    """due_schedules: the ids of up to `:limit` unpaused schedules due at `:now`, earliest
    first; reads the partial index `ix_schedules_due`, which holds no paused schedule."""
    s = schedules
    return (
        sa.select(s.c.id)
        .where(sa.not_(s.c.paused), s.c.next_fire_at <= sa.bindparam("now"))
        .order_by(s.c.next_fire_at)
        .limit(sa.bindparam("limit"))
    )


@functools.cache
def take_due_schedule() -> sa.Select:
    """take_due_schedule: the schedule `:schedule_id` if it is still unpaused and due at `:now`,
    its row locked until the transaction ends; nothing if another firer holds it (SKIP LOCKED,
    PostgreSQL) or moved it on already. SQLite's one writer serializes firers instead."""
    s = schedules
    query = sa.select(s).where(
        s.c.id == sa.bindparam("schedule_id"), sa.not_(s.c.paused), s.c.next_fire_at <= sa.bindparam("now")
    )
    return query.with_for_update(skip_locked=True)


def advance_schedule(schedule_id: uuid.UUID, seen: datetime.datetime, **values) -> sa.Update:
    """advance_schedule: move a schedule on from the fire time `seen` (set `next_fire_at` and
    and `updated_at`); matches nothing if another firer moved it first, so each fire
    time is consumed once even where rows are not locked."""
    s = schedules
    return sa.update(s).where(s.c.id == schedule_id, s.c.next_fire_at == seen).values(**values)


def record_fire(schedule_id: uuid.UUID, **values) -> sa.Update:
    """record_fire: store what a schedule's fire gave (`last_fire_at`, `last_task_id`,
    `last_error`), in the transaction that moved it on (`advance_schedule`)."""
    return sa.update(schedules).where(schedules.c.id == schedule_id).values(**values)
