"""One JSON error shape for every API error: `{code, status, message, errors}`.

`code` is a stable machine word (`invalid`, `not_found`, ...), `status` the HTTP status,
`message` one human sentence, and `errors` maps each bad field to its messages (empty when no
field is to blame). Request validation errors from any location (JSON body, query, headers)
are merged into `errors` by field name. An unexpected exception is a 500 in the same shape,
logged with its traceback, and its details are not sent to the client. A database that cannot
be reached (restarting, refused) is a 503 `database_unavailable` with `Retry-After`.
"""

import logging

import flask
import marshmallow as ma
from werkzeug import exceptions

from app.extensions import db
from app.services import errors as service_errors

log = logging.getLogger("conveyor.api")
# The attribute where an answer keeps a Retry-After of its own (seconds, a string), which the
# rate limiter's headers must not replace.
OWN_RETRY_AFTER = "conveyor_retry_after"


class ErrorSchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"description": "a stable machine word, e.g. `invalid`"})
    status = ma.fields.Integer(required=True, metadata={"description": "the HTTP status"})
    message = ma.fields.String(required=True)
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Raw(),
        required=True,
        metadata={"description": "each bad field with its messages"},
    )


class MissingProvider(ma.Schema):
    name = ma.fields.String(required=True, metadata={"description": "the provider, e.g. `openai`, `ffmpeg`"})
    reason = ma.fields.String(required=True, metadata={"description": "why not, e.g. `OPENAI_API_KEY is not set`"})


class UnavailableSchema(ErrorSchema):
    """A submit of a type that cannot run here (409 `unavailable`): the error, and each
    provider the task needs that is not configured."""

    providers = ma.fields.List(ma.fields.Nested(MissingProvider), required=True)


def body(status: int, message: str, errors: dict | None = None, code: str | None = None) -> dict:
    """Return the error body for `status`."""
    return {"code": code or _code(status), "status": status, "message": message, "errors": errors or {}}


def respond(status: int, message: str, errors: dict | None = None, code: str | None = None) -> flask.Response:
    """Return an error response in the one shape."""
    response = flask.jsonify(body(status, message, errors, code))
    response.status_code = status
    return response


def register(app: flask.Flask) -> None:
    """Install the handlers on `app` (after flask-smorest's, which they replace)."""
    app.register_error_handler(service_errors.ServiceError, _service_error)
    app.register_error_handler(exceptions.HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


_NAMES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "rate_limit",
    500: "internal",
    503: "unavailable",
}


def _code(status: int) -> str:
    if status in _NAMES:
        return _NAMES[status]
    known = exceptions.default_exceptions.get(status)
    return known().name.lower().replace(" ", "_").replace("'", "") if known else "error"


def _service_error(exc: service_errors.ServiceError):
    response = respond(exc.status, exc.message, exc.errors, exc.code)
    if exc.extra:  # additive: a quota answer also names `quota`, `limit` and `current`
        response.set_data(flask.json.dumps({**response.get_json(), **exc.extra}))
    return response


def _http_error(exc: exceptions.HTTPException):
    data = getattr(exc, "data", None) or {}
    errors: dict = {}
    for location, fields in (data.get("messages") or {}).items():
        if isinstance(fields, dict):
            errors.update(fields)
        else:
            errors[location] = fields
    status = exc.code or 500
    message = data.get("message") or exc.description or exc.name
    if status == 422 and errors:
        message = "invalid request: " + ", ".join(sorted(errors))
    if status == 413 and isinstance(exc, exceptions.RequestEntityTooLarge):
        message = f"the request body is larger than the limit of {flask.request.max_content_length} bytes"
    response = respond(status, message, errors)
    for name, value in exc.get_response().headers.items() if status in (405, 416) else ():
        if name in ("Allow", "Content-Range"):
            response.headers[name] = value
    return response


def database_unavailable(exc: Exception) -> flask.Response:
    """503 while the database cannot be reached; the client may retry after a few seconds."""
    log.warning("database unavailable in %s %s: %s", flask.request.method, flask.request.path, exc.__class__.__name__)
    db.session.rollback()  # the session's dropped connection goes; the next request gets a new one
    unavailable = service_errors.DatabaseUnavailable()
    response = respond(unavailable.status, unavailable.message, code=unavailable.code)
    response.headers["Retry-After"] = str(unavailable.retry_after)
    setattr(response, OWN_RETRY_AFTER, str(unavailable.retry_after))  # not the limiter's
    return response


def _unexpected(exc: Exception):
    if isinstance(exc, exceptions.HTTPException):
        return _http_error(exc)
    if service_errors.database_down(exc):
        return database_unavailable(exc)
    log.exception("unhandled error in %s %s", flask.request.method, flask.request.path)
    return respond(500, "internal error; the server log has the details")
