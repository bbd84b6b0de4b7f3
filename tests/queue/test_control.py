"""Durable control: a stopped queue starts nothing, even across worker restarts, until it is
started; pauses by pool or type hold only what they name; concurrency limits cap a type."""

import itertools
import time

import pytest

from app.services import queue as queue_service
from app.services import tasks as task_service
from tests.queue import helpers


@pytest.mark.embedded
def test_stopped_queue_survives_worker_restart(backend, app, account, processes):
    worker = processes.worker("cpu", concurrency=1)
    queue_service.stop()
    task_ids = [task_service.submit("noop", {}, account_id=account.id)[0].id for _ in range(5)]
    processes.kill(worker)
    processes.worker("cpu", concurrency=1)
    processes.sweeper()
    time.sleep(3)
    assert {helpers.task(task_id).status for task_id in task_ids} == {"queued"}

    queue_service.start()
    helpers.wait_all(task_ids, timeout=30)


def test_pause_by_type_and_pool_holds_only_what_it_names(backend, app, account, processes):
    processes.worker("cpu", concurrency=1)
    processes.worker("io", concurrency=1)
    processes.sweeper()
    queue_service.stop(type="sleep")
    queue_service.stop(pool="io")
    held_sleep = task_service.submit("sleep", {"seconds": 0}, account_id=account.id)[0].id
    held_io = task_service.submit("flaky", {"times": 0}, account_id=account.id)[0].id
    free = task_service.submit("noop", {}, account_id=account.id)[0].id
    helpers.wait_status(free, "succeeded")
    time.sleep(2)
    assert helpers.task(held_sleep).status == "queued" and helpers.task(held_io).status == "queued"

    queue_service.start(type="sleep")
    helpers.wait_status(held_sleep, "succeeded")
    assert helpers.task(held_io).status == "queued"
    queue_service.start(pool="io")
    helpers.wait_status(held_io, "succeeded")


def test_concurrency_limit_caps_running_tasks_of_a_type(backend, app, account, processes):
    processes.worker("cpu", concurrency=3)
    processes.sweeper()
    queue_service.set_limit("sleep", 1)
    task_ids = [task_service.submit("sleep", {"seconds": 0.6}, account_id=account.id)[0].id for _ in range(4)]
    helpers.wait_all(task_ids, timeout=30)

    spans = sorted((helpers.task(t).started_at, helpers.task(t).finished_at) for t in task_ids)
    for (_, finished), (started, _) in itertools.pairwise(spans):
        assert started >= finished, "two tasks of a type limited to 1 ran at the same time"
    status = queue_service.status()
    assert status["limits"] == {"sleep": 1}


def test_concurrency_limit_of_two_runs_two_at_once_never_three(backend, app, account, processes):
    processes.worker("cpu", concurrency=3)
    processes.sweeper()
    queue_service.set_limit("sleep", 2)
    task_ids = [task_service.submit("sleep", {"seconds": 1.0}, account_id=account.id)[0].id for _ in range(6)]
    helpers.wait_all(task_ids, timeout=40)

    spans = [(helpers.task(t).started_at, helpers.task(t).finished_at) for t in task_ids]
    moments = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running, most = 0, 0
    for _, change in moments:
        running += change
        most = max(most, running)
    assert most == 2, f"at most {most} ran at once under a limit of 2"
