"""Task use cases: submit, get, list, describe (attempts, position, ETA), cancel, retry,
delete and purge, and read events and artifacts."""

import datetime
import logging
import statistics
import uuid

import sqlalchemy as sa
from sqlalchemy import orm

from app import models, runtime
from app.extensions import db
from app.queue import errors as queue_errors
from app.queue import lifecycle, retention, sql, states
from app.services import availability, errors, inputs, quotas, sources, uploads
from processors import errors as processor_errors

log = logging.getLogger(__name__)
PURGE_BATCH = 500


def submit(
    type: str,
    params: dict | None,
    *,
    account_id: uuid.UUID,
    user_id: uuid.UUID | None = None,
    priority: str | None = None,
    run_at: datetime.datetime | None = None,
    parent_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    count_ahead: bool = False,
    role: str | None = None,
) -> tuple[models.Task, bool]:
    """Store a new task and wake its pool; return it and whether it is new (not a repeat of
    `idempotency_key`). `count_ahead`: the answer will show its position (`position`), which
    the submit statement can count at no extra round trip. `role`: the caller's role, which
    decides the priorities it may use (None: the platform itself, e.g. the CLI). Raises
    errors.Invalid naming each bad field, errors.Forbidden naming `priority`, errors.Unavailable
    when a provider the task needs is not configured, and errors.QuotaExceeded when the
    account is at its waiting quota."""
    conveyor = runtime.current()
    check_inputs(type, params, account_id=account_id, priority=priority, parent_id=parent_id, role=role)
    check_key(idempotency_key)
    fields = {
        "type": type,
        "params": params,
        "account_id": account_id,
        "user_id": user_id,
        "priority": priority,
        "run_at": run_at,
        "parent_id": parent_id,
        "idempotency_key": idempotency_key,
        "count_ahead": count_ahead,
        "fair": bool(conveyor.settings["CONVEYOR_FAIR_SHARE"]),
        "max_waiting": conveyor.settings["CONVEYOR_ACCOUNT_MAX_WAITING"],
    }
    try:
        if conveyor.autocommit_engine is not None and not idempotency_key:
            # Without a key a submit is one statement (PostgreSQL) that commits at once; in the
            # same round trip, after the commit, it notifies a waiting worker if there is one.
            with conveyor.autocommit_engine.connect() as connection:
                task, created = lifecycle.submit(connection, conveyor.registry, **fields, notify=conveyor.listening)
                if not task.notified_at_submit:  # None: it did not look; False: no one waits
                    _wake(conveyor, task, connection, look=task.notified_at_submit is None)
            return task, created
        task, created = lifecycle.submit(db.session, conveyor.registry, **fields)
        db.session.commit()
    except queue_errors.UnknownTaskType as exc:
        db.session.rollback()
        raise errors.Invalid(str(exc), {"type": [f"must be one of: {', '.join(conveyor.registry.types())}"]}) from exc
    except processor_errors.InvalidParams as exc:
        db.session.rollback()
        raise errors.Invalid("invalid params", {"params": exc.errors}) from exc
    except ValueError as exc:
        db.session.rollback()
        raise errors.Invalid(str(exc), {"priority": [str(exc)]}) from exc
    except queue_errors.QuotaExceeded as exc:
        db.session.rollback()
        raise quotas.refused(exc) from exc
    if created:
        _wake(conveyor, task)
    return task, created


def _wake(conveyor, task: models.Task, connection=None, look: bool = True) -> None:
    """After the commit of a new task: a worker looks at its pool now, or when `run_at` comes.
    `look`: first look for a waiting worker to notify (False: the submit just did)."""
    delay = (task.run_at - lifecycle.now()).total_seconds()
    if delay > 0:
        conveyor.wake_after_commit(task.pool, 1, delay)
    else:
        conveyor.nudge_after_commit(task.pool, connection, notify=look)


