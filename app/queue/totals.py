"""The durable totals behind the Prometheus counters and histograms (`metric_totals`): a batch
of increments gathered in memory (`Deltas`) and added to the table in one statement.

A series is a metric name and its labels (stored as sorted JSON). A histogram is kept as its
cumulative `_bucket` series (one per bound `le`, and `+Inf`), `_sum` and `_count`, as the
exposition format has them, so a scrape reads it back as it is.
"""

import datetime
import json
import math

import sqlalchemy as sa
from sqlalchemy import orm

from app.queue import sql


class Deltas:
    """Increments of many series, summed before they are written."""

    def __init__(self):
        self.values: dict[tuple[str, str], float] = {}

    def add(self, name: str, labels: dict[str, str], amount: float = 1.0) -> None:
        """Add `amount` to the series `name{labels}`."""
        key = (name, encode(labels))
        self.values[key] = self.values.get(key, 0.0) + amount

    def observe(self, name: str, labels: dict[str, str], value: float, buckets: tuple[float, ...]) -> None:
        """Count one observation of histogram `name`: every bucket whose bound holds it, the
        sum and the count."""
        value = max(0.0, value)
        for bound in (*buckets, math.inf):
            if value <= bound:
                self.add(f"{name}_bucket", {**labels, "le": _bound(bound)})
        self.add(f"{name}_sum", labels, value)
        self.add(f"{name}_count", labels)

    def merge(self, other: "Deltas") -> None:
        """Add another batch's increments to this one (a flush that failed is kept this way)."""
        for key, amount in other.values.items():
            self.values[key] = self.values.get(key, 0.0) + amount

    def __bool__(self) -> bool:
        return bool(self.values)

    def write(self, executor: sa.Connection | orm.Session) -> None:
        """Add every increment to its series in one statement (the caller commits)."""
        if not self.values:
            return
        bind = executor.get_bind() if isinstance(executor, orm.Session) else executor
        rows = [{"name": name, "labels": labels, "value": value} for (name, labels), value in self.values.items()]
        executor.execute(sql.add_to_totals(bind.dialect.name), rows)


class Minutes:
    """Increments of series per UTC minute (`metric_minutes`), for the dashboard's charts. A
    histogram is kept as the count of each bucket alone (not cumulative): one row per bucket
    a minute's observations fell in."""

    def __init__(self):
        self.values: dict[tuple[datetime.datetime, str, str], float] = {}

    def add(self, at: datetime.datetime, name: str, labels: dict[str, str], amount: float = 1.0) -> None:
        """Add `amount` to the series `name{labels}` in the minute of `at`."""
        key = (at.replace(second=0, microsecond=0), name, encode(labels))
        self.values[key] = self.values.get(key, 0.0) + amount

    def observe(self, at: datetime.datetime, name: str, labels: dict, value: float, buckets: tuple) -> None:
        """Count one observation in the first bucket whose bound holds it."""
        bound = next((b for b in buckets if value <= b), math.inf)
        self.add(at, f"{name}_bucket", {**labels, "le": _bound(bound)})

    def write(self, session: orm.Session) -> None:
        """Add every increment to its minute's series in one statement (the caller commits)."""
        if not self.values:
            return
        rows = [{"minute": at, "name": n, "labels": labels, "value": v} for (at, n, labels), v in self.values.items()]
        session.execute(sql.add_to_minutes(session.get_bind().dialect.name), rows)


def encode(labels: dict[str, str]) -> str:
    """Return labels as the table keeps them: sorted JSON."""
    return json.dumps(labels, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def decode(labels: str) -> dict[str, str]:
    """Return the labels of a stored series."""
    return json.loads(labels) if labels else {}


def _bound(bound: float) -> str:
    # The exposition format's spelling of a bucket bound: "0.5", "10.0", "+Inf".
    return "+Inf" if math.isinf(bound) else repr(float(bound))
