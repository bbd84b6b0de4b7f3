"""Schedule use cases shared by the API, the CLI and the dashboard: create, list, get, change,
pause, resume and delete schedules, and describe one with its next fire times. The sweeper
fires them (`app.queue.schedules`).

Who sees what (`Scope`): an operator every account's schedules; an account admin every
schedule of its account; a member the schedules it made. A schedule out of scope is a 404.

A schedule is checked as a submit is, when it is created or changed: the type, its params
(the type's own validation, storable JSON, source URLs), the providers it needs, and the
priority the caller's role may use (`quotas.check_priority`: `urgent` needs an admin). When
it fires, the queue core checks again what it checks for every submit (the type, the params,
the priority, the account's waiting quota); the role is not checked again: a schedule keeps
the priority its maker was allowed.
"""

import dataclasses
import datetime
import uuid

import sqlalchemy as sa

from app import models, runtime
from app.extensions import db
from app.queue import lifecycle, timing
from app.queue import schedules as firing_module
from app.services import availability, errors, inputs, quotas, sources
from processors import errors as processor_errors

MISFIRES = ("catch_up", "skip")
MAX_INTERVAL_SECONDS = 366 * 86400
MAX_PER_ACCOUNT = 1000
UPCOMING = 5
# The fields a change may set; `interval` is stored as `interval_seconds`.
FIELDS = ("name", "type", "params", "priority", "cron", "interval", "timezone", "paused", "misfire")
TIMING = ("cron", "interval", "timezone", "paused")


@dataclasses.dataclass(frozen=True)
class Scope:
    """Which schedules a caller may see and change: one account's (None: every account's),
    and within it one user's (None: every user's)."""

    account_id: uuid.UUID | None
    user_id: uuid.UUID | None = None


def scope_of(account_id: uuid.UUID, user_id: uuid.UUID | None, role: str) -> Scope:
    """Return the scope of a caller: operators everything, admins their account, members
    their own schedules."""
    if role == "operator":
        return Scope(None)
    return Scope(account_id, user_id if role == "member" else None)


def firing(settings: dict) -> firing_module.Firing:
    """Return how the sweeper fires schedules under `settings`."""
    return firing_module.Firing(
        grace_seconds=settings["CONVEYOR_SCHEDULE_GRACE_SECONDS"],
        max_waiting=settings["CONVEYOR_ACCOUNT_MAX_WAITING"],
        fair=bool(settings["CONVEYOR_FAIR_SHARE"]),
    )


def create(
    fields: dict, *, account_id: uuid.UUID, user_id: uuid.UUID | None = None, role: str | None = None
) -> models.Schedule:
    """Store a new schedule of the account from `fields` (name, type, params, priority, cron or
    interval, timezone, paused, misfire). `role`: the caller's (None: the platform, e.g. the
    CLI). Raises Invalid naming each bad field, Forbidden naming `priority`, Unavailable, and
    Conflict when the account has MAX_PER_ACCOUNT schedules."""
    defaults = {"params": {}, "priority": None, "cron": None, "interval": None, "timezone": "UTC", "paused": False}
    values = {**defaults, "misfire": "catch_up", **fields}
    _check(values, account_id, role)
    _check_room(account_id)
    at = lifecycle.now()
    schedule = models.Schedule(id=uuid.uuid4(), account_id=account_id, user_id=user_id, created_at=at, updated_at=at)
    _apply(schedule, values)
    schedule.next_fire_at = timing.first_after(schedule, at.replace(microsecond=0))  # whole seconds
    db.session.add(schedule)
    db.session.commit()
    return schedule


def _check_room(account_id: uuid.UUID) -> None:
    count = db.session.scalar(sa.select(sa.func.count()).where(models.Schedule.account_id == account_id))
    if count >= MAX_PER_ACCOUNT:
        message = f"the account has {count} schedules, the most it may have"
        raise errors.Conflict(message, {"name": [f"at most {MAX_PER_ACCOUNT} schedules per account"]})


