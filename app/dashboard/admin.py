"""The admin page (operator role only: every action here is platform-wide): stop and start
the queue, a pool or a type; set per-type concurrency limits; run cleanup and show its report.
Each action calls `app.services.queue`, as `/api/tasks/queue/...` does, with the API's own
request checks."""

import flask
import marshmallow as ma

from app import runtime
from app.api import schemas
from app.dashboard import pages, session
from app.services import errors
from app.services import queue as queue_service
from processors.policy import POOLS

blueprint = flask.Blueprint("admin", __name__)
blueprint.before_request(session.require_operator)


@blueprint.route("/admin")
def admin():
    """Render the admin page."""
    return _page()


@blueprint.route("/admin/stop", methods=["POST"])
def stop():
    """Pause the queue, a pool or a type (form field `scope`: `queue`, `pool:cpu`, `type:sleep`)."""
    return _switch(queue_service.stop, "Stopped")


@blueprint.route("/admin/start", methods=["POST"])
def start():
    """Resume what was paused (same `scope` as `stop`)."""
    return _switch(queue_service.start, "Started")


def _switch(action, verb: str):
    kind, _, name = flask.request.form.get("scope", "queue").partition(":")
    try:
        done = action(pool=name if kind == "pool" else None, type=name if kind == "type" else None)
    except errors.Invalid as exc:
        return _answer(exc.message, "error")
    return _answer(f"{verb} {_scope_name(done['scope'], done['name'])}.")


@blueprint.route("/admin/limit", methods=["POST"])
def limit():
    """Set or remove (empty) a type's concurrency limit."""
    raw = flask.request.form.get("limit", "").strip()
    try:
        body = schemas.Limit().load({"type": flask.request.form.get("type", ""), "limit": raw or None})
        done = queue_service.set_limit(body["type"], body["limit"])
    except ma.ValidationError as exc:
        return _answer("Limit not set: " + _messages(exc.messages), "error")
    except errors.Invalid as exc:
        return _answer(f"Limit not set: {exc.message}", "error")
    if done["limit"] is None:
        return _answer(f"Removed the limit of {done['type']}.")
    return _answer(f"At most {done['limit']} {done['type']} tasks run at once.")


@blueprint.route("/admin/cleanup", methods=["POST"])
def cleanup():
    """Rescue expired leases (and tasks silent for `stuck_after` s); show what was done."""
    raw = flask.request.form.get("stuck_after", "").strip()
    try:
        body = schemas.CleanupRequest().load({"stuck_after": raw or None})
    except ma.ValidationError as exc:
        return _answer("Cleanup not run: " + _messages(exc.messages), "error")
    report = queue_service.cleanup(body.get("stuck_after"))
    if pages.is_htmx():
        return flask.render_template("dashboard/_cleanup_report.html", report=report)
    return _page(report=report)


def _answer(message: str, category: str = "info"):
    """The controls panel with `message` for htmx; otherwise flash and reload the page."""
    if pages.is_htmx():
        return flask.render_template("dashboard/_admin_controls.html", notice=(category, message), **_controls())
    return pages.done(message, ".admin", category)


def _page(report=None):
    return flask.render_template("dashboard/admin.html", report=report, notice=None, **_controls())


def _controls() -> dict:
    status = queue_service.status()
    return {
        "paused": status["paused"],
        "limits": status["limits"],
        "pools": POOLS,
        "types": runtime.current().registry.types(),
        "scope_name": _scope_name,
    }


def _scope_name(scope: str, name: str) -> str:
    return "the whole queue" if scope == "queue" else f"{scope} {name}"


def _messages(messages: dict) -> str:
    return "; ".join(f"{field}: {' '.join(map(str, texts))}" for field, texts in messages.items())
