"""Batch submits (`POST /api/tasks/batch`, `manage.py tasks submit --from-file`): up to
BATCH_MAX tasks of one account in one transaction, all or nothing (`app.queue.batch`).

Every task passes the checks a single submit makes (params, priority by role, parent, uploads,
URL sources, providers); the errors of all bad tasks come back together, each under
`tasks.<index>`. After the commit each pool with due tasks is woken once: the worker that
takes the wake-up drains the pool, and wakes an idle peer while more wait.
"""

import collections
import datetime
import json
import uuid

import sqlalchemy as sa

from app import models, runtime
from app.extensions import db
from app.queue import batch, lifecycle
from app.queue import errors as queue_errors
from app.services import errors, quotas
from app.services import tasks as task_service

BATCH_MAX = batch.BATCH_MAX


def submit(
    items: list[dict],
    *,
    account_id: uuid.UUID,
    user_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    role: str | None = None,
) -> tuple[list[models.Task], bool]:
    """Store the tasks `items` describe (each: `type`, `params`, and optionally `priority`,
    `run_at`, `parent_id`) and wake their pools; return them in order and whether they are new
    (False: a repeat of `idempotency_key`). Raises errors.Invalid naming `tasks.<index>.<field>`
    for every bad task, errors.Forbidden, errors.NotFound or errors.Unavailable for the first
    task that meets one, and errors.QuotaExceeded when the batch would pass the waiting quota."""
    if not items or len(items) > BATCH_MAX:
        raise errors.Invalid("a batch holds 1 to 1000 tasks", {"tasks": [f"give 1 to {BATCH_MAX} tasks"]})
    task_service.check_key(idempotency_key)
    _check_each(items, account_id, role)
    conveyor = runtime.current()
    try:
        found, created = batch.submit_many(
            db.session,
            conveyor.registry,
            items,
            account_id=account_id,
            user_id=user_id,
            idempotency_key=idempotency_key,
            fair=bool(conveyor.settings["CONVEYOR_FAIR_SHARE"]),
            max_waiting=conveyor.settings["CONVEYOR_ACCOUNT_MAX_WAITING"],
        )
        db.session.commit()
    except batch.BatchInvalid as exc:
        db.session.rollback()
        raise errors.Invalid(str(exc), {"tasks": _by_index(exc.problems, conveyor.registry)}) from exc
    except queue_errors.QuotaExceeded as exc:
        db.session.rollback()
        raise quotas.refused(exc) from exc
    except sa.exc.IntegrityError:
        db.session.rollback()  # the same batch, committed first by another request
        found = batch.stored_batch(db.session, account_id, idempotency_key, len(items)) if idempotency_key else []
        if not found:
            raise
        return found, False
    if created:
        _wake(conveyor, found)
    return found, created


# The fields a task of a batch file may have (`items_from_lines`).
ITEM_FIELDS = ("type", "params", "priority", "run_at", "parent_id")


def items_from_lines(lines) -> list[dict]:
    """Read tasks from JSON Lines (`{"type": ..., "params": {...}, "priority": ..., "run_at":
    ISO 8601 with zone, "parent_id": ...}` a line; blank lines are skipped). Raises
    errors.Invalid naming `line <n>` for the first line that is not such an object."""
    items = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            items.append(_item(line, number))
    return items


def _item(line: str, number: int) -> dict:
    where = f"line {number}"
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise errors.Invalid(f"{where} is not JSON: {exc}", {where: [str(exc)]}) from None
    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        raise errors.Invalid(f"{where}: give an object with a `type`", {where: ["an object with a type"]})
    unknown = sorted(set(item) - set(ITEM_FIELDS))
    if unknown:
        raise errors.Invalid(f"{where}: unknown field(s) {', '.join(unknown)}", {where: [f"fields: {ITEM_FIELDS}"]})
    if item.get("params") is not None and not isinstance(item["params"], dict):
        raise errors.Invalid(f"{where}: params must be an object", {where: ["params must be an object"]})
    try:
        if item.get("run_at") is not None:
            item["run_at"] = _aware(datetime.datetime.fromisoformat(item["run_at"]))
        if item.get("parent_id") is not None:
            item["parent_id"] = uuid.UUID(str(item["parent_id"]))
    except (TypeError, ValueError) as exc:
        raise errors.Invalid(f"{where}: {exc}", {where: [str(exc)]}) from None
    return item


def _aware(value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is None:
        raise ValueError("run_at needs a time zone, e.g. 2026-12-08T10:00:00Z")
    return value.astimezone(datetime.UTC)


def _check_each(items: list[dict], account_id: uuid.UUID, role: str | None) -> None:
    """Run a single submit's service checks on every task; gather the invalid ones' errors."""
    invalid = {}
    for index, item in enumerate(items):
        try:
            task_service.check_inputs(
                item["type"],
                item.get("params"),
                account_id=account_id,
                priority=item.get("priority"),
                parent_id=item.get("parent_id"),
                role=role,
            )
        except errors.Invalid as exc:
            invalid[str(index)] = exc.errors
        except errors.ServiceError as exc:
            exc.message = f"task {index}: {exc.message}"
            exc.errors = {"tasks": {str(index): exc.errors}} if exc.errors else {}
            raise
    if invalid:
        raise errors.Invalid(f"{len(invalid)} task(s) of the batch are invalid", {"tasks": invalid})


def _by_index(problems: dict[int, Exception], registry) -> dict:
    """The field errors of the queue core's refusals, as a single submit reports them."""
    found = {}
    for index, exc in problems.items():
        if isinstance(exc, queue_errors.UnknownTaskType):
            found[str(index)] = {"type": [f"must be one of: {', '.join(registry.types())}"]}
        elif isinstance(exc, ValueError):
            found[str(index)] = {"priority": [str(exc)]}
        else:
            found[str(index)] = {"params": exc.errors}
    return found


def _wake(conveyor, found: list[models.Task]) -> None:
    """Wake each pool once for its due tasks, and once for each later `run_at` (to the second)."""
    at = lifecycle.now()
    later = collections.defaultdict(set)
    due = set()
    for task in found:
        if task.run_at > at:
            later[task.pool].add(_whole_seconds(task.run_at - at))
        else:
            due.add(task.pool)
    for pool in due:
        conveyor.nudge_after_commit(pool)
    for pool, delays in later.items():
        for delay in sorted(delays):
            conveyor.wake_after_commit(pool, 1, delay)


def _whole_seconds(delta: datetime.timedelta) -> float:
    # Rounded up: a wake-up before the task is due finds nothing to claim.
    return float(-(-delta.total_seconds() // 1))
