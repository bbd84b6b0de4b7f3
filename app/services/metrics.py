"""Prometheus metrics: what `GET /metrics` answers, and the HTTP request counts behind it.

Everything is read from the database at scrape time, so every API process answers the same
and no multiprocess folder is needed:

- queue state, now: tasks waiting and running by pool, type and priority; the oldest due
  task's wait per pool; running attempts per type and account; paused scopes; idle workers
  (PostgreSQL; declared with no sample on SQLite);
- counters and histograms, from `metric_totals`: what the sweeper counted from task events
  (`app.queue.counting`), and the HTTP requests each API process adds every
  `FLUSH_SECONDS` (`HttpMeter`).

Labels are bounded: pools, types, priorities, outcomes, account names, route templates (never
a task id), methods and status codes.
"""

import threading
import time

import prometheus_client
import sqlalchemy as sa
from prometheus_client import core

from app import models
from app.extensions import db
from app.models import Priority, Status
from app.queue import control, lifecycle, sql, totals

# An API process adds its request counts to the totals at most this often (and on a scrape).
FLUSH_SECONDS = 5.0
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# What each counted series is, for the exposition's HELP lines; a histogram by its base name.
HELP = {
    "conveyor_tasks_finished_total": "Tasks that ended, by type and outcome (succeeded, failed, cancelled).",
    "conveyor_task_attempts_total": "Attempts started, by type.",
    "conveyor_task_retries_total": "Attempts that failed and were requeued for another try, by type.",
    "conveyor_lease_rescues_total": "Attempts whose worker stopped renewing the lease, ended by the sweeper, by pool.",
    "conveyor_http_requests_total": "HTTP requests answered, by route template, method and status code.",
    "conveyor_webhook_deliveries_total": "Webhook delivery attempts, by outcome (delivered, retried, failed).",
    "conveyor_task_run_duration_seconds": "Run time of a task's last attempt (succeeded or failed), by type.",
    "conveyor_task_queue_wait_seconds": "Time from submit (or run_at) to the first attempt's start, by pool.",
    "conveyor_http_request_duration_seconds": "Time to answer an HTTP request, by route template and method.",
    "conveyor_schedule_fires_total": "Schedule fire times handled, by outcome (created, skipped, refused).",
}
HISTOGRAMS = (
    "conveyor_task_run_duration_seconds",
    "conveyor_task_queue_wait_seconds",
    "conveyor_http_request_duration_seconds",
)


def exposition() -> bytes:
    """Return the metrics in Prometheus' text format."""
    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    registry.register(_Families(queue_state() + counted()))
    return prometheus_client.generate_latest(registry)


class _Families:
    """A collector that yields metric families already read."""

    def __init__(self, families: list):
        self.families = families

    def collect(self):
        return iter(self.families)


def queue_state() -> list:
    """Return the gauges of the queue as it is now."""
    session, at = db.session, lifecycle.now()
    families = [
        _task_counts(session),
        _oldest_waiting(session, at),
        _running_by_account(session),
        _paused(session),
        _idle_workers(session),
    ]
    session.rollback()  # end the read transaction
    return families


def _task_counts(session) -> core.GaugeMetricFamily:
    family = core.GaugeMetricFamily(
        "conveyor_tasks", "Tasks waiting or running now, by status, pool, type and priority.",
        labels=["status", "pool", "type", "priority"],
    )  # fmt: skip
    t = models.Task
    for status in (Status.QUEUED, Status.RUNNING):
        # One status a query: each reads its own partial index, never the finished history.
        query = (
            sa.select(t.pool, t.type, t.priority, sa.func.count())
            .where(t.status == status)
            .group_by(t.pool, t.type, t.priority)
        )
        for pool, type_, priority, number in session.execute(query):
            family.add_metric([status, pool, type_, Priority(priority).name.lower()], number)
    return family


def _oldest_waiting(session, at) -> core.GaugeMetricFamily:
    family = core.GaugeMetricFamily(
        "conveyor_oldest_waiting_seconds", "How long the longest-waiting due task of each pool has waited.",
        labels=["pool"],
    )  # fmt: skip
    t = models.Task
    query = sa.select(t.pool, sa.func.min(t.run_at)).where(t.status == Status.QUEUED, t.run_at <= at).group_by(t.pool)
    for pool, due in session.execute(query):
        family.add_metric([pool], max(0.0, (at - _aware(due)).total_seconds()))
    return family


def _aware(moment):
    # SQLite's min() hands back the stored text's datetime without the column's type.
    return models.UTCDateTime().process_result_value(moment, None) if moment.tzinfo is None else moment


