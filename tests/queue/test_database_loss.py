"""Every long-lived process survives a lost database connection: a PostgreSQL cluster of the
test's own is restarted (`pg_ctl restart -m fast`) and stopped under a worker with waiting
(LISTEN) pool processes, the sweeper and the API; each rolls back, reconnects and goes on."""

import pathlib
import signal
import tempfile
import time
import uuid

import pytest
import redis
import sqlalchemy as sa

from app.extensions import db
from app.queue import health
from app.services import accounts
from app.services import tasks as task_service
from tests.api.conftest import bearer
from tests.conftest import REDIS_BASE, REDIS_DB, _upgrade, wait_for
from tests.postgres_server import Cluster, missing
from tests.queue import helpers

pytestmark = pytest.mark.skipif(missing() is not None, reason=f"no PostgreSQL cluster of our own: {missing()}")


@pytest.fixture(scope="module")
def cluster():
    # Not under pytest's folder: the `postgres` user initdb runs as cannot enter root's.
    own = Cluster(pathlib.Path(tempfile.mkdtemp(prefix="conveyor-test-pg-")))
    own.create()
    yield own
    own.destroy()


@pytest.fixture
def backend(cluster, tmp_path):
    """The scenario's backend (conftest's `settings`, `app` and `processes` build on it): a
    fresh database on the test's own cluster, and the tests' Redis db."""
    name = f"lost_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(cluster.url().replace("postgresql:", "postgresql+psycopg2:"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    broker = f"{REDIS_BASE}/{REDIS_DB}"
    redis.Redis.from_url(broker).flushdb()
    _upgrade(
        {
            "DATABASE_URL": cluster.url(name),
            "CONVEYOR_VAR_DIR": str(tmp_path / "migrate"),
            "CONVEYOR_PLUGINS": "0",
        }
    )
    return {"name": "postgres", "DATABASE_URL": cluster.url(name), "BROKER_URL": broker}


def test_worker_waiters_and_sweeper_go_on_after_postgres_restarts(cluster, settings, app, processes):
    account_id = accounts.create_account(f"lost-{uuid.uuid4().hex[:6]}").id
    worker = processes.worker("cpu", concurrency=2)
    sweeper = processes.sweeper()
    running = task_service.submit("sleep", {"seconds": 3}, account_id=account_id)[0].id
    wait_for(lambda: helpers.task(running).status == "running", timeout=20, message="a running task")
    db.session.remove()

    cluster.restart()  # the running attempt, the idle waiter's LISTEN and the sweeper's lock all drop
    _forget_connections(app)

    after = task_service.submit("noop", {}, account_id=account_id)[0].id
    helpers.wait_status(after, "succeeded", timeout=20)  # a waiter (or a wake-up) took it
    helpers.wait_status(running, "succeeded", timeout=30)
    # A worker lost while the database is away for a few seconds: sweeps fail meanwhile, and
    # once it is back the sweeper rescues the task.
    stranded = task_service.submit("sleep", {"seconds": 30}, account_id=account_id)[0].id
    wait_for(lambda: helpers.task(stranded).status == "running", timeout=20, message="the second running task")
    db.session.remove()
    processes.kill(worker, signal.SIGKILL)
    cluster.stop()
    time.sleep(3)
    cluster.start()
    _forget_connections(app)
    processes.worker("cpu", concurrency=1)
    wait_for(lambda: helpers.task(stranded).attempt == 2, timeout=30, message="the rescue of the stranded task")

    worker_log = worker.log_path.read_text()
    assert "raised unexpected" not in worker_log, "a wake-up failed for good on a dropped connection"
    sweeper_log = sweeper.log_path.read_text()
    assert sweeper.poll() is None, sweeper_log[-3000:]
    assert "sweep failed" in sweeper_log and "sweeping again" in sweeper_log
    assert "PendingRollbackError" not in sweeper_log
    lost = [e.data["error"]["type"] for e in helpers.events(stranded, "status") if "error" in e.data]
    assert lost == ["LeaseExpired"]
    wait_for(lambda: health.check(settings["CONVEYOR_VAR_DIR"], "sweeper")[0], timeout=10, message="a healthy sweeper")


def _forget_connections(flask_app) -> None:
    # The test's own pooled connections died with the server (the app's first use of each
    # would answer 503 and drop the pool; the test would rather not spend a submit on that).
    db.engine.dispose()
    flask_app.extensions["conveyor"].close()


def test_the_api_answers_503_while_postgres_is_down_and_recovers(cluster, settings, app):
    account = accounts.create_account(f"api-{uuid.uuid4().hex[:6]}")
    accounts.create_user(account.name, "member", "member")
    key = accounts.create_key(account.name, "member")[1]
    client = app.test_client()
    created = client.post("/api/tasks", json={"type": "noop"}, headers=bearer(key))
    assert created.status_code == 202, created.get_json()
    task_id = created.get_json()["task_id"]
    db.session.remove()

    cluster.stop()
    try:
        read = client.get(f"/api/tasks/{task_id}", headers=bearer(key))
        submit = client.post("/api/tasks", json={"type": "noop"}, headers=bearer(key))
    finally:
        cluster.start()
    # The first request on each dropped pooled connection may still fail; never a 500.
    statuses = [client.get(f"/api/tasks/{task_id}", headers=bearer(key)).status_code for _ in range(3)]

    for answer in (read, submit):
        assert answer.status_code == 503, answer.get_data(as_text=True)
        assert answer.get_json()["code"] == "database_unavailable"
        assert "database is unavailable" in answer.get_json()["message"]
        assert answer.headers["Retry-After"] == "2"
    assert 500 not in statuses and statuses[-1] == 200, statuses
