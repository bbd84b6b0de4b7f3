"""Health checks, outside the API's authentication: `/health` says the process is alive,
`/health/db` that the database answers and `/health/redis` that the broker does (503 with
the reason when not)."""

import flask
import sqlalchemy as sa

from app import runtime
from app.extensions import db

blueprint = flask.Blueprint("health", __name__)


@blueprint.get("/health")
def alive():
    return {"status": "ok"}


@blueprint.get("/health/db")
def database():
    try:
        db.session.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as exc:
        db.session.rollback()
        return {"status": "unavailable", "reason": str(exc.orig).strip()}, 503
    return {"status": "ok"}


@blueprint.get("/health/redis")
def broker():
    """The broker the workers are woken through (Redis in production; the local folder broker
    on the embedded default)."""
    conveyor = runtime.current()
    try:
        with conveyor.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
            if connection.transport.driver_type == "redis":
                connection.default_channel.client.ping()
    except Exception as exc:  # any broker error means "not ready", with its reason
        return {"status": "unavailable", "broker": _safe(conveyor.settings["BROKER_URL"]), "reason": str(exc)}, 503
    return {"status": "ok", "broker": _safe(conveyor.settings["BROKER_URL"])}


def _safe(url: str) -> str:
    # Never echo a password.
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('@', 1)[1]}" if "@" in rest else url