def find(scope: Scope, limit: int = 100, offset: int = 0) -> list[models.Schedule]:
    """Return the schedules in scope, by name."""
    query = _scoped(sa.select(models.Schedule), scope)
    query = query.order_by(models.Schedule.name, models.Schedule.id).limit(limit).offset(offset)
    return list(db.session.scalars(query))


def count(scope: Scope) -> int:
    """Return how many schedules are in scope."""
    return db.session.scalar(_scoped(sa.select(sa.func.count()).select_from(models.Schedule), scope))


def _scoped(query: sa.Select, scope: Scope) -> sa.Select:
    s = models.Schedule
    if scope.account_id is not None:
        query = query.where(s.account_id == scope.account_id)
    if scope.user_id is not None:
        query = query.where(s.user_id == scope.user_id)
    return query


def get(schedule_id: uuid.UUID | str, scope: Scope) -> models.Schedule:
    """Return a schedule in scope; raise NotFound otherwise."""
    try:
        schedule = db.session.get(models.Schedule, uuid.UUID(str(schedule_id)))
    except ValueError:
        schedule = None
    if schedule is None or not _in_scope(schedule, scope):
        raise errors.NotFound("no such schedule")
    return schedule


def _in_scope(schedule: models.Schedule, scope: Scope) -> bool:
    if scope.account_id is not None and schedule.account_id != scope.account_id:
        return False
    return scope.user_id is None or schedule.user_id == scope.user_id


def update(schedule: models.Schedule, changes: dict, role: str | None = None) -> models.Schedule:
    """Change the given fields (FIELDS) of a schedule, checked as at create. Setting `cron`
    makes it a cron schedule and setting `interval` an interval one; a change of its timing
    (cron, interval, timezone, or a resume) goes on from the first fire time after now."""
    values = {**_current(schedule), **changes}
    if changes.get("cron") is not None and "interval" not in changes:
        values["interval"] = None
    if changes.get("interval") is not None and "cron" not in changes:
        values["cron"] = None
    # The priority is checked against the role only when this change sets it.
    _check(values, schedule.account_id, role if "priority" in changes else None)
    retimed = any(name in changes and values[name] != _current(schedule)[name] for name in TIMING)
    _apply(schedule, values)
    at = lifecycle.now()
    if retimed:
        schedule.next_fire_at = timing.first_after(schedule, at.replace(microsecond=0))  # whole seconds
    schedule.updated_at = at
    db.session.commit()
    return schedule


def _current(schedule: models.Schedule) -> dict:
    values = {name: getattr(schedule, name) for name in FIELDS if name != "interval"}
    return {**values, "interval": schedule.interval_seconds}


def pause(schedule: models.Schedule) -> models.Schedule:
    """Stop firing the schedule until it is resumed."""
    return update(schedule, {"paused": True})


def resume(schedule: models.Schedule) -> models.Schedule:
    """Fire the schedule again, from its first fire time after now (what it would have fired
    while paused is not caught up)."""
    return update(schedule, {"paused": False})


def delete(schedule: models.Schedule) -> None:
    """Delete a schedule; tasks it made stay."""
    db.session.delete(schedule)
    db.session.commit()


def upcoming(schedule: models.Schedule, count: int = UPCOMING) -> list[datetime.datetime]:
    """Return the schedule's next `count` fire times (none while paused)."""
    if schedule.paused:
        return []
    return [schedule.next_fire_at, *timing.upcoming(schedule, schedule.next_fire_at, count - 1)][:count]


def describe(schedule: models.Schedule) -> dict:
    """Return a schedule as plain values, with its next fire times and its account's name."""
    account = db.session.get(models.Account, schedule.account_id)
    values = {name: getattr(schedule, name) for name in FIELDS if name not in ("interval", "priority")}
    return {
        **values,
        "id": schedule.id,
        "account": account.name if account else None,
        "user_id": schedule.user_id,
        "priority": _priority_name(schedule.priority),
        "interval": schedule.interval_seconds,
        "next_fire_at": schedule.next_fire_at,
        "next_fire_times": upcoming(schedule),
        "last_fire_at": schedule.last_fire_at,
        "last_task_id": schedule.last_task_id,
        "last_error": schedule.last_error,
        "created_at": schedule.created_at,
        "updated_at": schedule.updated_at,
    }


