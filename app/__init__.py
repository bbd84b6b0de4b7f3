"""Conveyor: a multi-type task platform. `create_app(config=None)` is the only wiring point:
it reads and checks settings, binds the extensions, loads the processor registry, builds the
Celery app, and registers the CLI and the HTTP blueprints.
"""

import os
import pathlib

import flask
import sqlalchemy as sa
from dotenv import load_dotenv

import processors
from app import config as config_module
from app import extensions, runtime
from app.queue import celery as celery_glue
from app.queue import tasks as queue_tasks
from processors import registry as registry_module

MIGRATIONS = pathlib.Path(__file__).resolve().parent.parent / "migrations"


def create_app(config: dict | None = None) -> flask.Flask:
    """Build the Flask app from the environment (and `.env`), with `config` overriding it."""
    load_dotenv(pathlib.Path.cwd() / ".env", override=False)
    settings = config_module.load(os.environ, config)
    pathlib.Path(settings["CONVEYOR_VAR_DIR"]).mkdir(parents=True, exist_ok=True)
    app = flask.Flask(__name__)
    app.config.update(settings)
    extensions.db.init_app(app)
    extensions.migrate.init_app(app, extensions.db, directory=str(MIGRATIONS))
    if settings["DATABASE_URL"].startswith("sqlite:"):
        with app.app_context():
            sa.event.listen(extensions.db.engine, "connect", _sqlite_pragmas)
    registry = registry_module.load(
        processors.BUILTIN,
        settings["CONVEYOR_PROCESSORS"],
        settings["CONVEYOR_POLICIES"],
        plugins=bool(settings["CONVEYOR_PLUGINS"]),
    )
    conveyor = runtime.Runtime(app, settings, registry, celery_glue.create(settings))
    queue_tasks.register(conveyor.celery, conveyor.make_runner, conveyor.after_fork)
    app.extensions["conveyor"] = conveyor
    from app import api  # the HTTP layer sits on top of everything above

    api.init_app(app, registry)
    _register_cli(app)
    return app


def _sqlite_pragmas(connection, record) -> None:
    # WAL lets the API read while a worker writes; the busy timeout queues writers.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _register_cli(app: flask.Flask) -> None:
    from app import cli

    cli.init_app(app)
