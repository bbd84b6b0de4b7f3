"""Submit rules by account and role, shared by every submit path: the waiting quota's refusal
as the API and CLI report it, and priority by role (`urgent` needs an account admin, an
operator, or an account allowed it with `manage.py accounts set NAME --allow-urgent`).

The waiting quota itself is counted in the queue core (`app.queue.quota`), where child tasks
submitted by processors pass too; this module turns its refusal into a 429 `quota`.
"""

import uuid

from app import models
from app.extensions import db
from app.models import Priority
from app.queue import errors as queue_errors
from app.queue import lifecycle
from app.services import errors

# Roles that may use every priority; None is the platform itself (the CLI).
URGENT_ROLES = (None, "operator", "admin")


def check_priority(priority: str | int | None, role: str | None, account_id: uuid.UUID) -> None:
    """Raise Forbidden, naming `priority`, if the role may not ask for this priority in the
    account. An unknown priority is left for the submit to report."""
    if role in URGENT_ROLES or priority is None:
        return
    try:
        number = lifecycle.parse_priority(priority, "normal")
    except ValueError:
        return
    if number != Priority.URGENT:
        return
    account = db.session.get(models.Account, account_id)
    if account is not None and account.allow_urgent:
        return
    message = "priority urgent needs an account admin, or an account allowed urgent tasks"
    raise errors.Forbidden(message, {"priority": ["urgent needs an account admin or --allow-urgent"]})


def refused(exc: queue_errors.QuotaExceeded) -> errors.QuotaExceeded:
    """Return the service error (429 `quota`) for the queue core's refusal."""
    fields = {exc.quota: [f"at most {exc.limit} waiting tasks"]}
    return errors.QuotaExceeded(str(exc), fields, quota=exc.quota, limit=exc.limit, current=exc.current)
