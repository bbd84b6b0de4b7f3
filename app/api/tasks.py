"""`/api/tasks`: submit, list, read, cancel, retry and delete tasks; their events (SSE or
JSON) and artifacts (downloads with Range). Every query is scoped to the caller's account."""

import math

import flask

from app import runtime
from app.api import auth, fields, files, limits, parsing, schemas, stream
from app.api.errors import ErrorSchema, UnavailableSchema
from app.extensions import db
from app.services import tasks as task_service
from app.services import usage as usage_service

blueprint = parsing.Blueprint("tasks", __name__, url_prefix="/api/tasks", description="Tasks of your account")
blueprint.before_request(auth.authenticate)

TASK_NOT_FOUND = {"description": "no such task in your account"}
# The refusals every submit endpoint may answer, for the spec: status -> (body, when).
SUBMIT_REFUSALS = {
    403: (ErrorSchema, "a priority your role may not use (`errors` names `priority`)"),
    409: (UnavailableSchema, "`code: unavailable`: a key or program the task needs is not configured here"),
    429: (ErrorSchema, "`code: quota` (the body names `quota` and `limit`) or `code: rate_limit` (with `Retry-After`)"),
}


def submit_refusals(bp):
    """Document the submit refusals (403, 409, 429) on a submit endpoint of blueprint `bp`."""

    def document(view):
        for status, (schema, description) in SUBMIT_REFUSALS.items():
            view = bp.alt_response(status, schema=schema, description=description)(view)
        return view

    return document


def submitted(task, created: bool) -> tuple[dict, int]:
    """The 202 answer of a submit (typed or not)."""
    place = task_service.position(task)
    return (
        {
            "task_id": task.id,
            "status": task.status,
            "created": created,
            "position": place,
            "eta_seconds": task_service.eta_seconds(task, place),
        },
        202,
    )


@blueprint.route("", methods=["POST"])
@blueprint.arguments(schemas.TaskSubmit())
@blueprint.arguments(schemas.IdempotencyHeader(), location="headers")
@blueprint.response(202, schemas.Submitted)
@submit_refusals(blueprint)
def submit(body: dict, headers: dict):
    """Submit a task of any type

    The task is committed before the answer: a 202 means it is stored and will run. With an
    `Idempotency-Key` header, a repeat in the same account returns the first task
    (`created: false`) instead of a new one.
    """
    return submit_for_caller(body["type"], body.get("params"), body, headers)


def submit_for_caller(type: str, params, options: dict, headers: dict) -> tuple[dict, int]:
    """Submit a task for the caller with the options every submit endpoint takes."""
    caller = auth.caller()
    limits.check_submit(caller)
    task, created = task_service.submit(
        type,
        params,
        account_id=caller.account_id,
        user_id=caller.user_id,
        priority=options.get("priority"),
        run_at=options.get("run_at"),
        parent_id=options.get("parent_id"),
        idempotency_key=headers.get("idempotency_key"),
        count_ahead=True,
        role=caller.role,
    )
    return submitted(task, created)


@blueprint.route("", methods=["GET"])
@blueprint.arguments(schemas.TaskFilter(), location="query")
@blueprint.response(200, schemas.TaskPage)
def list_tasks(query: dict):
    """List your tasks, newest first

    Filters combine; `meta` says how many match in all.
    """
    return page_of(auth.caller().account_id, query)


def page_of(account_id, query: dict) -> dict:
    """One page of tasks (all accounts when `account_id` is None) with its `meta`."""
    filters = {k: v for k, v in query.items() if k not in ("page", "page_size")}
    page, size = query["page"], query["page_size"]
    total = task_service.count(account_id, **filters)
    items = task_service.find(account_id, **filters, limit=size, offset=(page - 1) * size)
    return page_body(items, page, size, total)


def page_body(items: list, page: int, size: int, total: int) -> dict:
    """Return a page of any list in the API's shape: `{items, meta}`."""
    return {"items": items, "meta": {"page": page, "page_size": size, "total": total, "pages": math.ceil(total / size)}}


@blueprint.route("/<uuid:task_id>", methods=["GET"])
@blueprint.response(200, schemas.TaskDetail)
@blueprint.alt_response(404, schema=ErrorSchema, **TASK_NOT_FOUND)
def get_task(task_id: str):
    """Read a task: params, status, progress, attempts, result, artifacts; position and ETA
    while it waits"""
    task = task_service.get(task_id, auth.caller().account_id)
    place = task_service.position(task)
    detail = schemas.TaskDetail().dump(task)
    detail["attempts"] = schemas.Attempt(many=True).dump(task_service.attempts(task))
    detail["artifacts"] = schemas.Artifact(many=True).dump(task_service.artifacts(task.id, task.account_id))
    detail["position"], detail["eta_seconds"] = place, task_service.eta_seconds(task, place)
    detail["usage"] = schemas.UsageLine(many=True).dump(usage_service.of_task(task.id))
    return flask.jsonify(detail)


