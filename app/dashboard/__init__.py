"""The web dashboard at `/dashboard`: server-rendered Jinja pages with htmx for the live parts
(vendored in `static/vendor`, see scripts/vendor-dashboard-assets.sh), on the same services as
the API. Sign-in with an API key into a signed session cookie; a CSRF token on every action.

Each page module owns a child blueprint; `init_app` nests them under one `dashboard`
blueprint that carries the templates, the static files, the session and CSRF hooks and the
HTML error pages.
"""

import logging

import flask
from werkzeug import exceptions

from app.dashboard import admin, overview, pages, schedules, session, signin, submit, tasks, usage, webhooks
from app.extensions import db
from app.services import errors as service_errors

log = logging.getLogger("conveyor.dashboard")

# Dashboard pages load only their own files; artifacts are framed from the same origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def init_app(app: flask.Flask) -> flask.Blueprint:
    """Register the dashboard's blueprints (under `/dashboard`) on `app`."""
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:  # Flask's default is None
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    parent = flask.Blueprint(
        "dashboard",
        __name__,
        url_prefix="/dashboard",
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
    parent.before_request(session.require_secret_key)
    parent.before_request(session.check_csrf)
    parent.context_processor(session.template_globals)
    parent.context_processor(pages.helpers)
    parent.after_request(_security_headers)
    parent.register_error_handler(service_errors.ServiceError, _service_error)
    parent.register_error_handler(exceptions.HTTPException, _http_error)
    parent.register_error_handler(Exception, _unexpected)
    children = (signin, overview, tasks, submit, usage, admin, webhooks, schedules)
    for child in (module.blueprint for module in children):
        parent.register_blueprint(child)
    # Any other path under /dashboard: without a rule of the blueprint's own, Flask would
    # answer with the API's JSON 404 rather than the dashboard's page.
    parent.add_url_rule("/<path:unknown>", "unknown", _unknown, methods=["GET", "POST"])
    app.register_blueprint(parent)
    # Only the dashboard reads the session; `Secure` follows CONVEYOR_SECURE_COOKIES (config.py).
    app.config["SESSION_COOKIE_PATH"] = parent.url_prefix
    app.session_interface = session.DashboardCookies(parent.url_prefix)
    return parent


def _security_headers(response: flask.Response) -> flask.Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _unknown(unknown: str):
    raise exceptions.NotFound("There is no such dashboard page.")


def _service_error(exc: service_errors.ServiceError):
    return pages.error(exc.status, exc.message)


def _http_error(exc: exceptions.HTTPException):
    return pages.error(exc.code or 500, exc.description or exc.name)


def _unexpected(exc: Exception):
    if isinstance(exc, exceptions.HTTPException):
        return _http_error(exc)
    if service_errors.database_down(exc):
        log.warning("database unavailable in %s %s", flask.request.method, flask.request.path)
        db.session.rollback()
        return pages.error(503, service_errors.DatabaseUnavailable.__doc__)
    log.exception("unhandled error in %s %s", flask.request.method, flask.request.path)
    return pages.error(500, "Internal error; the server log has the details.")
