"""Server-Sent Events of one task: its event rows in order, then `close`.

Each row is sent as `id: <sequence id>`, `event: <kind>` and `data: <JSON>`, so a client that
reconnects with `Last-Event-ID` gets exactly the rows after the last one it saw. The stream
polls the events table (short sessions, no connection held between polls), sends a comment
line as a heartbeat when nothing happened for `CONVEYOR_SSE_HEARTBEAT_SECONDS`, and ends once
the task has ended and every row up to its terminal status was sent: with a `close` event
whose data carries that status. A client that connects after the end gets the whole history
(or what follows its `Last-Event-ID`) and `close` at once.
"""

import json
import time
import uuid
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy import orm

from app import models
from app.queue import sql, states

RETRY_MS = 2000
BATCH = 500


def event_dict(row) -> dict:
    """Return an event row as the API shows it."""
    return {
        "id": row.id,
        "task_id": str(row.task_id),
        "attempt": row.attempt,
        "kind": row.kind,
        "data": row.data or {},
        "created_at": row.created_at.isoformat(),
    }


def format_event(kind: str, data: dict, event_id: int | None = None) -> str:
    """Return one SSE message."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


def events(
    sessions: orm.sessionmaker,
    task_id: uuid.UUID,
    after: int,
    poll_seconds: float,
    heartbeat_seconds: float,
    clock=time.monotonic,
) -> Iterator[str]:
    """Yield the SSE text of a task's events after sequence id `after`, until it has ended."""
    yield f"retry: {RETRY_MS}\n\n"
    quiet_since = clock()
    while True:
        with sessions() as session:
            # Status first, rows second: a terminal status is committed with its event, so if
            # the status read is terminal, the rows read after it include that event.
            status = session.scalar(sa.select(models.Task.status).where(models.Task.id == task_id))
            rows = session.execute(sql.events_after(task_id, after, BATCH)).all()
        for row in rows:
            yield format_event(row.kind, event_dict(row), row.id)
            after = row.id
        if rows:
            quiet_since = clock()
            if len(rows) == BATCH:
                continue
        if status is None or status in states.TERMINAL:
            yield format_event("close", {"task_id": str(task_id), "status": status or "deleted"})
            return
        if clock() - quiet_since >= heartbeat_seconds:
            yield ": heartbeat\n\n"
            quiet_since = clock()
        time.sleep(poll_seconds)
