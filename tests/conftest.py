"""Fixtures: a real PostgreSQL database and Redis db for the run, or the embedded default
(SQLite and the filesystem broker) in a temporary folder; the app on them; and real worker and
sweeper processes, stopped by PID at the end of each test.

Layers: `backend` -> `settings` -> `app` -> `db_session`, `workers`, `sweeper`.
"""

import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid

import pytest
import redis
import sqlalchemy as sa

import app as app_package
from app import models
from app.extensions import db
from tests import plugins

ROOT = pathlib.Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("CONVEYOR_TEST_PG", "postgresql+psycopg2://root@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("CONVEYOR_TEST_REDIS", "redis://127.0.0.1:6379")
# Under pytest-xdist each test process (gw0, gw1, ...) takes the next Redis database after the
# base one; PostgreSQL databases and folders are already per process.
WORKER_INDEX = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
REDIS_DB = int(os.environ.get("CONVEYOR_TEST_REDIS_DB", "13")) + WORKER_INDEX
TABLES = (
    "task_events",
    "artifacts",
    "uploads",
    "tasks",
    "queue_controls",
    "usage_records",
    "prices",
    "metric_totals",
    "metric_cursors",
    "metric_minutes",
    "webhook_attempts",
    "webhook_deliveries",
    "webhook_endpoints",
    "api_keys",
    "users",
    "accounts",
    "schedules",
)


def pytest_addoption(parser):
    parser.addoption(
        "--backend",
        choices=["all", "postgres", "embedded"],
        default="all",
        help="Which backends to run the queue scenarios on.",
    )


def pytest_generate_tests(metafunc):
    if "backend" not in metafunc.fixturenames:
        return
    chosen = metafunc.config.getoption("--backend")
    names = ["postgres"]
    if metafunc.definition.get_closest_marker("embedded"):
        names.append("embedded")
    if chosen != "all":
        names = [n for n in names if n == chosen]
    metafunc.parametrize("backend", names, indirect=True)


@pytest.fixture(scope="session")
def pg_database(tmp_path_factory):
    """Create a throwaway PostgreSQL database with the migrations applied; drop it after."""
    name = f"conveyor_test_{os.getpid()}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    var_dir = str(tmp_path_factory.mktemp("migrate"))
    _upgrade({"DATABASE_URL": url, "CONVEYOR_VAR_DIR": var_dir, "CONVEYOR_PLUGINS": "0"})
    yield url
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _upgrade(settings: dict) -> None:
    from flask_migrate import upgrade

    flask_app = app_package.create_app(settings)
    with flask_app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture
def backend(request, tmp_path):
    """The database and broker of one scenario run: "postgres" (with Redis) or "embedded"."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_database")
        _truncate(url)
        broker = f"{REDIS_BASE}/{REDIS_DB}"
        redis.Redis.from_url(broker).flushdb()
        return {"name": "postgres", "DATABASE_URL": url, "BROKER_URL": broker}
    url = f"sqlite:///{tmp_path}/var/conveyor.db"
    settings = {"DATABASE_URL": url, "BROKER_URL": "filesystem://", "CONVEYOR_VAR_DIR": str(tmp_path / "var")}
    _upgrade(settings)
    return {"name": "embedded", **settings}


def _truncate(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
    engine.dispose()


@pytest.fixture
def settings(backend, tmp_path) -> dict:
    """Settings for the app and its worker processes: short leases so failures show fast."""
    return {
        "DATABASE_URL": backend["DATABASE_URL"],
        "BROKER_URL": backend["BROKER_URL"],
        "CONVEYOR_VAR_DIR": backend.get("CONVEYOR_VAR_DIR", str(tmp_path / "var")),
        "CONVEYOR_LEASE_SECONDS": "3",
        "CONVEYOR_HEARTBEAT_SECONDS": "0.5",
        "CONVEYOR_CANCEL_GRACE_SECONDS": "2",
        "CONVEYOR_SWEEP_SECONDS": "0.5",
        "CONVEYOR_PROCESSORS": plugins.PATHS,
        "CONVEYOR_PLUGINS": "0",
        "CONVEYOR_POLICIES": "{}",
        # Tests submit fast; the rate limits have their own tests with low rates.
        "CONVEYOR_SUBMIT_RATE": "100000/second",
    }


@pytest.fixture
def app(settings):
    """The Flask app on the scenario's backend, with an app context pushed."""
    flask_app = app_package.create_app(dict(settings))
    with flask_app.app_context():
        yield flask_app
        db.session.remove()
        db.engine.dispose()
        flask_app.extensions["conveyor"].close()


@pytest.fixture
def account(app) -> models.Account:
    """A fresh account for the test's tasks."""
    row = models.Account(id=uuid.uuid4(), name=f"test-{uuid.uuid4().hex[:8]}")
    db.session.add(row)
    db.session.commit()
    return row


class Processes:
    """Worker and sweeper processes started by a test; all stopped at its end."""

    def __init__(self, settings: dict, log_dir: pathlib.Path):
        self.env = {**os.environ, **settings, "PYTHONPATH": str(ROOT)}
        self.log_dir = log_dir
        self.started: list[subprocess.Popen] = []

    def _start(self, args: list[str], ready: str | None, label: str) -> subprocess.Popen:
        log_path = self.log_dir / f"{label}-{len(self.started)}.log"
        handle = open(log_path, "wb")  # noqa: SIM115 - handed to the child, closed right after
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            cwd=ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        process.log_path = log_path
        self.started.append(process)
        if ready:
            wait_for(
                lambda: ready in log_path.read_text(errors="replace") or process.poll() is not None,
                timeout=60,
                message=f"{label} to start",
            )
            if process.poll() is not None:
                raise RuntimeError(f"{label} exited: {log_path.read_text(errors='replace')[-3000:]}")
        return process

    def worker(self, pool: str = "cpu", concurrency: int = 1) -> subprocess.Popen:
        """Start a Celery worker for `pool` and wait until it is ready."""
        return self._start(["worker", "--pool", pool, "--concurrency", str(concurrency)], " ready.", f"worker-{pool}")

    def sweeper(self) -> subprocess.Popen:
        """Start the sweeper."""
        return self._start(["sweeper"], "sweeper:", "sweeper")

    def kill(self, process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to a started process and all its children."""
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        if sig in (signal.SIGKILL, signal.SIGTERM):
            process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGCONT)
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for process in self.started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            _reap_group(process.pid)


def _reap_group(pgid: int) -> None:
    # Pool processes may outlive their parent for a moment; none may outlive the test.
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture
def processes(settings, tmp_path):
    """Start workers and sweepers as real processes; stop them all after the test."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    started = Processes(settings, log_dir)
    yield started
    started.stop_all()


def wait_for(predicate, timeout: float, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it returns a truthy value; fail the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
