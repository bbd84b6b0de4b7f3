"""Read-only figures for the overview that the queue service does not give per account: counts
by status, type and priority, the oldest waiting task, and the tasks finished per five minutes
over the last hour. Nothing here decides anything; the rules stay in `app.services`."""

import datetime
import uuid

import sqlalchemy as sa

from app import models, runtime
from app.extensions import db
from app.queue import lifecycle

BUCKETS = 12
BUCKET = datetime.timedelta(minutes=5)
# Throughput is polled by every open overview: reuse it this long in a process.
THROUGHPUT_CACHE_SECONDS = 5.0


def counts(account_id: uuid.UUID | None) -> dict:
    """Return `by_status`, `by_type` (type -> status -> n) and `waiting_by_priority` of an
    account (every account when None), in the shape of `queue.status()`."""
    task = models.Task
    query = sa.select(task.type, task.status, task.priority, sa.func.count()).group_by(
        task.type, task.status, task.priority
    )
    if account_id is not None:
        query = query.where(task.account_id == account_id)
    by_status = {str(status): 0 for status in models.Status}
    by_type: dict[str, dict[str, int]] = {}
    waiting: dict[str, int] = {}
    for type_, status, priority, number in db.session.execute(query):
        by_status[status] = by_status.get(status, 0) + number
        by_type.setdefault(type_, {}).setdefault(status, 0)
        by_type[type_][status] += number
        if status == models.Status.QUEUED:
            name = models.Priority(priority).name.lower()
            waiting[name] = waiting.get(name, 0) + number
    return {"by_status": by_status, "by_type": by_type, "waiting_by_priority": waiting}


def oldest_waiting(account_id: uuid.UUID) -> models.Task | None:
    """Return the account's task that has waited longest, or None."""
    task = models.Task
    query = (
        sa.select(task)
        .where(task.account_id == account_id, task.status == models.Status.QUEUED)
        .order_by(task.created_at, task.id)
        .limit(1)
    )
    return db.session.scalars(query).first()


def throughput(account_id: uuid.UUID | None) -> list[dict]:
    """Return the last hour in BUCKETS slices, oldest first: each with its `start` and how many
    tasks `succeeded` and `failed` in it."""
    key = ("dashboard_throughput", account_id)
    return runtime.current().memo(key, THROUGHPUT_CACHE_SECONDS, lambda: finished(account_id, lifecycle.now()))


def finished(account_id: uuid.UUID | None, now: datetime.datetime) -> list[dict]:
    """Return `throughput` as of `now`, read afresh."""
    task = models.Task
    since = now - BUCKETS * BUCKET
    starts = [since + i * BUCKET for i in range(BUCKETS)]
    # One row per status; the database counts each slice, so no task rows are shipped.
    slices = [
        sa.func.sum(sa.case((sa.and_(task.finished_at >= start, task.finished_at < start + BUCKET), 1), else_=0))
        for start in starts
    ]
    query = (
        sa.select(task.status, *slices)
        .where(task.finished_at >= since, task.status.in_([models.Status.SUCCEEDED, models.Status.FAILED]))
        .group_by(task.status)
    )
    if account_id is not None:
        query = query.where(task.account_id == account_id)
    buckets = [{"start": start, "succeeded": 0, "failed": 0} for start in starts]
    for status, *numbers in db.session.execute(query):
        for bucket, number in zip(buckets, numbers, strict=True):
            bucket[status] = int(number or 0)
    return buckets
