"""Task lifecycle: submit, claim, heartbeat, progress, finish, fail (retry or give up), cancel
and retry. Each move writes its event in the same transaction. Callers commit.
"""

import contextlib
import datetime
import logging
import uuid

import sqlalchemy as sa
from sqlalchemy import orm

from app import models
from app.models import Priority, Status
from app.queue import errors, listen, prepared, quota, sql
from processors import errors as processor_errors
from processors import registry as registry_module

log = logging.getLogger("conveyor.lifecycle")


def now() -> datetime.datetime:
    """Return the current UTC time; one clock for the whole queue."""
    return models.utcnow()


def _is_postgres(session: orm.Session | sa.Connection) -> bool:
    dialect = session.dialect if isinstance(session, sa.Connection) else session.get_bind().dialect
    return dialect.name == "postgresql"


def add_event(
    session: orm.Session, task_id: uuid.UUID, attempt: int, kind: str, data: dict, at: datetime.datetime | None = None
) -> None:
    """Append an event to a task's history."""
    session.execute(sql.add_event(task_id, attempt, kind, data, at or now()))


def parse_priority(value: str | int | None, default: str) -> int:
    """Return the stored number for a priority name (or number); ValueError if unknown."""
    if value is None:
        value = default
    if isinstance(value, int) and not isinstance(value, bool):
        return int(Priority(value))
    try:
        return int(Priority[str(value).upper()])
    except KeyError:
        raise ValueError(f"unknown priority {value!r}; use urgent, high, normal or low") from None


