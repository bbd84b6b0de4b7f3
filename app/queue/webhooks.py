"""The webhooks' fan-out: task events into one delivery per subscribed endpoint.

The event log is the outbox. A task's end writes its `status` event in the same transaction
as the task's row (`lifecycle`), so nothing on the finish path knows about webhooks. This job
reads the status and progress events after its cursor (`metric_cursors`, name "webhooks"),
oldest first, up to the first one written less than `LAG_SECONDS` ago (so an event committed
a moment late is not skipped), and in the one transaction that moves the cursor and holds its
row inserts a `webhook_deliveries` row per event and enabled endpoint of the task's account
that asked for the event's type. So each event is fanned out exactly once, whichever sweeper
runs; sending (`delivery`) is at least once.

Event types: task.succeeded, task.failed, task.cancelled (a task's end), task.started (an
attempt starts) and task.progress, at most one per task and endpoint every
CONVEYOR_WEBHOOK_PROGRESS_SECONDS (the reports in between are dropped; the end is always sent).
"""

import uuid

import sqlalchemy as sa
from sqlalchemy import orm

from app.models import Status
from app.queue import cursors, lifecycle, sql

CURSOR = "webhooks"
BATCH = 1000
MAX_BATCHES = 10
LAG_SECONDS = 2.0
TERMINAL = ("task.succeeded", "task.failed", "task.cancelled")
EVENTS = (*TERMINAL, "task.started", "task.progress")
_BY_STATUS = {
    Status.SUCCEEDED: "task.succeeded",
    Status.FAILED: "task.failed",
    Status.CANCELLED: "task.cancelled",
    Status.RUNNING: "task.started",
}


def fan_out(session_factory: orm.sessionmaker, progress_seconds: float) -> int:
    """Fan out the events written since the last call, in batches; return how many events."""
    done = 0
    for _ in range(MAX_BATCHES):
        with session_factory() as session:
            read = fan_out_batch(session, progress_seconds)
            session.commit()
        done += read
        if read < BATCH:
            break
    return done


def fan_out_batch(session: orm.Session, progress_seconds: float, lag_seconds: float = LAG_SECONDS) -> int:
    """Add the deliveries of up to BATCH events after the cursor and move the cursor past
    them; return how many events. The caller commits."""
    ready = cursors.ready_events(session, CURSOR, sql.webhook_events_after(), BATCH, lag_seconds)
    if not ready:
        return 0
    made = deliveries(session, ready, progress_seconds)
    if made:
        session.execute(sql.add_deliveries(session.get_bind().dialect.name), made)
    cursors.move(session, CURSOR, ready[-1].id)
    return len(ready)


def deliveries(session: orm.Session, rows: list, progress_seconds: float) -> list[dict]:
    """Return the delivery rows of `rows` (`sql.webhook_events_after`'s) for their endpoints."""
    endpoints = _endpoints(session, {row.account_id for row in rows})
    if not endpoints:
        return []
    throttle = _Throttle(session, rows, progress_seconds)
    made = []
    for row in rows:
        kind = event_type(row)
        for endpoint in endpoints.get(row.account_id, ()):
            if kind in endpoint.events and throttle.allows(kind, endpoint.id, row):
                made.append(_delivery(endpoint.id, kind, row))
    return made


def _endpoints(session: orm.Session, account_ids: set) -> dict:
    found: dict = {}
    for endpoint in session.execute(sql.endpoints_of_accounts(), {"accounts": sorted(account_ids)}):
        found.setdefault(endpoint.account_id, []).append(endpoint)
    return found


def event_type(row: sa.Row) -> str | None:
    """Return the webhook event type of a task event, or None if none is sent for it."""
    if row.kind == "progress":
        return "task.progress"
    return _BY_STATUS.get(row.data.get("status"))


class _Throttle:
    """At most one task.progress delivery per task and endpoint every `seconds`."""

    def __init__(self, session: orm.Session, rows: list, seconds: float):
        self.seconds = seconds
        self.last: dict = {}
        tasks = sorted({row.task_id for row in rows if row.kind == "progress"})
        if tasks and seconds > 0:
            for found in session.execute(sql.last_progress_deliveries(), {"tasks": tasks}):
                self.last[(found.endpoint_id, found.task_id)] = found.at

    def allows(self, kind: str, endpoint_id: uuid.UUID, row: sa.Row) -> bool:
        if kind != "task.progress" or self.seconds <= 0:
            return True
        key, at = (endpoint_id, row.task_id), row.created_at
        previous = self.last.get(key)
        if previous is not None and (at - previous).total_seconds() < self.seconds:
            return False
        self.last[key] = at
        return True


def _delivery(endpoint_id: uuid.UUID, kind: str, row: sa.Row) -> dict:
    at = lifecycle.now()
    return {
        "id": uuid.uuid4(),
        "endpoint_id": endpoint_id,
        "task_id": row.task_id,
        "event_id": row.id,
        "event_type": kind,
        "payload": payload(kind, row),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": at,
        "created_at": at,
    }


def payload(kind: str, row: sa.Row) -> dict:
    """Return the Standard Webhooks body of an event: `type`, `timestamp` and `data`."""
    data = {
        "task_id": str(row.task_id),
        "task_type": row.type,
        "status": row.data.get("status", Status.RUNNING),
        "account": row.account,
        "attempt": row.attempt,
        "event_id": row.id,
    }
    data.update(_details(kind, row))
    return {"type": kind, "timestamp": row.created_at.isoformat(), "data": data}


def _details(kind: str, row: sa.Row) -> dict:
    if kind == "task.progress":
        return {key: row.data.get(key) for key in ("progress", "stage", "message")}
    if kind == "task.succeeded":
        same = row.task_status == Status.SUCCEEDED and row.task_attempt == row.attempt
        return {"result": row.result if same else None, "finished_at": row.created_at.isoformat()}
    if kind == "task.failed":
        return {"error": row.data.get("error"), "finished_at": row.created_at.isoformat()}
    if kind == "task.cancelled":
        return {"reason": row.data.get("reason"), "finished_at": row.created_at.isoformat()}
    return {"worker": row.data.get("worker")}