def _running_by_account(session) -> core.GaugeMetricFamily:
    family = core.GaugeMetricFamily(
        "conveyor_running_tasks", "Attempts running now, by type and account.", labels=["type", "account"]
    )
    t, a = models.Task, models.Account
    query = (
        sa.select(t.type, a.name, sa.func.count())
        .join(a, a.id == t.account_id)
        .where(t.status == Status.RUNNING)
        .group_by(t.type, a.name)
    )
    for type_, account, number in session.execute(query):
        family.add_metric([type_, account], number)
    return family


def _paused(session) -> core.GaugeMetricFamily:
    family = core.GaugeMetricFamily(
        "conveyor_paused", "1 for each paused scope: the whole queue, a pool or a type.", labels=["scope", "name"]
    )
    for item in control.paused(session):
        family.add_metric([item["scope"], item["name"] if item["scope"] != "queue" else ""], 1)
    return family


def _idle_workers(session) -> core.GaugeMetricFamily:
    family = core.GaugeMetricFamily(
        "conveyor_idle_workers", "Worker processes waiting on PostgreSQL for their pool's next task.", labels=["pool"]
    )
    if session.get_bind().dialect.name != "postgresql":
        return family  # waiting workers are PostgreSQL sessions: none on SQLite
    for pool, sessions in session.execute(sql.waiting_by_pool()):
        family.add_metric([pool], sessions)
    return family


def counted() -> list:
    """Return the counters and histograms kept in `metric_totals`."""
    METER.flush()
    rows = db.session.execute(sa.select(models.MetricTotal.name, models.MetricTotal.labels, models.MetricTotal.value))
    series: dict[str, list] = {}
    for name, labels, value in rows:
        series.setdefault(_family_of(name), []).append((name, totals.decode(labels), value))
    db.session.rollback()
    return [_family(name, found) for name, found in sorted(series.items())]


def _family_of(name: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name.removesuffix(suffix) in HISTOGRAMS:
            return name.removesuffix(suffix)
    return name


def _family(name: str, found: list):
    help_text = HELP.get(name, name)
    if name not in HISTOGRAMS:
        names = _label_names(found)
        family = core.CounterMetricFamily(name, help_text, labels=names)
        for _, labels, value in sorted(found, key=lambda item: sorted(item[1].items())):
            family.add_metric([labels.get(k, "") for k in names], value)
        return family
    return _histogram(name, help_text, found)


def _label_names(found: list) -> list[str]:
    return sorted({key for _, labels, _ in found for key in labels if key != "le"})


def _histogram(name: str, help_text: str, found: list) -> core.HistogramMetricFamily:
    names = _label_names(found)
    family = core.HistogramMetricFamily(name, help_text, labels=names)
    by_labels: dict[tuple, dict] = {}
    for series, labels, value in found:
        key = tuple(labels.get(k, "") for k in names)
        entry = by_labels.setdefault(key, {"buckets": {}, "sum": 0.0})
        if series.endswith("_bucket"):
            entry["buckets"][labels["le"]] = value
        elif series.endswith("_sum"):
            entry["sum"] = value
    for key, entry in sorted(by_labels.items()):
        buckets = sorted(entry["buckets"].items(), key=lambda item: float(item[0]))
        family.add_metric(list(key), buckets, entry["sum"])
    return family


class HttpMeter:
    """This process's HTTP request counts since its last flush into `metric_totals`."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pending = totals.Deltas()
        self._flushed_at = time.monotonic()

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request; flush into the totals if the last flush is FLUSH_SECONDS old."""
        with self._lock:
            self._pending.add("conveyor_http_requests_total", {"route": route, "method": method, "status": str(status)})
            labels = {"route": route, "method": method}
            self._pending.observe("conveyor_http_request_duration_seconds", labels, seconds, HTTP_BUCKETS)
            due = time.monotonic() - self._flushed_at >= FLUSH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        """Add the counts to the totals on a connection of its own; keep them for the next try
        if the database does not answer."""
        with self._lock:
            pending, self._pending = self._pending, totals.Deltas()
            self._flushed_at = time.monotonic()
        if not pending:
            return
        try:
            with db.engine.begin() as connection:
                pending.write(connection)
        except sa.exc.SQLAlchemyError:
            with self._lock:
                pending.merge(self._pending)
                self._pending = pending


# One meter per process (each gunicorn worker has its own, flushing into the same totals).
METER = HttpMeter()
