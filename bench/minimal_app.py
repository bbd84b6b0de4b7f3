"""The ceiling for bench/api.py: the least a Flask endpoint on Conveyor's stack can do to
store one submitted row. Flask, Flask-SQLAlchemy with Conveyor's engine options (from
`app.config`), psycopg2 and the same gunicorn settings; no auth, no validation, no broker.

`POST /rows` parses the JSON body, inserts one row into `bench_rows` (made by the bench) and
answers 202 with its id. Served as `gunicorn 'minimal_app:create_app()'` with this folder on
PYTHONPATH and `DATABASE_URL` set.
"""

import datetime
import os
import uuid
from typing import Any

import flask
import flask_sqlalchemy
import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects import postgresql

from app import config

TABLE_SQL = """
CREATE TABLE bench_rows (
    id uuid PRIMARY KEY,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL
)"""


class Base(orm.DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "bench_rows"

    id: orm.Mapped[uuid.UUID] = orm.mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    payload: orm.Mapped[dict[str, Any]] = orm.mapped_column(postgresql.JSONB)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(sa.DateTime(timezone=True))


db = flask_sqlalchemy.SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})


def create_app() -> flask.Flask:
    """Build the minimal app on `DATABASE_URL`, with the engine options Conveyor derives."""
    settings = config.load({"DATABASE_URL": os.environ["DATABASE_URL"]})
    app = flask.Flask(__name__)
    for key in ("SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_ENGINE_OPTIONS", "SQLALCHEMY_TRACK_MODIFICATIONS"):
        app.config[key] = settings[key]
    db.init_app(app)
    app.add_url_rule("/rows", view_func=insert_row, methods=["POST"])
    return app


def insert_row():
    """Store the JSON body as one row; answer 202 with its id."""
    row = Row(payload=flask.request.get_json(), created_at=datetime.datetime.now(datetime.UTC))
    db.session.add(row)
    db.session.commit()
    return {"id": row.id}, 202