def check_inputs(
    type: str,
    params: dict | None,
    *,
    account_id: uuid.UUID,
    priority: str | None,
    parent_id: uuid.UUID | None,
    role: str | None,
) -> None:
    """The checks of a submit that need more than the type's params schema: storable params,
    priority by role, the parent, uploads, URL sources and the providers the task needs.
    Raises errors.Invalid, errors.Forbidden, errors.NotFound (the parent) or errors.Unavailable."""
    conveyor = runtime.current()
    _check_storable(params)
    quotas.check_priority(priority, role, account_id)
    if parent_id is not None:
        get(parent_id, account_id)
    _check_uploads(conveyor.registry, type, params, account_id)
    sources.check(conveyor.registry, type, params, conveyor.settings)
    availability.check(conveyor.registry, type, params, conveyor.settings)


def check_key(idempotency_key: str | None) -> None:
    """Refuse an idempotency key the database cannot store as given (`inputs`)."""
    if idempotency_key is not None and (why := inputs.text_problem(idempotency_key)):
        raise errors.Invalid("invalid Idempotency-Key", {"Idempotency-Key": [why]})


def _check_storable(params: dict | None) -> None:
    """Refuse params the database cannot store as given (`inputs`), whichever way they came
    in: the API's schemas check the generic submit already, not the typed endpoints' raw
    params, the dashboard's forms or the CLI."""
    problems = inputs.json_problems(params) if isinstance(params, dict | list) else {}
    if problems:
        raise errors.Invalid("invalid params", {"params": problems})


def _check_uploads(registry, type: str, params: dict | None, account_id: uuid.UUID) -> None:
    """Refuse params that refer to uploads the account does not have (types that take none
    skip this: the hook is only called when a type overrides it)."""
    try:
        referred = uploads.references(registry, type, params)  # an unknown type: the submit says so
    except processor_errors.InvalidParams as exc:
        raise errors.Invalid("invalid params", {"params": exc.errors}) from exc
    if referred:
        uploads.check_references(referred, account_id)


def get(task_id: uuid.UUID | str, account_id: uuid.UUID | None) -> models.Task:
    """Return a task of the account (any account when None); raise NotFound otherwise."""
    try:
        task_id = uuid.UUID(str(task_id))
    except ValueError:
        raise errors.NotFound() from None
    task = db.session.get(models.Task, task_id)
    if task is None or (account_id is not None and task.account_id != account_id):
        raise errors.NotFound()
    return task


def find(
    account_id: uuid.UUID | None,
    *,
    status: str | None = None,
    type: str | None = None,
    priority: str | None = None,
    created_after: datetime.datetime | None = None,
    created_before: datetime.datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[models.Task]:
    """Return tasks, newest first, filtered by status, type, priority and creation time."""
    query = _filtered(
        account_id,
        status=status,
        type=type,
        priority=priority,
        created_after=created_after,
        created_before=created_before,
    )
    query = query.order_by(models.Task.created_at.desc(), models.Task.id).limit(limit).offset(offset)
    return list(db.session.scalars(query))


def count(account_id: uuid.UUID | None, **filters) -> int:
    """Return how many tasks `find` would return with the same filters and no limit."""
    query = _filtered(account_id, **filters)
    return db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))


def _filtered(
    account_id, *, status=None, type=None, priority=None, created_after=None, created_before=None
) -> sa.Select:
    task = models.Task
    query = sa.select(task)
    if account_id is not None:
        query = query.where(task.account_id == account_id)
    if status:
        query = query.where(task.status == status)
    if type:
        query = query.where(task.type == type)
    if priority is not None:
        try:
            query = query.where(task.priority == lifecycle.parse_priority(priority, "normal"))
        except ValueError as exc:
            raise errors.Invalid(str(exc), {"priority": [str(exc)]}) from exc
    if created_after:
        query = query.where(task.created_at >= created_after)
    if created_before:
        query = query.where(task.created_at < created_before)
    return query


# ETA: the mean of this many recent successful runs of the type.
ETA_SAMPLE = 50
POSITION_CAP = sql.POSITION_CAP


def position(task: models.Task) -> int | None:
    """Return a waiting task's place in its pool (1 = next), None once it has started. At most
    POSITION_CAP tasks ahead are counted (a range scan of the claim index), so POSITION_CAP + 1
    means "at least that far back". A task just submitted with `count_ahead` was counted by its
    submit, right after the commit."""
    if task.status != models.Status.QUEUED:
        return None
    if task.ahead_at_submit is not None:
        return task.ahead_at_submit + 1
    ahead = sql.ahead(sa.literal(task.id, sa.Uuid), sa.literal(task.pool)).subquery()
    return db.session.scalar(sa.select(sa.func.count()).select_from(ahead)) + 1


