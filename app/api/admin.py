"""`/api/tasks/queue/...`: queue administration for callers with the `admin` role: status,
every account's tasks, stop and start (whole queue, a pool or a type), concurrency limits,
and cleanup with its report."""

from app.api import auth, parsing, schemas
from app.api import tasks as tasks_api
from app.services import queue as queue_service

blueprint = parsing.Blueprint(
    "queue", __name__, url_prefix="/api/tasks/queue", description="Queue administration (admin role)"
)
blueprint.before_request(auth.authenticate_admin)


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
@blueprint.arguments(schemas.TaskFilter(), location="query")
@blueprint.response(200, schemas.TaskPage)
def list_all(query: dict):
    """Every account's tasks, newest first"""
    return tasks_api.page_of(None, query)


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
