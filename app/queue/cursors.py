"""Named cursors over the task events (`metric_cursors`): a job that must see each event once
(the metrics' counting, the webhooks' fan-out) reads the events after its cursor, holding the
cursor's row until its transaction ends, and moves the cursor in that same transaction."""

import datetime
import itertools

import sqlalchemy as sa
from sqlalchemy import orm

from app.queue import lifecycle, sql


def ready_events(session: orm.Session, name: str, statement: sa.Select, limit: int, lag_seconds: float) -> list:
    """Return up to `limit` rows of `statement` (binds `after`, `limit`) after cursor `name`,
    up to the first one written less than `lag_seconds` ago (an event committed a moment late
    is then not skipped). Holds the cursor's row (PostgreSQL) until the transaction ends."""
    position = _position(session, name)
    rows = session.execute(statement, {"after": position, "limit": limit}).all()
    until = lifecycle.now() - datetime.timedelta(seconds=lag_seconds)
    return list(itertools.takewhile(lambda row: row.created_at < until, rows))


def move(session: orm.Session, name: str, position: int) -> None:
    """Move cursor `name` to the event id `position` (the caller commits)."""
    moved = {"cursor_name": name, "cursor_position": position, "cursor_at": lifecycle.now()}
    session.execute(sql.move_cursor(), moved)


def _position(session: orm.Session, name: str) -> int:
    made = {"cursor_name": name, "cursor_at": lifecycle.now()}
    session.execute(sql.add_cursor(session.get_bind().dialect.name), made)
    return session.execute(sql.cursor_position(), {"cursor_name": name}).scalar_one()
