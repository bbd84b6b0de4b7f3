"""Health checks: `/health` says the process is alive, `/health/db` that the database answers."""

import flask
import sqlalchemy as sa

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
        return {"status": "unavailable", "reason": str(exc.orig)}, 503
    return {"status": "ok"}