def submit(
    session: orm.Session,
    registry: registry_module.Registry,
    *,
    type: str,
    params: dict | None,
    account_id: uuid.UUID,
    user_id: uuid.UUID | None = None,
    priority: str | int | None = None,
    run_at: datetime.datetime | None = None,
    parent_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    count_ahead: bool = False,
    notify: bool = False,
    fair: bool = True,
    max_waiting: int | None = None,
) -> tuple[models.Task, bool]:
    """Validate and add a task; return it and whether it is new.

    A repeated idempotency key (per account) returns the task it first created, unchanged.
    A submit on an autocommit connection (PostgreSQL, no key) commits at once, and can do more
    right after, in the same round trip: with `count_ahead`, count the tasks ahead of the new
    one (`task.ahead_at_submit`); with `notify`, if the task is due now, notify one worker
    waiting for its pool (`queue.listen`; `task.notified_at_submit`: whether one was waiting,
    None if it did not look). `fair` (`CONVEYOR_FAIR_SHARE`): the task takes its account's fair
    place in the pool (`sql.fair_place`); without it, first come, first served.
    `max_waiting`: the platform's default waiting quota; with it, an account at its quota
    (`queue.quota`) gets QuotaExceeded, though a repeated idempotency key still gets its task.
    Raises UnknownTaskType, processors.errors.InvalidParams, ValueError (priority) or
    QuotaExceeded.
    """
    at = now()
    # Checked before a repeat is looked up: a repeat with bad input is refused like any submit.
    task = new_task(
        registry,
        type=type,
        params=params,
        account_id=account_id,
        user_id=user_id,
        priority=priority,
        run_at=run_at,
        parent_id=parent_id,
        idempotency_key=idempotency_key,
        at=at,
    )
    if idempotency_key:
        existing = _by_key(session, account_id, idempotency_key)
        if existing is not None:
            return existing, False
    if max_waiting is not None:
        quota.check_waiting(session, account_id, max_waiting)
    event = queued_event(task)
    values = {name: getattr(task, name) for name in sql.SUBMITTED}
    if not idempotency_key and _is_postgres(session):  # the row and its event in one statement
        values["event_data"] = event
        notify = notify and task.run_at <= at
        insert = ("conveyor_submit" + "_fifo" * (not fair), sql.insert_with_event(fair))
        if (count_ahead or notify) and _is_autocommit(session):
            _submit_committed(session, task, values, insert, count_ahead, notify)
        else:
            prepared.execute(session, *insert, values)
        return task, True
    try:
        # A savepoint only when a key could collide: the conflict must not undo the caller's work.
        with session.begin_nested() if idempotency_key else contextlib.nullcontext():
            session.execute(sql.insert_task(fair), values)
    except sa.exc.IntegrityError:
        # Another request with the same key committed first: return its task.
        existing = _by_key(session, account_id, idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return existing, False
    add_event(session, task.id, 0, "status", event, at)
    return task, True


def new_task(
    registry: registry_module.Registry,
    *,
    type: str,
    params: dict | None,
    account_id: uuid.UUID,
    user_id: uuid.UUID | None,
    priority: str | int | None,
    run_at: datetime.datetime | None,
    parent_id: uuid.UUID | None,
    idempotency_key: str | None,
    at: datetime.datetime,
) -> models.Task:
    """Validate a submit and return its task, queued at attempt 0 and not yet stored (no fair
    place yet). Raises UnknownTaskType, processors.errors.InvalidParams or ValueError (priority)."""
    if type not in registry:
        raise errors.UnknownTaskType(f"unknown task type {type!r}")
    cls = registry.processor_class(type)
    policy = registry.policy(type)
    stored = cls.dump_params(cls.load_params(params))
    rank = parse_priority(priority, policy.priority)
    return models.Task(
        id=uuid.uuid4(),
        type=type,
        pool=policy.pool,
        status=Status.QUEUED,
        priority=rank,
        effective_priority=rank,
        params=stored,
        max_attempts=policy.max_attempts,
        run_at=run_at or at,
        account_id=account_id,
        user_id=user_id,
        parent_id=parent_id,
        idempotency_key=idempotency_key,
        created_at=at,
        updated_at=at,
        attempt=0,
        progress=0.0,
    )


def queued_event(task: models.Task) -> dict:
    """The data of a new task's first event."""
    return {"status": Status.QUEUED, "priority": Priority(task.priority).name.lower()}


def _submit_committed(
    connection: sa.Connection, task: models.Task, values: dict, insert: tuple, count_ahead: bool, notify: bool
) -> None:
    """Insert and commit the task, then count the tasks ahead and notify a waiting worker, in
    one round trip (`prepared.execute_committed`); set `ahead_at_submit` and
    `notified_at_submit`. If the insert committed but what follows failed, the task stands:
    both stay unset and the caller wakes the pool its own way."""
    name = "conveyor_after_submit" + "_counting" * count_ahead + "_notifying" * notify
    after = (name, sql.after_submit(count_ahead, notify))
    values["mark"] = listen.mark(task.pool)
    try:
        row = prepared.execute_committed(connection, insert, after, values)
    except sa.exc.DBAPIError:
        if connection.execute(sa.select(sa.literal(1)).where(sql.tasks.c.id == task.id)).first() is None:
            raise  # the insert failed: nothing was written
        log.warning("task %s was committed, but counting or notifying after it failed", task.id, exc_info=True)
        return
    task.ahead_at_submit = row.ahead if count_ahead else None
    task.notified_at_submit = bool(row.notified) if notify else None


def _is_autocommit(session) -> bool:
    return isinstance(session, sa.Connection) and bool(session.connection.dbapi_connection.autocommit)


def _by_key(session: orm.Session, account_id: uuid.UUID, key: str) -> models.Task | None:
    query = sa.select(models.Task).where(models.Task.account_id == account_id, models.Task.idempotency_key == key)
    return session.scalars(query).first()


def claim(
    session: orm.Session,
    pool: str,
    lease_seconds: float,
    worker: str,
    serialize: bool = False,
    session_name: str | None = None,
    mark: str | None = None,
    account_limits: sql.AccountLimits | None = None,
) -> sa.Row | None:
    """Claim the best eligible task of `pool` for a new attempt; None if there is none.

    `serialize` makes concurrent claims in the pool take turns: needed for exact concurrency
    limits, skipped otherwise so claims pass each other (SQLite's one writer already serializes).
    `session_name` (PostgreSQL): a claim that takes a task sets the session's application name
    to it, clearing a waiting worker's mark (`listen`); the row's `renamed` says it did.
    `mark` (PostgreSQL): set the session's application name to it first, in the same round trip.
    `account_limits` (`control.account_limits`): hold the accounts at their running limit; on
    PostgreSQL the claim then takes turns with every pool's, so the limit is exact.
    """
    postgres = _is_postgres(session)
    if account_limits is not None and postgres:
        session.execute(sql.serialize_account_claims())
    if serialize and postgres:
        session.execute(sql.serialize_claims(pool))
    at = now()
    bound = {
        "claim_now": at,
        "claim_lease_until": at + datetime.timedelta(seconds=lease_seconds),
        "claim_worker": worker,
    }
    if postgres:  # one statement, one round trip: the hot path of every worker
        event = {"event_data": {"status": Status.RUNNING, "worker": worker}, "event_at": at}
        rename = session_name is not None
        statement = sql.claim_with_event(pool, rename, account_limits)
        name = "conveyor_claim_" + "renaming_" * rename + "accounts_" * (account_limits is not None) + pool
        if rename:
            event["claim_session_name"] = session_name
        if mark is None:
            return prepared.execute(session, name, statement, {**bound, **event}).first()
        before = "SELECT set_config('application_name', :claim_mark, false)"
        return prepared.execute(session, name, statement, {**bound, **event, "claim_mark": mark}, before).first()
    row = session.execute(sql.claim(pool, account_limits), bound).first()
    if row is not None:
        add_event(session, row.id, row.attempt, "status", {"status": Status.RUNNING, "worker": worker}, at)
    return row


def heartbeat(session: orm.Session, task_id: uuid.UUID, attempt: int, lease_seconds: float) -> bool:
    """Renew the attempt's lease; return whether a cancel was asked. Raises StaleAttempt."""
    at = now()
    row = session.execute(sql.heartbeat(task_id, attempt, at, at + datetime.timedelta(seconds=lease_seconds))).first()
    if row is None:
        raise errors.StaleAttempt()
    return row.cancel_requested_at is not None


def record_progress(
    session: orm.Session, task_id: uuid.UUID, attempt: int, percent: float, stage: str | None, message: str | None
) -> bool:
    """Store the attempt's progress and its event; return whether a cancel was asked."""
    at = now()
    row = session.execute(sql.progress(task_id, attempt, at, percent, stage, message)).first()
    if row is None:
        raise errors.StaleAttempt()
    add_event(
        session, task_id, attempt, "progress", {"progress": round(percent, 2), "stage": stage, "message": message}, at
    )
    return row.cancel_requested_at is not None


def finish(session: orm.Session, task_id: uuid.UUID, attempt: int, result: dict) -> None:
    """Mark the live attempt succeeded with `result`. Raises StaleAttempt."""
    at = now()
    bound = {"finish_id": task_id, "finish_attempt": attempt, "finish_result": result, "finish_at": at}
    event = {"status": Status.SUCCEEDED}
    if _is_postgres(session):  # the change and its event in one statement
        params = {**bound, "event_data": event, "event_at": at}
        changed = prepared.execute(session, "conveyor_finish", sql.finish_with_event(), params).first()
    else:
        changed = session.execute(sql.finish(), bound).first()
        if changed is not None:
            add_event(session, task_id, attempt, "status", event, at)
    if changed is None:
        raise errors.StaleAttempt()


def fail(
    session: orm.Session,
    task_id: uuid.UUID,
    attempt: int,
    max_attempts: int,
    error: dict,
    retryable: bool,
    delay: float,
) -> datetime.datetime | str | None:
    """End a failed attempt: requeue after `delay` seconds if retryable and attempts remain,
    else fail the task; a task whose cancel was asked ends cancelled instead of retrying.
    Return the retry time, "cancelled", or None when the task failed. Raises StaleAttempt.
    """
    at = now()
    error = {**error, "attempt": attempt}
    if retryable and attempt < max_attempts:
        run_at = at + datetime.timedelta(seconds=delay)
        requeued = session.execute(
            sql.requeue_attempt(task_id, attempt, run_at=run_at, error=error, updated_at=at, worker=None)
        ).first()
        if requeued is None:
            end_cancelled(session, task_id, attempt, f"cancel asked; not retrying after: {error['message']}")
            return "cancelled"
        add_event(
            session,
            task_id,
            attempt,
            "status",
            {"status": Status.QUEUED, "error": error, "retry_in": round(delay, 3), "run_at": run_at.isoformat()},
            at,
        )
        return run_at
    _end(session, task_id, attempt, status=Status.FAILED, error=error, finished_at=at, updated_at=at)
    add_event(session, task_id, attempt, "status", {"status": Status.FAILED, "error": error}, at)
    return None


def end_cancelled(session: orm.Session, task_id: uuid.UUID, attempt: int, reason: str) -> None:
    """Mark the live attempt's task cancelled. Raises StaleAttempt."""
    at = now()
    _end(session, task_id, attempt, status=Status.CANCELLED, finished_at=at, updated_at=at)
    add_event(session, task_id, attempt, "status", {"status": Status.CANCELLED, "reason": reason}, at)


def _end(session: orm.Session, task_id: uuid.UUID, attempt: int, **values) -> None:
    if session.execute(sql.end_attempt(task_id, attempt, **values)).first() is None:
        raise errors.StaleAttempt()


def cancel(session: orm.Session, task_id: uuid.UUID) -> str:
    """Cancel a task: a queued one at once, a running one at its next heartbeat.

    Return "cancelled" or "cancel_requested". Raises InvalidTransition if it already ended.
    """
    at = now()
    row = session.execute(sql.cancel_waiting(task_id, at)).first()
    if row is not None:
        add_event(
            session,
            task_id,
            row.attempt,
            "status",
            {"status": Status.CANCELLED, "reason": "cancelled while waiting"},
            at,
        )
        return "cancelled"
    row = session.execute(sql.request_cancel(task_id, at)).first()
    if row is not None:
        add_event(session, task_id, row.attempt, "log", {"message": "cancel requested"}, at)
        return "cancel_requested"
    status = session.scalar(sa.select(models.Task.status).where(models.Task.id == task_id))
    if status == Status.RUNNING:
        return "cancel_requested"
    raise errors.InvalidTransition(f"task is {status}; only queued or running tasks can be cancelled")


def cancel_descendants(session: orm.Session, task_id: uuid.UUID) -> int:
    """Cancel every waiting or running task below `task_id` (children, their children, ...);
    return how many were cancelled or asked to stop."""
    count = 0
    waiting = (Status.QUEUED, Status.RUNNING)
    parents = [task_id]
    while parents:
        children = session.execute(
            sa.select(models.Task.id, models.Task.status).where(models.Task.parent_id.in_(parents))
        ).all()
        for child in children:
            if child.status in waiting:
                with contextlib.suppress(errors.InvalidTransition):  # it ended meanwhile
                    cancel(session, child.id)
                    count += 1
        parents = [child.id for child in children]
    return count


def retry(session: orm.Session, task_id: uuid.UUID, extra_attempts: int) -> sa.Row:
    """Put a failed or cancelled task back in the queue with `extra_attempts` more attempts."""
    at = now()
    row = session.execute(sql.requeue(task_id, at, extra_attempts)).first()
    if row is None:
        status = session.scalar(sa.select(models.Task.status).where(models.Task.id == task_id))
        raise errors.InvalidTransition(f"task is {status}; only failed or cancelled tasks can be retried")
    add_event(session, task_id, row.attempt, "status", {"status": Status.QUEUED, "reason": "retried"}, at)
    return row


def describe_error(exc: BaseException, traceback_text: str | None = None) -> dict:
    """Return the stored form of an attempt's error."""
    retryable = getattr(exc, "retryable", not isinstance(exc, processor_errors.PermanentError))
    error = {"type": type(exc).__name__, "message": str(exc) or type(exc).__doc__ or "", "retryable": bool(retryable)}
    if traceback_text:
        error["traceback"] = traceback_text[-4000:]
    return error


def drop_artifacts_before(session: orm.Session, task_id: uuid.UUID, attempt: int) -> list[str]:
    """Delete the artifact rows of a task's attempts before `attempt`; return their storage keys
    (the caller deletes the files after the commit)."""
    rows = session.execute(
        sa.delete(models.Artifact)
        .where(models.Artifact.task_id == task_id, models.Artifact.attempt < attempt)
        .returning(models.Artifact.storage_key)
    )
    return [row.storage_key for row in rows]
