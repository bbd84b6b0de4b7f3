"""The sweeper: rescues attempts whose lease expired (their worker died) and publishes
wake-ups for waiting tasks that could start now but have no message on the broker (lost
from Redis, spent while the queue was paused, or due after a backoff). It also keeps the fair
share's pool clocks, ages waiting tasks (`aging`), fires the due schedules (`schedules`),
counts task events into the metrics' totals (`counting`) and deletes finished tasks past
their keep time (`retention`). One runs at a time, under an advisory
lock; others wait as standbys. It outlives database and broker outages: a failed round is
retried with backoff, on a new connection.
"""

import datetime
import logging
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy import orm

from app.models import Status
from app.queue import aging, control, counting, errors, health, lifecycle, lock, retention, schedules, sql
from processors import registry as registry_module

log = logging.getLogger("conveyor.sweeper")
ROLE = "sweeper"  # its heartbeat's name (`health`)
# Longest pause between tries while rounds fail (or the sweep interval, if longer): a failed
# try is one refused connection, cheap, and a longer pause would add itself to the rescue of
# every lease that expired during an outage.
MAX_BACKOFF_SECONDS = 1.0
STATE_LINES = {"active": "holding the sweeper lock", "standby": "another sweeper holds the lock; standing by"}


def rescue_expired(session: orm.Session, registry: registry_module.Registry) -> list[dict]:
    """End every attempt whose lease expired: cancelled if a cancel was asked, else retried
    or failed by its type's policy. Return one report item per task."""
    report = []
    at = lifecycle.now()
    for row in session.execute(sql.expired_leases(at)).all():
        try:
            report.append(_rescue(session, registry, row, at))
        except errors.StaleAttempt:
            continue  # its attempt ended between the read and the write
    return report


def _rescue(session: orm.Session, registry: registry_module.Registry, row, at) -> dict:
    item = {"task_id": str(row.id), "type": row.type, "attempt": row.attempt}
    if row.cancel_requested_at is not None:
        lifecycle.end_cancelled(session, row.id, row.attempt, "worker lost after cancel was asked")
        return {**item, "action": "cancelled", "reason": "lease expired after a cancel request"}
    error = {
        "type": "LeaseExpired",
        "retryable": True,
        "message": f"worker {row.worker} stopped renewing its lease (expired {row.lease_until.isoformat()})",
    }
    policy = registry.policy(row.type) if row.type in registry else None
    delay = policy.backoff(row.attempt) if policy else 0.0
    retry_at = lifecycle.fail(session, row.id, row.attempt, row.max_attempts, error, True, delay)
    if retry_at is None or retry_at == "cancelled":
        return {**item, "action": retry_at or "failed", "reason": error["message"]}
    return {**item, "action": "requeued", "reason": error["message"], "run_at": retry_at.isoformat()}


def wake_due(
    session: orm.Session,
    wake: Callable,
    backlog: Callable[[str], int],
    ahead: int,
    notify: Callable[[str], bool] | None = None,
    account_max_running: int | None = None,
) -> dict[str, int]:
    """Publish wake-ups so each pool has one message per waiting task that may start now, up
    to `ahead` messages (a worker that takes one runs tasks until the pool is empty). First
    `notify` a worker waiting on the pool (`listen`), if one does. Tasks of an account at its
    running limit (`account_max_running`: the default) are not counted."""
    published = {}
    limits = control.account_limits(session, account_max_running)
    for pool, count in session.execute(sql.eligible_counts(lifecycle.now(), limits)).all():
        if notify is not None:
            notify(pool)
        missing = min(count, ahead) - backlog(pool)
        if missing > 0:
            wake(pool, missing, None)
            published[pool] = missing
    return published


def keep_order(session: orm.Session, aging_seconds: float) -> int:
    """Advance the pools' fair-share clocks and age the waiting tasks; return how many rose."""
    at = lifecycle.now()
    session.execute(sql.advance_clocks(session.get_bind().dialect.name, at))
    return aging.age(session, aging_seconds, at)


def sweep_once(
    session_factory: orm.sessionmaker,
    registry,
    wake,
    backlog,
    ahead: int,
    notify=None,
    aging_seconds: float = 0.0,
    account_max_running: int | None = None,
    retain: retention.Job | None = None,
    firing: schedules.Firing | None = None,
) -> dict:
    """Run one sweep; return what it did. With `firing`, fire the due schedules too, before
    the wake-ups, so their new tasks are woken in the same round."""
    with session_factory() as session:
        rescued = rescue_expired(session, registry)
        session.commit()
    for item in rescued:
        log.warning("rescued task %s: %s (%s)", item["task_id"], item["action"], item["reason"])
    with session_factory() as session:
        risen = keep_order(session, aging_seconds)
        session.commit()
    fired = _fire(session_factory, registry, firing) if firing is not None else {}
    with session_factory() as session:
        woken = wake_due(session, wake, backlog, ahead, notify, account_max_running)
    counted = _count(session_factory)
    return {
        "rescued": rescued,
        "risen": risen,
        "fired": fired,
        "woken": woken,
        "counted": counted,
        "retained": _retain(retain),
    }


