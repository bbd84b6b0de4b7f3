"""Batch submits: many tasks of one account stored in one transaction, all or nothing.

Each task is validated as a single submit validates it (`lifecycle.new_task`); one bad task
refuses the batch, with every bad one named by its index. The waiting quota counts the whole
batch. The rows go in one multi-row INSERT and their `queued` events in another, whatever the
batch's size, so a batch costs about as much as two single submits. Each task takes the fair
place a single submit would have taken at its turn: one step after the other, per pool.

With an idempotency key K, task n of the batch gets the key `K#n`, and a repeat of the batch
(the same K in the account) returns the tasks the first one stored.
"""

import collections
import datetime
import uuid

import sqlalchemy as sa
from sqlalchemy import orm

from app import models
from app.queue import errors, lifecycle, quota, sql
from processors import errors as processor_errors
from processors import registry as registry_module

# The most tasks one batch may hold.
BATCH_MAX = 1000


class BatchInvalid(Exception):
    """Tasks of a batch are invalid: `problems` maps each bad task's index to its error
    (UnknownTaskType, processors.errors.InvalidParams or ValueError for its priority)."""

    def __init__(self, problems: dict[int, Exception]):
        super().__init__(f"{len(problems)} task(s) of the batch are invalid")
        self.problems = problems


def task_key(key: str, index: int) -> str:
    """The idempotency key of task `index` of a batch submitted with `key`."""
    return f"{key}#{index}"


def submit_many(
    session: orm.Session,
    registry: registry_module.Registry,
    items: list[dict],
    *,
    account_id: uuid.UUID,
    user_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    fair: bool = True,
    max_waiting: int | None = None,
) -> tuple[list[models.Task], bool]:
    """Validate and add the tasks `items` describe (each: `type`, `params`, and optionally
    `priority`, `run_at`, `parent_id`); return them, in order, and whether they are new (False:
    a repeat of `idempotency_key`). Raises BatchInvalid, or QuotaExceeded if the batch would
    take the account over its waiting quota. The caller commits; a repeated key that another
    transaction commits first raises IntegrityError there or at the commit."""
    at = lifecycle.now()
    found = [_new(registry, item, index, account_id, user_id, idempotency_key, at) for index, item in enumerate(items)]
    problems = {index: task for index, task in enumerate(found) if isinstance(task, Exception)}
    if problems:
        raise BatchInvalid(problems)
    if idempotency_key:
        repeat = stored_batch(session, account_id, idempotency_key, len(found))
        if repeat:
            return repeat, False
    if max_waiting is not None:
        quota.check_waiting(session, account_id, max_waiting, adding=len(found))
    _place(session, found, account_id, fair)
    session.execute(sql.insert_tasks(), [{name: getattr(task, name) for name in sql.BATCH_COLUMNS} for task in found])
    session.execute(sql.insert_events(), [_event(task) for task in found])
    return found, True


def stored_batch(session: orm.Session, account_id: uuid.UUID, key: str, size: int) -> list[models.Task]:
    """The tasks a batch with idempotency key `key` stored, in order; [] if none did."""
    keys = [task_key(key, index) for index in range(size)]
    query = sa.select(models.Task).where(models.Task.account_id == account_id, models.Task.idempotency_key.in_(keys))
    by_key = {task.idempotency_key: task for task in session.scalars(query)}
    return [by_key[name] for name in keys if name in by_key]


def _new(registry, item: dict, index: int, account_id, user_id, key: str | None, at: datetime.datetime):
    """Task `index` of the batch, or the error that makes it invalid."""
    try:
        return lifecycle.new_task(
            registry,
            type=item["type"],
            params=item.get("params"),
            account_id=account_id,
            user_id=user_id,
            priority=item.get("priority"),
            run_at=item.get("run_at"),
            parent_id=item.get("parent_id"),
            idempotency_key=task_key(key, index) if key else None,
            at=at,
        )
    except (errors.UnknownTaskType, processor_errors.InvalidParams, ValueError) as exc:
        return exc


def _place(session: orm.Session, found: list[models.Task], account_id: uuid.UUID, fair: bool) -> None:
    """Give each task its fair place: in each pool, one step after the account's last one (or
    the pool's virtual time), in the batch's order. Without `fair`: place 0 (first come)."""
    by_pool = collections.defaultdict(list)
    for task in found:
        by_pool[task.pool].append(task)
    for pool, members in by_pool.items():
        start, step = session.execute(sql.fair_start(account_id, pool)).one() if fair else (0.0, 0.0)
        for number, task in enumerate(members, start=1):
            task.fair_seq = start + number * step


def _event(task: models.Task) -> dict:
    return {
        "task_id": task.id,
        "attempt": 0,
        "kind": "status",
        "data": lifecycle.queued_event(task),
        "created_at": task.created_at,
    }
