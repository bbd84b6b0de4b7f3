"""Signing in to the dashboard with an API key, and signing out."""

import flask

from app.dashboard import session
from app.services import accounts

blueprint = flask.Blueprint("signin", __name__)


@blueprint.route("/signin", methods=["GET", "POST"])
def signin():
    """Show the sign-in form; on POST check the key and start a session."""
    target = _safe_next(flask.request.values.get("next", ""))
    if flask.request.method == "GET":
        if session.current() is not None:
            return flask.redirect(target)
        return flask.render_template("dashboard/signin.html", next=target, error=None)
    caller = accounts.authenticate(flask.request.form.get("api_key", "").strip())
    if caller is None:
        error = "That key is unknown or revoked. Keys look like cvk_…; `manage.py keys create` makes one."
        return flask.render_template("dashboard/signin.html", next=target, error=error), 401
    session.sign_in(caller)
    return flask.redirect(target, code=303)


@blueprint.route("/signout", methods=["POST"])
def signout():
    """End the session."""
    session.sign_out()
    flask.flash("You are signed out.", "info")
    return flask.redirect(flask.url_for("dashboard.signin.signin"), code=303)


def _safe_next(raw: str) -> str:
    # Only paths inside the dashboard: never an open redirect to another site.
    if raw.startswith("/dashboard") and not raw.startswith("//"):
        return raw
    return flask.url_for("dashboard.overview.overview")
