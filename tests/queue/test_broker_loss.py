"""Durable on accept: tasks committed to PostgreSQL all run even if Redis loses every message."""

import pathlib
import signal

import pytest
import redis

import app as app_package
from app.services import tasks as task_service
from tests.conftest import wait_for
from tests.queue import helpers


def test_all_tasks_complete_after_redis_is_flushed(backend, app, account, processes, settings):
    task_ids = [task_service.submit("noop", {"echo": n}, account_id=account.id)[0].id for n in range(100)]
    client = redis.Redis.from_url(settings["BROKER_URL"])
    assert client.llen("cpu") == app.config["CONVEYOR_WAKE_AHEAD"], "wake-ups are coalesced, and all are lost next"
    client.flushdb()
    processes.worker("cpu", concurrency=2)
    processes.sweeper()
    helpers.wait_all(task_ids, timeout=60)
    assert sorted(helpers.task(t).result["echo"] for t in task_ids) == list(range(100))


@pytest.mark.embedded
def test_one_sweeper_at_a_time_the_other_takes_over(backend, app, account, processes, settings):
    first = processes.sweeper()
    second = processes.sweeper()
    logs = (first.log_path, second.log_path)
    standby = wait_for(lambda: [p for p in logs if "standing by" in p.read_text()], timeout=20, message="a standby")
    assert len(standby) == 1, "exactly one sweeper stands by"

    active = first if standby[0] == second.log_path else second
    processes.kill(active, signal.SIGKILL)
    task_id = task_service.submit("noop", {}, account_id=account.id)[0].id
    _drop_messages(settings)
    processes.worker("cpu", concurrency=1)
    helpers.wait_status(task_id, "succeeded", timeout=30)  # only a sweeper could have woken it


def _drop_messages(settings: dict) -> None:
    """Lose every message the broker holds, as a crashed Redis or a wiped folder would."""
    if settings["BROKER_URL"].startswith("redis:"):
        redis.Redis.from_url(settings["BROKER_URL"]).flushdb()
        return
    for message in pathlib.Path(settings["CONVEYOR_VAR_DIR"], "broker").glob("*.msg"):
        message.unlink()


def test_submit_while_the_broker_is_down_is_stored_and_runs_later(backend, settings, app, account, processes):
    down = app_package.create_app({**settings, "BROKER_URL": "redis://127.0.0.1:1/0"})
    with down.app_context():
        task, created = task_service.submit("noop", {"echo": "kept"}, account_id=account.id)
    assert created, "a stored task is reported as stored even if its wake-up could not be sent"

    processes.worker("cpu", concurrency=1)
    processes.sweeper()
    assert helpers.wait_status(task.id, "succeeded", timeout=30).result == {"echo": "kept"}
