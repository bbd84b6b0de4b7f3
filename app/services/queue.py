"""Queue administration: status, stop and start (queue, pool or type), cleanup, limits."""

import datetime
import logging
import statistics

import sqlalchemy as sa

from app import models, runtime
from app.extensions import db
from app.models import Priority, Status
from app.queue import control, health, lifecycle, sql, sweeper
from app.services import errors
from processors.policy import POOLS

log = logging.getLogger("conveyor.queue")

# A worker is listed as seen if it touched a task this recently.
WORKERS_SEEN_SECONDS = 600
# Duration statistics read this many of the latest successful tasks.
DURATION_SAMPLE = 1000


def status() -> dict:
    """Return counts by status, type and priority, running tasks, workers seen and idle,
    controls and oldest wait, and the processes with a heartbeat in this var folder (with the
    restart counts of `manage.py run`)."""
    task = models.Task
    by_status = dict(db.session.execute(sa.select(task.status, sa.func.count()).group_by(task.status)).all())
    by_type = {}
    for type_, status_, count in db.session.execute(
        sa.select(task.type, task.status, sa.func.count()).group_by(task.type, task.status)
    ):
        by_type.setdefault(type_, {})[status_] = count
    waiting = db.session.execute(
        sa.select(task.priority, sa.func.count()).where(task.status == Status.QUEUED).group_by(task.priority)
    ).all()
    oldest = db.session.scalar(sa.select(sa.func.min(task.created_at)).where(task.status == Status.QUEUED))
    running = db.session.execute(
        sa.select(task.id, task.type, task.attempt, task.progress, task.stage, task.worker, task.started_at)
        .where(task.status == Status.RUNNING)
        .order_by(task.started_at)
    ).all()
    since = lifecycle.now() - datetime.timedelta(seconds=WORKERS_SEEN_SECONDS)
    workers = db.session.execute(
        sa.select(task.worker, task.pool, sa.func.max(task.updated_at))
        .where(task.worker.is_not(None), task.updated_at >= since)
        .group_by(task.worker, task.pool)
        .order_by(task.worker)
    ).all()
    return {
        "workers": [{"worker": w, "pool": p, "last_seen": seen} for w, p, seen in workers],
        "idle_workers": idle_workers(),
        "durations": durations(),
        "by_status": {str(s): by_status.get(str(s), 0) for s in Status},
        "by_type": by_type,
        "waiting_by_priority": {Priority(p).name.lower(): n for p, n in waiting},
        "oldest_waiting_seconds": (lifecycle.now() - oldest).total_seconds() if oldest else None,
        "running": [dict(row._mapping) for row in running],
        "paused": control.paused(db.session),
        "limits": control.limits(db.session),
        "processes": processes(),
    }


def processes() -> list[dict]:
    """The workers, sweepers and `run` supervisors that write heartbeats in this machine's var
    folder (every machine's, when the folder is shared), with their health."""
    fields = ("role", "hostname", "pid", "state", "healthy", "age_seconds", "problem", "children")
    var_dir = runtime.current().settings["CONVEYOR_VAR_DIR"]
    return [{name: record[name] for name in fields if name in record} for record in health.records(var_dir)]


def idle_workers() -> dict[str, int] | None:
    """Per pool, the worker processes waiting on PostgreSQL for its work right now (see
    `queue.listen`); None where workers do not wait so (SQLite, or a linger time of 0)."""
    if not runtime.current().listening:
        return None
    return {pool: sessions for pool, sessions in db.session.execute(sql.waiting_by_pool())}


def durations(sample: int = DURATION_SAMPLE) -> dict[str, dict]:
    """Per type, run-time statistics (seconds) of the most recent successful tasks."""
    task = models.Task
    rows = db.session.execute(
        sa.select(task.type, task.started_at, task.finished_at)
        .where(task.status == Status.SUCCEEDED, task.started_at.is_not(None), task.finished_at.is_not(None))
        .order_by(task.finished_at.desc())
        .limit(sample)
    ).all()
    by_type: dict[str, list[float]] = {}
    for type_, started, finished in rows:
        by_type.setdefault(type_, []).append((finished - started).total_seconds())
    stats = {}
    for type_, values in sorted(by_type.items()):
        values.sort()
        stats[type_] = {
            "count": len(values),
            "mean": round(statistics.fmean(values), 3),
            "p50": round(values[len(values) // 2], 3),
            "p95": round(values[min(len(values) - 1, int(len(values) * 0.95))], 3),
            "max": round(values[-1], 3),
        }
    return stats


def _scope(pool: str | None, type: str | None) -> tuple[str, str]:
    if pool and type:
        raise errors.Invalid("give a pool or a type, not both", {"pool": ["give a pool or a type, not both"]})
    if pool:
        if pool not in POOLS:
            raise errors.Invalid(f"unknown pool {pool!r}", {"pool": [f"must be one of: {', '.join(POOLS)}"]})
        return "pool", pool
    if type:
        if type not in runtime.current().registry:
            raise errors.Invalid(f"unknown task type {type!r}", {"type": ["unknown task type"]})
        return "type", type
    return "queue", "*"


def stop(pool: str | None = None, type: str | None = None) -> dict:
    """Pause the whole queue, a pool or a type; running tasks finish, no new ones start."""
    scope, name = _scope(pool, type)
    control.set_paused(db.session, scope, name, True)
    db.session.commit()
    return {"scope": scope, "name": name, "paused": True}


def start(pool: str | None = None, type: str | None = None) -> dict:
    """Resume what `stop` paused, and wake every pool for the tasks that may now start."""
    scope, name = _scope(pool, type)
    control.set_paused(db.session, scope, name, False)
    db.session.commit()
    conveyor = runtime.current()
    woken = _wake_due(conveyor)
    return {"scope": scope, "name": name, "paused": False, "woken": woken}


def set_limit(type: str, limit: int | None) -> dict:
    """Cap how many tasks of `type` run at once (None: no cap)."""
    _scope(None, type)
    try:
        control.set_limit(db.session, type, limit)
    except ValueError as exc:
        raise errors.Invalid(str(exc), {"limit": [str(exc)]}) from exc
    db.session.commit()
    if limit:
        _wake_due(runtime.current())
    return {"type": type, "limit": limit}


def cleanup(stuck_after: float | None = None) -> list[dict]:
    """Rescue expired leases (and tasks silent for `stuck_after` s); report each task."""
    conveyor = runtime.current()
    report = sweeper.cleanup(conveyor.sessions, conveyor.registry, stuck_after)
    _wake_due(conveyor)
    return report


def _wake_due(conveyor) -> dict[str, int]:
    # The change is committed; if the broker is down the sweeper publishes these later.
    try:
        ahead = conveyor.settings["CONVEYOR_WAKE_AHEAD"]
        limit = conveyor.settings["CONVEYOR_ACCOUNT_MAX_RUNNING"]
        return sweeper.wake_due(db.session, conveyor.wake, conveyor.backlog, ahead, conveyor.notify_waiting, limit)
    except Exception:
        log.warning("could not publish wake-ups; the sweeper will", exc_info=True)
        return {}
