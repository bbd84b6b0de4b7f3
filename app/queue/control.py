"""Durable queue controls: pause and resume the whole queue, a pool or a type, and cap a
type's concurrency. Stored in `queue_controls`, so they hold with no worker online and across
restarts; the claim statement reads them.
"""

import sqlalchemy as sa
from sqlalchemy import orm

from app import models
from app.queue import sql

SCOPES = ("queue", "pool", "type")


def _row(session: orm.Session, scope: str, name: str) -> models.QueueControl:
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    query = sa.select(models.QueueControl).where(models.QueueControl.scope == scope, models.QueueControl.name == name)
    row = session.scalars(query.with_for_update()).first()
    if row is None:
        row = models.QueueControl(scope=scope, name=name, paused=False)
        session.add(row)
    return row


def set_paused(session: orm.Session, scope: str, name: str, paused: bool) -> models.QueueControl:
    """Pause or resume the queue (`scope="queue", name="*"`), a pool or a type."""
    row = _row(session, scope, name)
    row.paused = paused
    row.updated_at = models.utcnow()
    session.flush()
    return row


def set_limit(session: orm.Session, task_type: str, limit: int | None) -> models.QueueControl:
    """Cap how many tasks of a type run at once; None removes the cap."""
    if limit is not None and limit < 0:
        raise ValueError("limit must be 0 or more")
    row = _row(session, "type", task_type)
    row.concurrency_limit = limit
    row.updated_at = models.utcnow()
    session.flush()
    return row


def paused(session: orm.Session) -> list[dict]:
    """Return what is paused, as `{scope, name}` items."""
    query = (
        sa.select(models.QueueControl)
        .where(models.QueueControl.paused)
        .order_by(models.QueueControl.scope, models.QueueControl.name)
    )
    return [{"scope": row.scope, "name": row.name} for row in session.scalars(query)]


def limits(session: orm.Session) -> dict[str, int]:
    """Return the concurrency limit of each limited type."""
    query = sa.select(models.QueueControl.name, models.QueueControl.concurrency_limit).where(
        models.QueueControl.scope == "type", models.QueueControl.concurrency_limit.is_not(None)
    )
    return {name: limit for name, limit in session.execute(query)}


def account_limits(session: orm.Session, default: int | None) -> sql.AccountLimits | None:
    """Return how claims must hold accounts at their running limit, or None if no account has
    one (and there is no platform default), so the claim skips the check."""
    if not session.scalar(sql.account_limits_set(default)):
        return None
    return sql.AccountLimits(default)
