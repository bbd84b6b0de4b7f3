"""`/api/tasks/queue/...`: queue administration. Platform-wide views (status, stop and start
of the whole queue, a pool or a type, concurrency limits, cleanup with its report) need the
`operator` role; `list` also serves an account `admin`, scoped to its own account's tasks
(an operator sees every account's, or one with `?account=`)."""

import flask

from app.api import auth, parsing, schemas
from app.api import tasks as tasks_api
from app.api.errors import ErrorSchema
from app.services import accounts
from app.services import queue as queue_service

blueprint = parsing.Blueprint(
    "queue", __name__, url_prefix="/api/tasks/queue", description="Queue administration (operator role)"
)
# Views an account admin may use too, scoped to its account.
ACCOUNT_ADMIN_VIEWS = ("queue.list_all",)


@blueprint.before_request
def _authorize():
    if flask.request.endpoint in ACCOUNT_ADMIN_VIEWS:
        return auth.authenticate_admin()
    return auth.authenticate_operator()


@blueprint.route("/status", methods=["GET"])
@blueprint.response(200, schemas.QueueStatus)
def status():
    """Queue status

    Counts by status, type and priority; running tasks; workers seen in the last ten minutes;
    the oldest waiting task's age; paused scopes and limits; per-type durations of recent
    successful runs.
    """
    return queue_service.status()


@blueprint.route("/list", methods=["GET"])
@blueprint.arguments(schemas.QueueTaskFilter(), location="query")
@blueprint.response(200, schemas.TaskPage)
@blueprint.alt_response(404, schema=ErrorSchema, description="no such account (`account`)")
def list_all(query: dict):
    """Tasks, newest first: every account's for an operator (one account's with `?account=`),
    the caller's own account's for an account admin"""
    name = query.pop("account", None)
    caller = auth.caller()
    if not caller.is_operator:
        return tasks_api.page_of(caller.account_id, query) if name in (None, _own_name(caller)) else _empty(query)
    return tasks_api.page_of(accounts.account(name).id if name else None, query)


def _own_name(caller) -> str:
    return accounts.get(caller.account_id).name


def _empty(query: dict) -> dict:
    # Another account's name from an account admin: nothing, as if it had no tasks (no 403
    # or 404 that would confirm the account exists).
    return tasks_api.page_body([], query["page"], query["page_size"], 0)


@blueprint.route("/stop", methods=["POST"])
@blueprint.arguments(schemas.Scope(), location="query")
@blueprint.response(200, schemas.Switched)
def stop(scope: dict):
    """Stop the queue, or one pool (`?pool=`) or type (`?type=`)

    Running tasks finish; nothing new starts until `start`. Durable: it holds across worker
    restarts.
    """
    return queue_service.stop(scope.get("pool"), scope.get("type"))


@blueprint.route("/start", methods=["POST"])
@blueprint.arguments(schemas.Scope(), location="query")
@blueprint.response(200, schemas.Switched)
def start(scope: dict):
    """Start what `stop` paused, and wake the workers for the tasks that may now run"""
    return queue_service.start(scope.get("pool"), scope.get("type"))


@blueprint.route("/limit", methods=["POST"])
@blueprint.arguments(schemas.Limit())
@blueprint.response(200, schemas.LimitSet)
def limit(body: dict):
    """Set how many tasks of a type may run at once (`limit: null` removes the cap)"""
    return queue_service.set_limit(body["type"], body["limit"])


@blueprint.route("/cleanup", methods=["POST"])
@blueprint.arguments(schemas.CleanupRequest(), required=False)
@blueprint.response(200, schemas.CleanupReport)
def cleanup(body: dict):
    """Rescue tasks whose lease expired (and, with `stuck_after`, tasks silent that long)

    The answer lists each task handled and what was done with it.
    """
    report = queue_service.cleanup((body or {}).get("stuck_after"))
    return {"handled": len(report), "tasks": report}
