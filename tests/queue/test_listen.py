"""Idle workers wait on PostgreSQL (`app.queue.listen`): a submit wakes a waiting worker with
NOTIFY and no broker message, sent right after the submit's commit in the same round trip; the
mark is held only while waiting; a burst spreads over the waiting workers; a warm shutdown does
not wait out the linger. PostgreSQL only."""

import datetime
import os
import select
import signal
import time

import psycopg2
import pytest
import sqlalchemy as sa

import app as app_package
from app import runtime
from app.extensions import db
from app.queue import listen
from app.services import queue as queue_service
from app.services import tasks as task_service
from tests.conftest import wait_for
from tests.queue import helpers

MARK = listen.mark("cpu")


@pytest.fixture
def settings(settings):
    return {**settings, "CONVEYOR_LINGER_SECONDS": "600"}


def waiting_sessions() -> int:
    """How many sessions of the test database are marked as waiting for the cpu pool."""
    db.session.rollback()
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = :mark"
    return db.session.scalar(sa.text(query), {"mark": MARK})


def run_one(account, seconds: float = 0) -> None:
    """Submit a task, wait for it: a worker process that ran it waits listening after."""
    if seconds:
        task_id = task_service.submit("sleep", {"seconds": seconds}, account_id=account.id)[0].id
    else:
        task_id = task_service.submit("noop", {}, account_id=account.id)[0].id
    helpers.wait_status(task_id, "succeeded", timeout=30)


def test_a_submit_wakes_a_waiting_worker_without_the_broker(backend, settings, app, account, processes, caplog):
    processes.worker("cpu", concurrency=1)
    run_one(account)

    # A second app whose broker cannot be reached: a submit that tried to publish would log a
    # warning, and with no sweeper running its task would never start.
    no_broker = app_package.create_app({**settings, "BROKER_URL": "redis://127.0.0.1:9/0"})
    with no_broker.app_context():
        assert runtime.current().listening
        for n in range(5):
            wait_for(lambda: waiting_sessions() == 1, timeout=10, message="the worker to wait listening")
            task_id = task_service.submit("noop", {"echo": n}, account_id=account.id)[0].id
            assert helpers.wait_status(task_id, "succeeded", timeout=10).result == {"echo": n}
        db.session.remove()
    assert not [r for r in caplog.records if "could not wake" in r.getMessage()], "a submit tried the broker"


class StandIn:
    """A session that waits as a worker's does: listening on its channel, marked for the cpu
    pool; no worker process behind it."""

    def __init__(self, url: str):
        self.connection = psycopg2.connect(sa.make_url(url).set(drivername="postgresql").render_as_string(False))
        self.connection.autocommit = True
        with self.connection.cursor() as cursor:
            cursor.execute(f"LISTEN {listen.channel(self.connection.get_backend_pid())}")
            cursor.execute("SELECT set_config('application_name', %s, false)", (MARK,))

    def notices(self, timeout: float) -> int:
        """Wait up to `timeout` s for notices; return how many came (and drop them)."""
        if select.select([self.connection], [], [], timeout)[0]:
            self.connection.poll()
        count = len(self.connection.notifies)
        del self.connection.notifies[:]
        return count

    def sees(self, task_id) -> bool:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM tasks WHERE id = %s", (str(task_id),))
            return cursor.fetchone() is not None


def test_a_submit_notifies_one_waiter_after_its_commit(backend, settings, app, account):
    waiters = [StandIn(settings["DATABASE_URL"]), StandIn(settings["DATABASE_URL"])]
    try:
        task = task_service.submit("noop", {}, account_id=account.id)[0]
        assert task.notified_at_submit is True, "the submit found no waiting session"
        counts = [waiter.notices(timeout=5) for waiter in waiters]
        assert sorted(counts) == [0, 1], f"one notice for one waiter, got {counts}"
        woken = waiters[counts.index(1)]
        assert woken.sees(task.id), "the notice came before the task was visible"

        later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)
        delayed = task_service.submit("noop", {}, account_id=account.id, run_at=later)[0]
        assert delayed.notified_at_submit is None, "a task due later must not wake a worker now"
        assert [waiter.notices(timeout=0.5) for waiter in waiters] == [0, 0]
    finally:
        for waiter in waiters:
            waiter.connection.close()

    alone = task_service.submit("noop", {}, account_id=account.id)[0]
    assert alone.notified_at_submit is False, "no session waits: it looked and found none"


def test_a_worker_is_marked_only_while_it_waits(backend, settings, app, account, processes):
    processes.worker("cpu", concurrency=1)
    run_one(account)
    wait_for(lambda: waiting_sessions() == 1, timeout=10, message="the worker to wait listening")
    assert queue_service.status()["idle_workers"] == {"cpu": 1}, "queue status shows the idle worker"
    task_id = task_service.submit("sleep", {"seconds": 2}, account_id=account.id)[0].id
    helpers.wait_status(task_id, "running", timeout=10)
    assert waiting_sessions() == 0, "a worker running a task must not be counted as waiting"
    assert queue_service.status()["idle_workers"] == {}
    helpers.wait_status(task_id, "succeeded", timeout=30)
    wait_for(lambda: waiting_sessions() == 1, timeout=10, message="the worker to wait again")


def test_a_burst_spreads_over_waiting_workers(backend, settings, app, account, processes):
    processes.worker("cpu", concurrency=2)
    # Two overlapping tasks make both pool processes run one, and then both wait listening.
    first = [task_service.submit("sleep", {"seconds": 1}, account_id=account.id)[0].id for _ in range(2)]
    helpers.wait_all(first, timeout=30)
    wait_for(lambda: waiting_sessions() == 2, timeout=10, message="both processes to wait listening")

    burst = [task_service.submit("sleep", {"seconds": 3}, account_id=account.id)[0].id for _ in range(2)]
    helpers.wait_all(burst, timeout=30)
    rows = [helpers.task(t) for t in burst]
    assert rows[0].worker != rows[1].worker, "each waiting process took one"
    gap = abs((rows[0].started_at - rows[1].started_at).total_seconds())
    assert gap < 1.5, f"the second task started {gap:.2f}s after the first: it waited for the first to end"


def test_an_idle_worker_returns_to_celery_after_the_linger(backend, settings, app, account, processes):
    processes.env["CONVEYOR_LINGER_SECONDS"] = "1"
    processes.worker("cpu", concurrency=1)
    run_one(account)
    wait_for(lambda: waiting_sessions() == 0, timeout=10, message="the linger to end")
    run_one(account)  # no one waits: this submit publishes, and the worker takes it from Celery


def test_a_warm_shutdown_does_not_wait_out_the_linger(backend, settings, app, account, processes):
    worker = processes.worker("cpu", concurrency=1)
    run_one(account)
    wait_for(lambda: waiting_sessions() == 1, timeout=10, message="the worker to wait listening")
    began = time.monotonic()
    os.kill(worker.pid, signal.SIGTERM)  # the main process only: Celery's warm shutdown
    worker.wait(timeout=30)
    assert time.monotonic() - began < 10, "the lingering pool process held the shutdown"
    assert waiting_sessions() == 0


def test_listening_is_off_when_the_linger_is_zero(backend, settings):
    flask_app = app_package.create_app({**settings, "CONVEYOR_LINGER_SECONDS": "0"})
    with flask_app.app_context():
        assert runtime.current().autocommit_engine is not None
        assert not runtime.current().listening
        db.engine.dispose()