def _count(session_factory: orm.sessionmaker) -> int:
    # The metrics wait for the next round rather than hold up rescues and wake-ups: a failure
    # here is logged, and the round still counts as done.
    try:
        return counting.count_events(session_factory)
    except Exception:
        log.exception("counting task events for the metrics failed; trying again next round")
        return 0


def _retain(job: retention.Job | None) -> retention.Report | None:
    # Like counting: a failed retention pass is logged and tried again next round.
    if job is None:
        return None
    try:
        return job.run(time.monotonic())
    except Exception:
        log.exception("deleting finished tasks past their keep time failed; trying again next round")
        return None


def _fire(session_factory: orm.sessionmaker, registry, firing: schedules.Firing) -> dict[str, int]:
    # As `_count`: schedules wait for the next round rather than hold up rescues and
    # wake-ups; a fire time not fired stays due (nothing of it was committed).
    try:
        return schedules.fire_due(session_factory, registry, firing)
    except Exception:
        log.exception("firing the due schedules failed; trying again next round")
        return {}


def loop(
    session_factory,
    engine: sa.Engine,
    var_dir: str,
    registry,
    wake,
    backlog,
    ahead: int,
    interval: float,
    should_stop: Callable[[], bool] = lambda: False,
    notify: Callable[[str], bool] | None = None,
    aging_seconds: float = 0.0,
    account_max_running: int | None = None,
    retain: retention.Job | None = None,
    firing: schedules.Firing | None = None,
) -> None:
    """Sweep every `interval` seconds while holding the sweeper lock; stand by otherwise.
    A round that fails (the database restarting, the broker gone) is logged and tried again
    with backoff (`interval` doubling to `MAX_BACKOFF_SECONDS`, or `interval` if longer); the lock is taken again once
    the database is back. Each round writes the `sweeper` heartbeat (`health`)."""
    holder = lock.Lock(engine, var_dir)
    beat = _Heartbeat(var_dir, interval)
    state = None

    def sweep() -> dict:
        return sweep_once(
            session_factory, registry, wake, backlog, ahead, notify, aging_seconds, account_max_running, retain, firing
        )

    try:
        while not should_stop():
            try:
                new_state = _round(holder, sweep)
            except Exception as exc:
                holder.release()  # a new connection, and the lock taken anew, next round
                beat.failed(exc)
                _sleep(beat.backoff(), should_stop)
                continue
            if new_state != state:
                log.info(STATE_LINES[new_state])
                state = new_state
            beat.succeeded(new_state)
            _sleep(interval, should_stop)
    finally:
        holder.release()
        health.remove(var_dir, ROLE)


def _round(holder: lock.Lock, sweep: Callable[[], dict]) -> str:
    if holder.acquire() and holder.check():
        sweep()
        return "active"
    return "standby"


class _Heartbeat:
    """The sweeper's health record and its failure backoff."""

    def __init__(self, var_dir: str, interval: float):
        self.var_dir = var_dir
        self.interval = interval
        self.stale_after = max(health.STALE_SECONDS, 3 * interval)
        self.failures = 0
        self.last_ok = time.time()

    def succeeded(self, state: str) -> None:
        if self.failures:
            log.info("sweeping again after %d failed round(s)", self.failures)
        self.failures = 0
        self.last_ok = time.time()
        health.beat(self.var_dir, ROLE, state=state, ok=True, stale_after=self.stale_after)

    def failed(self, exc: Exception) -> None:
        self.failures += 1
        first_line = next(iter(str(exc).strip().splitlines()), "")
        problem = f"{type(exc).__name__}: {first_line}"[:300]
        if self.failures == 1:
            log.exception("sweep failed; retrying with backoff")
        else:
            log.warning("sweep failed (%d in a row): %s; next try in %.1fs", self.failures, problem, self.backoff())
        serving = time.time() - self.last_ok <= self.stale_after
        health.beat(self.var_dir, ROLE, state="retrying", ok=serving, problem=problem, stale_after=self.stale_after)

    def backoff(self) -> float:
        return min(max(MAX_BACKOFF_SECONDS, self.interval), self.interval * 2 ** max(0, self.failures - 1))


def _sleep(seconds: float, should_stop: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not should_stop() and time.monotonic() < deadline:
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


def cleanup(session_factory: orm.sessionmaker, registry, stuck_after: float | None = None) -> list[dict]:
    """Admin cleanup: rescue expired leases now, and end running tasks whose heartbeat is older
    than `stuck_after` seconds even if their lease says otherwise. Return each task handled."""
    with session_factory() as session:
        report = rescue_expired(session, registry)
        if stuck_after is not None:
            report += _fail_stuck(session, registry, stuck_after)
        session.commit()
    return report


def _fail_stuck(session: orm.Session, registry, stuck_after: float) -> list[dict]:
    limit = lifecycle.now() - datetime.timedelta(seconds=stuck_after)
    table = sql.tasks
    query = (
        sa.select(table)
        .where(table.c.status == Status.RUNNING, table.c.heartbeat_at < limit)
        .with_for_update(skip_locked=True)
    )
    report = []
    for row in session.execute(query).all():
        try:
            report.append(_rescue(session, registry, row, lifecycle.now()))
        except errors.StaleAttempt:
            continue
    return report
