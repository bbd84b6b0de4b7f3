"""The New task pages: pick a type, then fill the form generated from its params schema (as
`/api/task-types` describes it). The form is submitted through `tasks.submit`, the same call
the API makes, with the same rate limits (`app.api.limits`), and the errors it reports
(priority refused, quota, rate limit) are shown next to their fields."""

import flask
import flask_limiter

from app import runtime
from app.api import limits, schemas, task_types
from app.dashboard import forms, pages, session
from app.services import errors
from app.services import tasks as task_service

blueprint = flask.Blueprint("submit", __name__)
blueprint.before_request(session.require_caller)

# The spec's schemas change only with the registry: rebuild them this rarely.
SPEC_CACHE_SECONDS = 300.0


@blueprint.route("/new")
def choose():
    """Render the list of task types to pick from, with why a type is unavailable."""
    return flask.render_template("dashboard/new.html", types=described())


@blueprint.route("/new/<type_name>", methods=["GET", "POST"])
def new(type_name: str):
    """Render a type's form; on POST submit the task, or show the form again with its errors."""
    found = {item["type"]: item for item in described()}.get(type_name)
    if found is None:
        return pages.error(404, f"There is no task type {type_name!r}.")
    posted = flask.request.form if flask.request.method == "POST" else None
    fields = forms.build(found["params_schema"], components(), posted)
    if posted is None:
        return _form(found, fields)
    params, problems = forms.read(fields, posted)
    if problems:
        forms.place_problems(fields, problems)
        return _form(found, fields, status=422)
    caller = session.caller()
    try:
        limits.check_submit(caller)
        task, _created = task_service.submit(
            type_name,
            params,
            account_id=caller.account_id,
            user_id=caller.user_id,
            priority=posted.get("priority") or None,
            role=caller.role,
        )
    except flask_limiter.RateLimitExceeded as exc:
        message = f"Too many submits ({exc.limit.limit}); try again in a moment."
        return _form(found, fields, [message], status=429)
    except (errors.Forbidden, errors.QuotaExceeded, errors.Unavailable) as exc:
        return _form(found, fields, [] if exc.errors else [exc.message], exc.errors, status=exc.status)
    except errors.Invalid as exc:
        unplaced = forms.place(fields, exc.errors.get("params", {}))
        other = {key: value for key, value in exc.errors.items() if key != "params"}
        if not exc.errors:
            unplaced.append(exc.message)
        return _form(found, fields, unplaced, other, status=422)
    return pages.done(f"Submitted a {type_name} task.", "dashboard.tasks.task", task_id=task.id)


def _form(found: dict, fields: list, unplaced=(), other=None, status: int = 200):
    posted = flask.request.form
    page = flask.render_template(
        "dashboard/new_type.html",
        type=found,
        fields=fields,
        unplaced=list(unplaced),
        other=other or {},
        priorities=schemas.PRIORITIES,
        priority=posted.get("priority", ""),
        missing=[p for p in found["providers"] if p["required"] and not p["configured"]],
        optional=[p for p in found["providers"] if not p["required"] and not p["configured"]],
    )
    return page, status


def described() -> list[dict]:
    """Return every task type as `/api/task-types` describes it."""
    conveyor = runtime.current()
    converter = flask.current_app.extensions["conveyor_api"].ma_plugin.converter
    return task_types.describe(conveyor.registry, conveyor.settings, converter)


def components() -> dict:
    """Return the API spec's component schemas (the targets of the params' `$ref`s)."""
    api = flask.current_app.extensions["conveyor_api"]
    build = lambda: api.spec.to_dict().get("components", {}).get("schemas", {})  # noqa: E731
    return runtime.current().memo(("dashboard", "components"), SPEC_CACHE_SECONDS, build)
