"""Conveyor: a multi-type task platform. `create_app(config=None)` is the only wiring point:
it reads and checks settings, binds the extensions, loads the processor registry, builds the
Celery app, and registers the CLI and the HTTP blueprints.
"""

import os
import pathlib
import secrets

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
    app.config["SECRET_KEY"] = settings["CONVEYOR_SECRET_KEY"] or _local_secret(settings["CONVEYOR_VAR_DIR"])
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
    from app import api, dashboard  # the HTTP layer sits on top of everything above

    api.init_app(app, registry)
    dashboard.init_app(app)
    _register_cli(app)
    return app


def _local_secret(var_dir: str) -> str:
    """Return the key that signs session cookies when CONVEYOR_SECRET_KEY is unset: made once
    and kept in `var/secret-key`, so every process on this machine shares it."""
    path = pathlib.Path(var_dir) / "secret-key"
    try:
        with open(path, "x", opener=lambda name, flags: os.open(name, flags, 0o600)) as made:
            made.write(secrets.token_urlsafe(32))
    except FileExistsError:
        pass  # made earlier, or just now by another process
    return path.read_text().strip()


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
