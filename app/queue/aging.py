"""Priority aging: a waiting task rises one level per `CONVEYOR_AGING_SECONDS` it has been due,
so `low` never starves under a stream of `normal`.

The sweeper stores the raised level in `effective_priority`, which the claim orders by, so the
claim stays one index scan; the level lags by at most one sweep. A task put back in line (a
retry) starts again from its own priority.
"""

import datetime

from sqlalchemy import orm

from app.models import Priority
from app.queue import sql

LEVELS = len(Priority) - 1  # the most a task can rise: from low to urgent


def age(session: orm.Session, seconds: float, now: datetime.datetime) -> int:
    """Raise the waiting tasks due for `seconds` or more; return how many rose (0: aging off)."""
    if seconds <= 0:
        return 0
    risen = 0
    for levels in range(LEVELS, 0, -1):
        due_before = now - datetime.timedelta(seconds=levels * seconds)
        risen += session.execute(sql.age_waiting(levels, due_before)).rowcount
    return risen
