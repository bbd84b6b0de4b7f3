"""Read-only figures for the overview that the queue service does not give per account: counts
by status, type and priority, the oldest waiting task, the tasks finished per slice of the last
hour or day, and (for operators, from the per-minute metric counts the sweeper keeps) the whole
platform's throughput, failures and queue wait p50/p95 per pool. Nothing here decides anything;
the rules stay in `app.services`."""

import collections
import datetime
import uuid

import sqlalchemy as sa

from app import models, runtime
from app.extensions import db
from app.queue import counting, lifecycle, sql, totals

BUCKETS = 12
BUCKET = datetime.timedelta(minutes=5)
# The charts' windows: how many slices of what length.
WINDOWS = {"hour": (BUCKETS, BUCKET), "day": (24, datetime.timedelta(hours=1))}
FINISHED = "conveyor_tasks_finished_total"
WAIT = "conveyor_task_queue_wait_seconds_bucket"
QUANTILES = {"p50": 0.5, "p95": 0.95}
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


def throughput(account_id: uuid.UUID | None, window: str = "hour") -> list[dict]:
    """Return the window in slices, oldest first: each with its `start` and how many of the
    account's tasks `succeeded` and `failed` in it."""
    key = ("dashboard_throughput", account_id, window)
    return runtime.current().memo(
        key, THROUGHPUT_CACHE_SECONDS, lambda: finished(account_id, lifecycle.now(), *WINDOWS[window])
    )


def platform(window: str = "hour") -> dict:
    """Return the whole platform's `throughput` (as `throughput`) and each pool's queue wait
    per slice (`waits`: pool -> slices with `start`, `count`, `p50`, `p95` seconds), from the
    per-minute counts."""
    key = ("dashboard_platform", window)
    return runtime.current().memo(key, THROUGHPUT_CACHE_SECONDS, lambda: counted(lifecycle.now(), *WINDOWS[window]))


def counted(now: datetime.datetime, count: int, size: datetime.timedelta) -> dict:
    """Return `platform` as of `now`, read afresh; slices end at the end of `now`'s minute."""
    end = now.replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)
    starts = [end - (count - i) * size for i in range(count)]
    buckets = [{"start": start, "succeeded": 0, "failed": 0} for start in starts]
    waits: dict[str, list[collections.Counter]] = {}
    for minute, name, labels, value in db.session.execute(sql.minutes_since(starts[0], [FINISHED, WAIT])):
        index, labels = int((minute - starts[0]) / size), totals.decode(labels)
        if name == FINISHED and labels.get("outcome") in ("succeeded", "failed"):
            buckets[index][labels["outcome"]] += int(value)
        elif name == WAIT:
            slices = waits.setdefault(labels["pool"], [collections.Counter() for _ in starts])
            slices[index][float(labels["le"])] += value
    return {
        "throughput": buckets,
        "waits": {pool: _wait_slices(starts, found) for pool, found in sorted(waits.items())},
    }


def _wait_slices(starts: list, found: list[collections.Counter]) -> list[dict]:
    return [
        {"start": start, "count": int(sum(c.values())), **{k: quantile(c, q) for k, q in QUANTILES.items()}}
        for start, c in zip(starts, found, strict=True)
    ]


def quantile(counts: dict[float, float], q: float, bounds: tuple[float, ...] = counting.WAIT_BUCKETS) -> float | None:
    """Estimate the q-quantile from bucket counts (upper bound -> observations in that bucket
    alone, of the histogram's `bounds`), interpolating within the bucket as Prometheus'
    histogram_quantile does; the highest finite bound when it falls in the +Inf bucket; None
    with no observations."""
    total = sum(counts.values())
    if not total:
        return None
    rank, seen, lower = q * total, 0.0, 0.0
    for bound in bounds:
        here = counts.get(bound, 0.0)
        if here and seen + here >= rank:
            return lower + (bound - lower) * (rank - seen) / here
        seen, lower = seen + here, bound
    return lower


def finished(
    account_id: uuid.UUID | None, now: datetime.datetime, count: int = BUCKETS, size: datetime.timedelta = BUCKET
) -> list[dict]:
    """Return `throughput` as of `now`, read afresh: `count` slices of `size`."""
    task = models.Task
    since = now - count * size
    starts = [since + i * size for i in range(count)]
    # One row per status; the database counts each slice, so no task rows are shipped.
    slices = [
        sa.func.sum(sa.case((sa.and_(task.finished_at >= start, task.finished_at < start + size), 1), else_=0))
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
