"""The tasks pages: the filterable, paginated list; one task with its live progress (SSE),
timeline, attempts, result, artifacts and metered usage; its actions (cancel, retry, delete); and its
artifact files. Every read and action goes through `app.services.tasks`, scoped to the
signed-in caller's account as in the API, so another account's task is a 404."""

import datetime

import flask
import marshmallow as ma

from app import runtime
from app.api import files, schemas, stream
from app.api import tasks as tasks_api
from app.dashboard import artifacts, live, pages, session
from app.extensions import db
from app.models import Priority
from app.queue import lifecycle, states
from app.services import errors
from app.services import tasks as task_service
from app.services import usage as usage_service

blueprint = flask.Blueprint("tasks", __name__)
blueprint.before_request(session.require_caller)

PAGE_SIZE = 20
# The task page lists this many events; the live stream adds the later ones.
TIMELINE_LIMIT = 500
SINCE = {
    "1h": datetime.timedelta(hours=1),
    "24h": datetime.timedelta(days=1),
    "7d": datetime.timedelta(days=7),
}
FILTERS = ("type", "status", "priority", "page", "page_size")


@blueprint.route("/tasks")
def list_tasks():
    """Render the caller's tasks, newest first, filtered (the rows alone for htmx)."""
    query, problems = filters(flask.request.args)
    page = tasks_api.page_of(session.caller().account_id, query)
    template = "dashboard/_task_rows.html" if pages.is_htmx() else "dashboard/tasks.html"
    return flask.render_template(
        template,
        page=page,
        args={k: v for k, v in flask.request.args.items() if v},
        problems=problems,
        types=runtime.current().registry.types(),
        statuses=schemas.STATUSES,
        priorities=schemas.PRIORITIES,
        since=SINCE,
        live=any(task.status not in states.TERMINAL for task in page["items"]),
    )


def filters(args) -> tuple[dict, dict]:
    """Return the list query from the page's arguments (checked by the API's `TaskFilter`)
    and the problems found; a bad filter is dropped and reported, not fatal."""
    raw = {name: args[name] for name in FILTERS if args.get(name)}
    raw.setdefault("page_size", PAGE_SIZE)
    problems: dict = {}
    try:
        query = schemas.TaskFilter().load(raw)
    except ma.ValidationError as exc:
        problems = exc.messages
        query = schemas.TaskFilter().load({k: v for k, v in raw.items() if k not in problems})
    if args.get("since") in SINCE:
        query["created_after"] = lifecycle.now() - SINCE[args["since"]]
    return query, problems


@blueprint.route("/tasks/<task_id>")
def task(task_id: str):
    """Render one task: params, status, live progress, timeline, attempts, result, artifacts."""
    found = task_service.get(task_id, session.caller().account_id)
    rows = task_service.events(found.id, found.account_id, 0, TIMELINE_LIMIT)
    events = [stream.event_dict(row) for row in rows]
    return flask.render_template(
        "dashboard/task.html", events=events, after=events[-1]["id"] if events else 0, **panel_context(found)
    )


@blueprint.route("/tasks/<task_id>/panel")
def panel(task_id: str):
    """Render the task's status panel alone (the page reloads it when the status changes)."""
    found = task_service.get(task_id, session.caller().account_id)
    return flask.render_template("dashboard/_task_panel.html", **panel_context(found))


def panel_context(task) -> dict:
    """Return what the status panel shows."""
    place = task_service.position(task)
    return {
        "task": task,
        "priority": Priority(task.priority).name.lower(),
        "effective_priority": Priority(task.effective_priority).name.lower(),
        "place": place,
        "eta": task_service.eta_seconds(task, place),
        "ended": task.status in states.TERMINAL,
        "attempts": task_service.attempts(task),
        "artifacts": [artifacts.view(item) for item in task_service.artifacts(task.id, task.account_id)],
        "usage": usage_service.of_task(task.id),
        "currency": usage_service.currency(),
    }


@blueprint.route("/tasks/<task_id>/live")
def live_events(task_id: str):
    """Stream the task's events as HTML fragments (Server-Sent Events) until it ends."""
    found = task_service.get(task_id, session.caller().account_id)
    raw = flask.request.headers.get("Last-Event-ID", "") or flask.request.args.get("after", "")
    after = int(raw) if raw.strip().isdigit() else 0
    state = live.start_state(found)
    conveyor = runtime.current()
    messages = stream.events(
        conveyor.sessions,
        found.id,
        after,
        conveyor.settings["CONVEYOR_SSE_POLL_SECONDS"],
        conveyor.settings["CONVEYOR_SSE_HEARTBEAT_SECONDS"],
    )
    body = live.fragments(messages, state, _render_event, _render_bar)
    db.session.close()  # the stream reads with short sessions of its own; free this connection
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return flask.Response(flask.stream_with_context(body), mimetype="text/event-stream", headers=headers)


def _render_event(row: dict) -> str:
    return flask.render_template("dashboard/_event.html", event=row)


def _render_bar(state: dict) -> str:
    return flask.render_template("dashboard/_bar.html", live=state)


@blueprint.route("/tasks/<task_id>/artifacts/<artifact_id>")
def artifact_file(task_id: str, artifact_id: str):
    """Send an artifact's file (with Range, sandboxed when opened as a document)."""
    found = task_service.artifact(task_id, artifact_id, session.caller().account_id)
    store = runtime.current().storage
    response = files.send(store, found.storage_key, found.mime, found.name, f"{found.id}-{found.size}")
    response.headers["Content-Security-Policy"] = artifacts.SANDBOX
    return response


@blueprint.route("/tasks/<task_id>/cancel", methods=["POST"])
def cancel(task_id: str):
    """Cancel the task (and the tasks below it)."""
    try:
        outcome = task_service.cancel(task_id, session.caller().account_id)
    except errors.Conflict as exc:
        return pages.done(exc.message, ".task", "error", task_id=task_id)
    said = "Cancelled." if outcome == "cancelled" else "Cancel requested: the task stops within a few seconds."
    return pages.done(said, ".task", task_id=task_id)


@blueprint.route("/tasks/<task_id>/retry", methods=["POST"])
def retry(task_id: str):
    """Run a failed or cancelled task again."""
    try:
        task_service.retry(task_id, session.caller().account_id)
    except errors.Conflict as exc:
        return pages.done(exc.message, ".task", "error", task_id=task_id)
    return pages.done("Queued again.", ".task", task_id=task_id)


@blueprint.route("/tasks/<task_id>/delete", methods=["POST"])
def delete(task_id: str):
    """Delete an ended task with its events and artifacts."""
    try:
        task_service.delete(task_id, session.caller().account_id)
    except errors.Conflict as exc:
        return pages.done(exc.message, ".task", "error", task_id=task_id)
    return pages.done(f"Deleted task {task_id}.", ".list_tasks")