def eta_seconds(task: models.Task, place: int | None) -> float | None:
    """Estimate seconds until a waiting task finishes: its place times the mean duration of
    recent successful runs of its type (the policy's estimate when there are none), divided
    by the workers seen in its pool in the last ten minutes; plus the wait for `run_at`.
    Both inputs are reused for `CONVEYOR_ETA_CACHE_SECONDS` in a process."""
    if place is None:
        return None
    conveyor = runtime.current()
    seconds = conveyor.settings["CONVEYOR_ETA_CACHE_SECONDS"]
    each = conveyor.memo(("eta_duration", task.type), seconds, lambda: _mean_duration(task.type))
    workers = conveyor.memo(("eta_workers", task.pool), seconds, lambda: _recent_workers(task.pool))
    delay = max(0.0, (task.run_at - lifecycle.now()).total_seconds())
    return round(delay + place * each / max(1, workers), 3)


def _mean_duration(type: str) -> float:
    """Mean run time of the type's last ETA_SAMPLE successes; the policy's estimate if none."""
    conveyor = runtime.current()
    t = models.Task
    recent = db.session.execute(
        sa.select(t.started_at, t.finished_at)
        .where(t.type == type, t.status == models.Status.SUCCEEDED, t.started_at.is_not(None))
        .order_by(t.finished_at.desc())
        .limit(ETA_SAMPLE)
    ).all()
    durations = [(row.finished_at - row.started_at).total_seconds() for row in recent if row.finished_at]
    if durations:
        return statistics.fmean(durations)
    return conveyor.registry.policy(type).estimate if type in conveyor.registry else 0.0


def _recent_workers(pool: str) -> int:
    t = models.Task
    since = lifecycle.now() - datetime.timedelta(minutes=10)
    return (
        db.session.scalar(sa.select(sa.func.count(sa.distinct(t.worker))).where(t.pool == pool, t.updated_at >= since))
        or 0
    )


def attempts(task: models.Task) -> list[dict]:
    """Return each attempt of a task: when it started and ended, on which worker, its outcome
    and its error, read from the task's status events."""
    found: dict[int, dict] = {}
    for event in db.session.scalars(
        sa.select(models.TaskEvent)
        .where(models.TaskEvent.task_id == task.id, models.TaskEvent.kind == "status", models.TaskEvent.attempt > 0)
        .order_by(models.TaskEvent.id)
    ):
        data = event.data or {}
        blank = dict.fromkeys(("started_at", "ended_at", "worker", "outcome", "error"))
        entry = found.setdefault(event.attempt, {"attempt": event.attempt, **blank})
        if data.get("status") == models.Status.RUNNING:
            entry["started_at"], entry["worker"] = event.created_at, data.get("worker")
        else:
            entry["ended_at"] = event.created_at
            entry["outcome"] = "retrying" if data.get("status") == models.Status.QUEUED else data.get("status")
            entry["error"] = data.get("error")
    return [found[number] for number in sorted(found)]


def artifacts(task_id: uuid.UUID | str, account_id: uuid.UUID | None) -> list[models.Artifact]:
    """Return a task's artifacts, oldest first."""
    task = get(task_id, account_id)
    query = sa.select(models.Artifact).where(models.Artifact.task_id == task.id).order_by(models.Artifact.created_at)
    return list(db.session.scalars(query))


def artifact(task_id: uuid.UUID | str, artifact_id: uuid.UUID | str, account_id: uuid.UUID | None) -> models.Artifact:
    """Return an artifact of the task. Raises NotFound."""
    task = get(task_id, account_id)
    try:
        artifact_id = uuid.UUID(str(artifact_id))
    except ValueError:
        raise errors.NotFound("no such artifact") from None
    found = db.session.get(models.Artifact, artifact_id)
    if found is None or found.task_id != task.id:
        raise errors.NotFound("no such artifact")
    return found


