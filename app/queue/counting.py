"""Counting task events into the Prometheus totals, a batch each sweeper round: attempts
started and their queue wait, retries and lease rescues, tasks finished and their run time.

The job reads the status events after its cursor (`metric_cursors`), oldest first, up to the
first one written less than `LAG_SECONDS` ago (so an event committed a moment late is not
skipped), adds what they count to `metric_totals` and moves the cursor, in one transaction
that holds the cursor's row: each event is counted once, whichever sweeper runs. Events of
tasks already purged are not counted. The same pass adds tasks finished (by pool and outcome)
and first-attempt queue waits to per-minute counts (`metric_minutes`, kept MINUTES_KEPT) that
the dashboard's overview charts.
"""

import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from app.models import Status
from app.queue import cursors, lifecycle, sql, totals

CURSOR = "events"
BATCH = 5000
# Rounds of BATCH events at most per sweep, so a backlog is caught up over a few sweeps.
MAX_BATCHES = 10
LAG_SECONDS = 2.0
# Bucket bounds (seconds): run time spans from no-op tasks to hour-long renders, queue wait
# from an idle pool's milliseconds to a backlog's minutes.
RUN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
MINUTES_KEPT = datetime.timedelta(days=2)


def count_events(session_factory: orm.sessionmaker) -> int:
    """Count the events written since the last call, in batches; return how many."""
    counted = 0
    with session_factory() as session:
        session.execute(sql.forget_minutes(lifecycle.now() - MINUTES_KEPT))
        session.commit()
    for _ in range(MAX_BATCHES):
        with session_factory() as session:
            done = count_batch(session)
            session.commit()
        counted += done
        if done < BATCH:
            break
    return counted


def count_batch(session: orm.Session, lag_seconds: float = LAG_SECONDS) -> int:
    """Count up to BATCH events after the cursor into the totals and move the cursor past
    them; return how many. The caller commits."""
    ready = cursors.ready_events(session, CURSOR, sql.status_events_after(), BATCH, lag_seconds)
    if not ready:
        return 0
    deltas, minutes = totals.Deltas(), totals.Minutes()
    for row in ready:
        count(deltas, row)
        count_minute(minutes, row)
    deltas.write(session)
    minutes.write(session)
    cursors.move(session, CURSOR, ready[-1].id)
    return len(ready)


def count(deltas: totals.Deltas, row: sa.Row) -> None:
    """Add what one status event counts (`sql.status_events_after`'s row) to `deltas`."""
    status, error = row.data.get("status"), row.data.get("error") or {}
    if status == Status.RUNNING:
        deltas.add("conveyor_task_attempts_total", {"type": row.type})
        if row.attempt == 1:
            deltas.observe("conveyor_task_queue_wait_seconds", {"pool": row.pool}, _waited(row), WAIT_BUCKETS)
    if error.get("type") == "LeaseExpired":
        deltas.add("conveyor_lease_rescues_total", {"pool": row.pool})
    if status == Status.QUEUED and error:
        deltas.add("conveyor_task_retries_total", {"type": row.type})
    if status in TERMINAL:
        deltas.add("conveyor_tasks_finished_total", {"type": row.type, "outcome": status})
        if status != Status.CANCELLED and row.started_at is not None and row.attempt == row.task_attempt:
            seconds = (row.created_at - row.started_at).total_seconds()
            deltas.observe("conveyor_task_run_duration_seconds", {"type": row.type}, seconds, RUN_BUCKETS)


def count_minute(minutes: totals.Minutes, row: sa.Row) -> None:
    """Add what one status event counts for the charts to its minute: a task finished (by pool
    and outcome), a first attempt's queue wait (by pool)."""
    status = row.data.get("status")
    if status == Status.RUNNING and row.attempt == 1:
        minutes.observe(
            row.created_at, "conveyor_task_queue_wait_seconds", {"pool": row.pool}, _waited(row), WAIT_BUCKETS
        )
    if status in TERMINAL:
        minutes.add(row.created_at, "conveyor_tasks_finished_total", {"pool": row.pool, "outcome": status})


def _waited(row: sa.Row) -> float:
    # From submit (or a later run_at asked at submit) to the first start. After a retry the
    # task's run_at is the retry's, so only a first attempt's own run_at is read.
    due = row.task_created_at
    if row.task_attempt == 1 and row.run_at > due:
        due = row.run_at
    return (row.created_at - due).total_seconds()
