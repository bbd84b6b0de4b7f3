"""`/api/schedules`: tasks submitted at the matches of a cron expression in a timezone, or every
interval. A member manages the schedules it made, an account admin every schedule of its
account, an operator every account's (`?account=` to list one's); another's schedule is a 404.
New schedules belong to the caller's account and user."""

from app.api import auth, parsing, schemas
from app.api import tasks as tasks_api
from app.api.errors import ErrorSchema, UnavailableSchema
from app.services import accounts
from app.services import schedules as schedule_service

blueprint = parsing.Blueprint(
    "schedules", __name__, url_prefix="/api/schedules", description="Tasks submitted on a cron or interval schedule"
)
blueprint.before_request(auth.authenticate)

NOT_FOUND = {"description": "no such schedule that you may see"}
INVALID = {"description": "a bad field, named in `errors` (type, params, cron, interval, timezone, ...)"}
FORBIDDEN = {"description": "a priority your role may not use (`errors` names `priority`)"}
UNAVAILABLE = {"description": "`code: unavailable`: a provider the task needs is not configured here"}


def _scope() -> schedule_service.Scope:
    caller = auth.caller()
    return schedule_service.scope_of(caller.account_id, caller.user_id, caller.role)


def _described(schedule) -> dict:
    return schedule_service.describe(schedule)


@blueprint.route("", methods=["POST"])
@blueprint.arguments(schemas.ScheduleCreate())
@blueprint.response(201, schemas.Schedule)
@blueprint.alt_response(403, schema=ErrorSchema, **FORBIDDEN)
@blueprint.alt_response(409, schema=UnavailableSchema, **UNAVAILABLE)
@blueprint.alt_response(422, schema=ErrorSchema, **INVALID)
def create(body: dict):
    """Create a schedule in your account: `cron` (with `timezone`) or `interval` seconds

    Its first fire time is the first match (or one interval) after now.
    """
    caller = auth.caller()
    schedule = schedule_service.create(body, account_id=caller.account_id, user_id=caller.user_id, role=caller.role)
    return _described(schedule)


@blueprint.route("", methods=["GET"])
@blueprint.arguments(schemas.ScheduleQuery(), location="query")
@blueprint.response(200, schemas.SchedulePage)
@blueprint.alt_response(404, schema=ErrorSchema, description="no such account (`account`, operators)")
def list_schedules(query: dict):
    """List the schedules you may see, by name, each with its next fire times"""
    scope = _scope()
    if query.get("account") and auth.caller().is_operator:
        scope = schedule_service.Scope(accounts.account(query["account"]).id)
    elif query.get("account") and query["account"] != accounts.get(auth.caller().account_id).name:
        return tasks_api.page_body([], query["page"], query["page_size"], 0)  # never confirm it exists
    size = query["page_size"]
    found = schedule_service.find(scope, limit=size, offset=(query["page"] - 1) * size)
    items = [schedule_service.describe(schedule) for schedule in found]
    return tasks_api.page_body(items, query["page"], size, schedule_service.count(scope))


@blueprint.route("/<schedule_id>", methods=["GET"])
@blueprint.response(200, schemas.Schedule)
@blueprint.alt_response(404, schema=ErrorSchema, **NOT_FOUND)
def get_schedule(schedule_id: str):
    """Read a schedule, with its next 5 fire times and its last fire, task and error"""
    return _described(schedule_service.get(schedule_id, _scope()))


@blueprint.route("/<schedule_id>", methods=["PATCH"])
@blueprint.arguments(schemas.ScheduleChange())
@blueprint.response(200, schemas.Schedule)
@blueprint.alt_response(403, schema=ErrorSchema, **FORBIDDEN)
@blueprint.alt_response(404, schema=ErrorSchema, **NOT_FOUND)
@blueprint.alt_response(409, schema=UnavailableSchema, **UNAVAILABLE)
@blueprint.alt_response(422, schema=ErrorSchema, **INVALID)
def update(body: dict, schedule_id: str):
    """Change any field of a schedule (`paused: false` resumes it)

    Setting `cron` makes it a cron schedule, `interval` an interval one. A change of its timing
    (cron, interval, timezone, paused) goes on from the first fire time after now.
    """
    schedule = schedule_service.get(schedule_id, _scope())
    return _described(schedule_service.update(schedule, body, auth.caller().role))


@blueprint.route("/<schedule_id>", methods=["DELETE"])
@blueprint.response(204)
@blueprint.alt_response(404, schema=ErrorSchema, **NOT_FOUND)
def delete(schedule_id: str):
    """Delete a schedule; the tasks it made stay"""
    schedule_service.delete(schedule_service.get(schedule_id, _scope()))
    return "", 204
