"""Bearer-key authentication and the roles, for API views.

`authenticate` runs before every view of a protected blueprint: no key or an unknown or
revoked key is a 401 (with `WWW-Authenticate: Bearer`). On admin blueprints,
`authenticate_admin` also makes a member's call a 403, and `authenticate_operator` any call
but an operator's (platform-wide actions). Views read the caller with `caller()`;
every query they make is scoped to the caller's account, so another account's task is a 404,
never a 403 that confirms it exists.
"""

import flask

from app.api import errors
from app.services import accounts

SCHEME = {"type": "http", "scheme": "bearer", "description": "an API key: `Authorization: Bearer cvk_...`"}


def authenticate():
    """Before-request hook: resolve the bearer key into `flask.g.caller` or answer 401."""
    if flask.request.method == "OPTIONS":
        return None
    header = flask.request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return _unauthorized("an API key is required: Authorization: Bearer <key>")
    caller = accounts.authenticate(key.strip())
    if caller is None:
        return _unauthorized("the API key is unknown or revoked")
    flask.g.caller = caller
    return None


def caller() -> accounts.Caller:
    """Return the authenticated caller of this request."""
    return flask.g.caller


def authenticate_admin():
    """Before-request hook of admin blueprints: `authenticate`, then 403 for a member."""
    refused = authenticate()
    if refused is not None:
        return refused
    if flask.request.method != "OPTIONS" and not caller().is_admin:
        return errors.respond(403, "this needs the admin role")
    return None


def authenticate_operator():
    """Before-request hook of platform-wide views: `authenticate`, then 403 for any caller
    who is not an operator (an account admin included)."""
    refused = authenticate()
    if refused is not None:
        return refused
    if flask.request.method != "OPTIONS" and not caller().is_operator:
        return errors.respond(403, "this needs the operator role (platform-wide)")
    return None


def _unauthorized(message: str) -> flask.Response:
    response = errors.respond(401, message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="conveyor"'
    return response
