"""Account quotas checked by every submit, whatever the path (API, dashboard, CLI, or a child
task submitted by a processor): an account at its `max_waiting` gets QuotaExceeded.

The check counts, then the caller inserts: two submits racing at the quota's edge may both
pass, so the quota can be exceeded by the number of concurrent submits (a few, one each).
Making it exact would serialize every submit of an account on a lock; a soft edge is the
better trade for a flood guard.
"""

import uuid

from sqlalchemy import orm

from app.queue import errors, sql

MAX_WAITING = "max_waiting"


def check_waiting(session: orm.Session, account_id: uuid.UUID, default: int, adding: int = 1) -> None:
    """Raise QuotaExceeded if `adding` more waiting tasks would take the account over its
    quota (its own `max_waiting`, else `default`): a batch is refused whole."""
    row = session.execute(sql.waiting_quota(account_id, default)).one()
    if row.waiting + adding > row.cap:
        raise errors.QuotaExceeded(MAX_WAITING, row.cap, row.waiting)
