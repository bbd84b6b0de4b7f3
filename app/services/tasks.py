"""Task use cases: submit, get, list, cancel, retry, and read events."""

import datetime
import uuid

import sqlalchemy as sa

from app import models, runtime
from app.extensions import db
from app.queue import errors as queue_errors
from app.queue import lifecycle, sql
from app.services import errors
from processors import errors as processor_errors


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
) -> tuple[models.Task, bool]:
    """Store a new task and wake its pool; return it and whether it is new (not a repeat of
    `idempotency_key`). Raises errors.Invalid naming each bad field."""
    conveyor = runtime.current()
    if parent_id is not None:
        get(parent_id, account_id)
    fields = {
        "type": type,
        "params": params,
        "account_id": account_id,
        "user_id": user_id,
        "priority": priority,
        "run_at": run_at,
        "parent_id": parent_id,
        "idempotency_key": idempotency_key,
    }
    try:
        if conveyor.autocommit_engine is not None and not idempotency_key:
            # Without a key a submit is one statement (PostgreSQL): autocommit, one round trip.
            with conveyor.autocommit_engine.connect() as connection:
                task, created = lifecycle.submit(connection, conveyor.registry, **fields)
        else:
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
    if created:
        delay = (task.run_at - lifecycle.now()).total_seconds()
        if delay > 0:
            conveyor.wake_after_commit(task.pool, 1, delay)
        else:
            conveyor.nudge_after_commit(task.pool)
    return task, created


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
    limit: int = 50,
    offset: int = 0,
) -> list[models.Task]:
    """Return tasks, newest first, filtered by status and type."""
    query = sa.select(models.Task).order_by(models.Task.created_at.desc()).limit(limit).offset(offset)
    if account_id is not None:
        query = query.where(models.Task.account_id == account_id)
    if status:
        query = query.where(models.Task.status == status)
    if type:
        query = query.where(models.Task.type == type)
    return list(db.session.scalars(query))


def cancel(task_id: uuid.UUID | str, account_id: uuid.UUID | None) -> str:
    """Cancel a task; return "cancelled" or "cancel_requested". Raises NotFound, Conflict."""
    task = get(task_id, account_id)
    try:
        outcome = lifecycle.cancel(db.session, task.id)
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
