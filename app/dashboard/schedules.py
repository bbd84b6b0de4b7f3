"""The schedules page: the schedules the signed-in caller may see (as `/api/schedules`: a member
its own, an admin its account's, an operator every account's), each with its next fire times
and its last fire, task and error; buttons to pause, resume and delete; a form to create one.
Every action calls `app.services.schedules`, which checks each field as the API does."""

import json

import flask

from app import runtime
from app.dashboard import pages, session
from app.services import errors
from app.services import schedules as schedule_service

blueprint = flask.Blueprint("schedules", __name__)
blueprint.before_request(session.require_caller)
PRIORITIES = ("urgent", "high", "normal", "low")


def _scope() -> schedule_service.Scope:
    caller = session.caller()
    return schedule_service.scope_of(caller.account_id, caller.user_id, caller.role)


@blueprint.route("/schedules")
def list_schedules():
    """Render the schedules page."""
    found = schedule_service.find(_scope(), limit=schedule_service.MAX_PER_ACCOUNT)
    return flask.render_template(
        "dashboard/schedules.html",
        schedules=[schedule_service.describe(schedule) for schedule in found],
        types=runtime.current().registry.types(),
        priorities=PRIORITIES,
        misfires=schedule_service.MISFIRES,
        operator=session.caller().is_operator,
    )


@blueprint.route("/schedules", methods=["POST"])
def create():
    """Create a schedule from the form."""
    caller = session.caller()
    try:
        fields = _fields(flask.request.form)
        schedule = schedule_service.create(
            fields, account_id=caller.account_id, user_id=caller.user_id, role=caller.role
        )
    except errors.ServiceError as exc:
        return pages.done(f"Schedule not created: {exc.message}{_named(exc.errors)}", ".list_schedules", "error")
    return pages.done(f"Created the schedule {schedule.name!r}.", ".list_schedules")


def _fields(form) -> dict:
    """Return a schedule's fields from the create form; Invalid for params that are no JSON
    or an interval that is no whole number."""
    try:
        params = json.loads(form.get("params") or "{}")
    except json.JSONDecodeError:
        raise errors.Invalid("params must be a JSON object", {"params": ["a JSON object"]}) from None
    interval = form.get("interval", "").strip()
    if interval and not interval.isdigit():
        raise errors.Invalid("interval must be whole seconds", {"interval": ["whole seconds"]})
    return {
        "name": form.get("name", "").strip(),
        "type": form.get("type", ""),
        "params": params,
        "priority": form.get("priority") or None,
        "cron": form.get("cron", "").strip() or None,
        "interval": int(interval) if interval else None,
        "timezone": form.get("timezone", "").strip() or "UTC",
        "misfire": form.get("misfire", "catch_up"),
        "paused": form.get("paused") == "on",
    }


def _named(problems: dict) -> str:
    return "" if not problems else " (" + "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in problems.items()) + ")"


@blueprint.route("/schedules/<schedule_id>/pause", methods=["POST"])
def pause(schedule_id: str):
    """Pause a schedule."""
    schedule = schedule_service.pause(schedule_service.get(schedule_id, _scope()))
    return pages.done(f"Paused {schedule.name!r}.", ".list_schedules")


@blueprint.route("/schedules/<schedule_id>/resume", methods=["POST"])
def resume(schedule_id: str):
    """Resume a schedule, from its first fire time after now."""
    schedule = schedule_service.resume(schedule_service.get(schedule_id, _scope()))
    return pages.done(f"Resumed {schedule.name!r}.", ".list_schedules")


@blueprint.route("/schedules/<schedule_id>/delete", methods=["POST"])
def delete(schedule_id: str):
    """Delete a schedule; its tasks stay."""
    schedule = schedule_service.get(schedule_id, _scope())
    name = schedule.name
    schedule_service.delete(schedule)
    return pages.done(f"Deleted {name!r}.", ".list_schedules")