def _priority_name(priority: int | None) -> str | None:
    return None if priority is None else models.Priority(priority).name.lower()


def _apply(schedule: models.Schedule, values: dict) -> None:
    schedule.name, schedule.type = values["name"], values["type"]
    schedule.params = values["params"] if values["params"] is not None else {}
    schedule.priority = _priority_number(values["priority"])
    schedule.cron = timing.expand(values["cron"]) if values["cron"] else None
    schedule.interval_seconds = values["interval"]
    schedule.timezone, schedule.paused, schedule.misfire = values["timezone"], values["paused"], values["misfire"]


def _priority_number(priority) -> int | None:
    return None if priority is None else lifecycle.parse_priority(priority, "normal")


# --- checks ----------------------------------------------------------------------------------


def _check(values: dict, account_id: uuid.UUID, role: str | None) -> None:
    """Raise Invalid naming every bad field of a schedule, then what a submit of its task
    would refuse (Forbidden priority, bad source URLs, Unavailable providers)."""
    problems = {**_name_problems(values), **_timing_problems(values), **_task_problems(values)}
    if problems:
        raise errors.Invalid("invalid schedule", problems)
    quotas.check_priority(values["priority"], role, account_id)
    conveyor = runtime.current()
    sources.check(conveyor.registry, values["type"], values["params"], conveyor.settings)
    availability.check(conveyor.registry, values["type"], values["params"], conveyor.settings)


def _name_problems(values: dict) -> dict:
    name = values.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        return {"name": ["from 1 to 200 characters"]}
    why = inputs.text_problem(name)
    return {"name": [why]} if why else {}


def _timing_problems(values: dict) -> dict:
    cron, interval = values.get("cron"), values.get("interval")
    problems = {}
    if (cron is None) == (interval is None):
        problems["cron"] = ["give either cron or interval, not both and not neither"]
    elif cron is not None and (why := _cron_problem(cron)):
        problems["cron"] = [why]
    elif interval is not None and not _interval_ok(interval):
        problems["interval"] = [f"whole seconds from 1 to {MAX_INTERVAL_SECONDS}"]
    if not isinstance(values.get("timezone"), str) or (why := timing.timezone_problem(values["timezone"])):
        problems["timezone"] = [why if isinstance(values.get("timezone"), str) else "an IANA timezone name"]
    if values.get("misfire") not in MISFIRES:
        problems["misfire"] = [f"one of {', '.join(MISFIRES)}"]
    if not isinstance(values.get("paused"), bool):
        problems["paused"] = ["true or false"]
    return problems


def _cron_problem(cron) -> str | None:
    if not isinstance(cron, str) or len(cron) > 200 or inputs.text_problem(cron):
        return "a cron expression of at most 200 characters"
    return timing.cron_problem(cron)


def _interval_ok(interval) -> bool:
    return isinstance(interval, int) and not isinstance(interval, bool) and 1 <= interval <= MAX_INTERVAL_SECONDS


def _task_problems(values: dict) -> dict:
    registry = runtime.current().registry
    if values.get("type") not in registry:
        return {"type": [f"must be one of: {', '.join(registry.types())}"]}
    params = values.get("params")
    if problems := (inputs.json_problems(params) if isinstance(params, dict) else {}):
        return {"params": problems}
    cls = registry.processor_class(values["type"])
    try:
        cls.load_params(params)
    except processor_errors.InvalidParams as exc:
        return {"params": exc.errors}
    return _priority_problems(values.get("priority"))


def _priority_problems(priority) -> dict:
    try:
        _priority_number(priority)
    except ValueError as exc:
        return {"priority": [str(exc)]}
    return {}