def delete(task_id: uuid.UUID | str, account_id: uuid.UUID | None) -> None:
    """Delete a finished task with its events and artifacts (rows and files). A waiting or
    running task must be cancelled first: Conflict."""
    task = get(task_id, account_id)
    if task.status not in (models.Status.SUCCEEDED, models.Status.FAILED, models.Status.CANCELLED):
        raise errors.Conflict(f"task is {task.status}; cancel it first", {"status": [f"is {task.status}"]})
    children = db.session.scalar(sa.select(sa.func.count()).where(models.Task.parent_id == task.id))
    if children:
        raise errors.Conflict("task has child tasks; delete them first", {"task_id": ["has child tasks"]})
    db.session.execute(sa.delete(models.Artifact).where(models.Artifact.task_id == task.id))
    db.session.execute(sa.delete(models.TaskEvent).where(models.TaskEvent.task_id == task.id))
    db.session.delete(task)
    db.session.commit()
    # Files go after the commit: a failed delete leaves rows that still point at their files.
    runtime.current().storage.delete_prefix(f"tasks/{task.id}/")


def purge(before: datetime.datetime, statuses=states.TERMINAL, *, dry_run: bool = False) -> dict:
    """Delete tasks that ended (in `statuses`) before `before`, with their events, artifacts
    and files, `PURGE_BATCH` at a time, each batch its own transaction. A task whose child
    tasks remain is kept; children that qualify go first, so a whole finished family goes in
    one run. The delete checks status and end time again, so a task retried meanwhile stays.
    With `dry_run`, only count the tasks that match."""
    unknown = set(statuses) - states.TERMINAL
    if unknown or not statuses:
        raise errors.Invalid("only ended tasks can be purged", {"status": [f"not an end state: {sorted(unknown)}"]})
    task = models.Task
    ended = sa.and_(task.status.in_(list(statuses)), task.finished_at < before)
    if dry_run:
        return {"before": before, "statuses": sorted(statuses), "matching": db.session.scalar(_count(ended))}
    child = orm.aliased(task)
    deletable = sa.and_(ended, ~sa.exists().where(child.parent_id == task.id))
    storage, deleted, file_errors = runtime.current().storage, 0, 0
    batch = sa.select(task.id).where(deletable).order_by(task.finished_at).limit(PURGE_BATCH)
    while ids := db.session.scalars(batch).all():
        gone = retention.delete_tasks(db.session, ids, deletable)
        db.session.commit()
        deleted += len(gone)
        file_errors += retention.delete_files(storage, gone)  # after the commit, as in `delete`
        if not gone:
            break  # every selected task changed under us (retried): leave them
    kept = db.session.scalar(_count(ended))  # ended long ago, but a child task remains
    report = {"before": before, "statuses": sorted(statuses), "deleted": deleted, "kept": kept}
    return {**report, "file_errors": file_errors}


def _count(where) -> sa.Select:
    return sa.select(sa.func.count()).select_from(models.Task).where(where)


def cancel(task_id: uuid.UUID | str, account_id: uuid.UUID | None) -> str:
    """Cancel a task and every waiting or running task below it; return "cancelled" or
    "cancel_requested" (for the task itself). Raises NotFound, Conflict."""
    task = get(task_id, account_id)
    try:
        outcome = lifecycle.cancel(db.session, task.id)
        lifecycle.cancel_descendants(db.session, task.id)  # a course's lessons stop with it
        db.session.commit()
    except queue_errors.InvalidTransition as exc:
        db.session.rollback()
        raise errors.Conflict(str(exc)) from exc
    return outcome


def retry(task_id: uuid.UUID | str, account_id: uuid.UUID | None) -> models.Task:
    """Requeue a failed or cancelled task with its type's attempts again. Raises Conflict."""
    conveyor = runtime.current()
    task = get(task_id, account_id)
    extra = conveyor.registry.policy(task.type).max_attempts if task.type in conveyor.registry else 1
    try:
        lifecycle.retry(db.session, task.id, extra)
        db.session.commit()
    except queue_errors.InvalidTransition as exc:
        db.session.rollback()
        raise errors.Conflict(str(exc)) from exc
    db.session.refresh(task)
    conveyor.nudge_after_commit(task.pool)
    return task


def events(task_id: uuid.UUID | str, account_id: uuid.UUID | None, after: int = 0, limit: int = 500) -> list:
    """Return a task's events after sequence id `after`, oldest first."""
    task = get(task_id, account_id)
    return db.session.execute(sql.events_after(task.id, after, limit)).all()