@blueprint.route("/<task_id>/cancel", methods=["POST"])
@blueprint.response(200, schemas.CancelResult)
@blueprint.alt_response(404, schema=ErrorSchema, **TASK_NOT_FOUND)
@blueprint.alt_response(409, schema=ErrorSchema, description="the task has already ended")
def cancel(task_id: str):
    """Cancel a task

    A waiting task is cancelled at once (`cancelled`); a running one is asked to stop
    (`cancel_requested`) and ends within about 2 s, or is stopped after a grace period.
    """
    task = task_service.get(task_id, auth.caller().account_id)
    return {"task_id": task.id, "outcome": task_service.cancel(task.id, task.account_id)}


@blueprint.route("/<task_id>/retry", methods=["POST"])
@blueprint.response(202, schemas.Submitted)
@blueprint.alt_response(404, schema=ErrorSchema, **TASK_NOT_FOUND)
@blueprint.alt_response(409, schema=ErrorSchema, description="the task has not failed or been cancelled")
def retry(task_id: str):
    """Run a failed or cancelled task again, with its type's attempts"""
    task = task_service.retry(task_id, auth.caller().account_id)
    return submitted(task, False)


@blueprint.route("/<uuid:task_id>", methods=["DELETE"])
@blueprint.response(204)
@blueprint.alt_response(404, schema=ErrorSchema, **TASK_NOT_FOUND)
@blueprint.alt_response(409, schema=ErrorSchema, description="the task is waiting or running")
def delete(task_id: str):
    """Delete an ended task with its events and artifacts (files too)"""
    task_service.delete(task_id, auth.caller().account_id)
    return "", 204


@blueprint.route("/<task_id>/events", methods=["GET"])
@blueprint.arguments(schemas.EventQuery(), location="query")
@blueprint.response(
    200,
    schemas.EventPage,
    description="`text/event-stream` by default: each event row as `id`/`event`/`data`, a heartbeat "
    "comment about every 15 s, and `close` after the terminal status. With `format=json`: the rows "
    "after `after`, for polling.",
    content_type="application/json",
)
@blueprint.alt_response(404, schema=ErrorSchema, **TASK_NOT_FOUND)
@blueprint.doc(
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
    parameters=[
        {
            "in": "header",
            "name": "Last-Event-ID",
            "schema": {"type": "string"},
            "description": "resume after this event (SSE reconnects send it)",
        }
    ],
)
def events(query: dict, task_id: str):
    """Follow a task's events: Server-Sent Events, or JSON for polling"""
    task = task_service.get(task_id, auth.caller().account_id)
    after = _last_event_id(query["after"])
    if query["format"] == "json":
        rows = task_service.events(task.id, task.account_id, after, query["limit"])
        db.session.refresh(task)
        done = task.status in ("succeeded", "failed", "cancelled") and len(rows) < query["limit"]
        items = [stream.event_dict(row) for row in rows]
        return flask.jsonify(
            {"items": items, "status": task.status, "done": done, "next_after": items[-1]["id"] if items else after}
        )
    conveyor = runtime.current()
    body = stream.events(
        conveyor.sessions,
        task.id,
        after,
        conveyor.settings["CONVEYOR_SSE_POLL_SECONDS"],
        conveyor.settings["CONVEYOR_SSE_HEARTBEAT_SECONDS"],
    )
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
    return flask.Response(body, mimetype="text/event-stream", headers=headers)


def _last_event_id(after: int) -> int:
    raw = flask.request.headers.get("Last-Event-ID", "").strip()
    # isdigit() also takes other scripts' digits; int() of more than 4,300 digits raises.
    if raw.isascii() and raw.isdigit() and len(raw) <= len(str(fields.MAX_ID)):
        return min(int(raw), fields.MAX_ID)
    return after


@blueprint.route("/<task_id>/artifacts", methods=["GET"])
@blueprint.response(200, schemas.Artifact(many=True))
@blueprint.alt_response(404, schema=ErrorSchema, **TASK_NOT_FOUND)
def artifacts(task_id: str):
    """List a task's artifacts"""
    return task_service.artifacts(task_id, auth.caller().account_id)


@blueprint.route("/<task_id>/artifacts/<artifact_id>", methods=["GET"])
@blueprint.response(200, description="the file, with its own type; `Range` requests get 206 with the part asked for")
@blueprint.alt_response(404, schema=ErrorSchema, description="no such task or artifact")
@blueprint.doc(responses={200: {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}})
def download(task_id: str, artifact_id: str):
    """Download an artifact (HTTP Range supported, so a browser can seek in a video)"""
    artifact = task_service.artifact(task_id, artifact_id, auth.caller().account_id)
    store = runtime.current().storage
    return files.send(store, artifact.storage_key, artifact.mime, artifact.name, f"{artifact.id}-{artifact.size}")
