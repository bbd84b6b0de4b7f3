"""Who is signed in to the dashboard, and CSRF protection.

Signing in checks an API key with `accounts.authenticate` (as the API does) and keeps only the
key's id in Flask's signed session cookie, never the key; the cookie is read only under
`/dashboard` (`DashboardCookies`). Every request loads the caller again from that id, so a
revoked key or a changed role takes effect at once. Every request that changes something must
carry the session's CSRF token: in the form (`csrf_token`) or, from htmx, in the
`X-CSRF-Token` header; without it the answer is 400.
"""

import hmac
import secrets
import uuid

import flask
import sqlalchemy as sa

from app import models
from app.dashboard import pages
from app.extensions import db
from app.services import accounts

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CALLER = "conveyor.dashboard.caller"
NO_SECRET = "The dashboard needs a secret key to sign its session cookie: set CONVEYOR_SECRET_KEY and restart."


class DashboardCookies(flask.sessions.SecureCookieSessionInterface):
    """Flask's signed session cookie, opened only under the dashboard's URL prefix. The API
    authenticates each request by its key and never reads a session, so its calls skip the
    cookie's serializer and signature check (elsewhere `flask.session` is an empty read-only
    session)."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def open_session(self, app: flask.Flask, request: flask.Request):
        if not request.path.startswith(self.prefix):
            return self.make_null_session(app)
        return super().open_session(app, request)


def require_secret_key():
    """Before-request hook: answer 503 with the reason when no secret key is configured."""
    if not flask.current_app.secret_key:
        return pages.error(503, NO_SECRET)
    return None


def csrf_token() -> str:
    """Return the session's CSRF token, making one on first use."""
    token = flask.session.get("csrf")
    if not token:
        token = flask.session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf():
    """Before-request hook: refuse (400) a state-changing request without the session's token."""
    if flask.request.method in SAFE_METHODS:
        return None
    sent = flask.request.headers.get(CSRF_HEADER) or flask.request.form.get(CSRF_FIELD, "")
    expected = flask.session.get("csrf", "")
    if not (expected and sent and hmac.compare_digest(sent, expected)):
        return pages.error(400, "The form's security token is missing or out of date: reload the page and try again.")
    return None


def sign_in(caller: accounts.Caller) -> None:
    """Start a fresh session for `caller` (a new CSRF token too)."""
    flask.session.clear()
    flask.session["key_id"] = str(caller.key_id)
    flask.session["csrf"] = secrets.token_urlsafe(32)
    flask.request.environ[CALLER] = caller


def sign_out() -> None:
    """End the session."""
    flask.session.clear()
    flask.request.environ[CALLER] = None


def current() -> accounts.Caller | None:
    """Return the signed-in caller, or None (looked up once per request)."""
    # Kept with the request, not in `g`: an app context may outlive one request (tests).
    environ = flask.request.environ
    if CALLER not in environ:
        key_id = flask.session.get("key_id")
        environ[CALLER] = _load(key_id) if key_id else None
    return environ[CALLER]


def caller() -> accounts.Caller:
    """Return the signed-in caller of a page that requires one."""
    found = current()
    if found is None:
        raise RuntimeError("caller() on a page without require_caller")
    return found


def require_caller():
    """Before-request hook: send a visitor who is not signed in to the sign-in page."""
    if current() is not None:
        return None
    target = flask.url_for("dashboard.signin.signin", next=flask.request.full_path.rstrip("?"))
    if pages.is_htmx():
        return flask.Response(status=401, headers={"HX-Redirect": target})
    return flask.redirect(target)


def require_operator():
    """Before-request hook of platform-wide pages: `require_caller`, then 403 for anyone but
    an operator (an account admin included)."""
    refused = require_caller()
    if refused is not None:
        return refused
    if not caller().is_operator:
        return pages.error(403, "This page needs the operator role.")
    return None


def template_globals() -> dict:
    """What every dashboard template may use: the caller and the CSRF token."""
    if not flask.current_app.secret_key:
        return {"caller": None, "csrf_token": str}
    return {"caller": current(), "csrf_token": csrf_token}


def _load(key_id: str) -> accounts.Caller | None:
    # The same caller `accounts.authenticate` makes from a key, found by the key's id.
    try:
        key_uuid = uuid.UUID(key_id)
    except ValueError:
        return None
    row = db.session.execute(
        sa.select(models.ApiKey.id, models.ApiKey.account_id, models.ApiKey.user_id, models.User.role)
        .join(models.User, models.User.id == models.ApiKey.user_id)
        .where(models.ApiKey.id == key_uuid, models.ApiKey.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    return accounts.Caller(account_id=row.account_id, user_id=row.user_id, role=row.role, key_id=row.id)
