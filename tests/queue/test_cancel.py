"""Cancel: a waiting task at once and for good; a running one within about 2 s; one that
ignores the cancel is hard-stopped after the grace period."""

import time

import pytest

from app.services import errors
from app.services import queue as queue_service
from app.services import tasks as task_service
from tests.queue import helpers


@pytest.mark.embedded
def test_cancel_waiting_task_is_immediate_and_final(backend, app, account, processes):
    queue_service.stop()
    task_id = task_service.submit("noop", {}, account_id=account.id)[0].id
    assert task_service.cancel(task_id, account.id) == "cancelled"
    assert helpers.task(task_id).status == "cancelled"

    processes.worker("cpu", concurrency=1)
    queue_service.start()
    other = task_service.submit("noop", {}, account_id=account.id)[0].id
    helpers.wait_status(other, "succeeded")
    assert helpers.statuses(task_id) == ["queued", "cancelled"]
    with pytest.raises(errors.Conflict):
        task_service.cancel(task_id, account.id)


@pytest.mark.embedded
def test_cancel_running_sleep_stops_within_two_seconds(backend, app, account, processes):
    processes.worker("cpu", concurrency=1)
    task_id = task_service.submit("sleep", {"seconds": 60}, account_id=account.id)[0].id
    helpers.wait_status(task_id, "running")
    asked = time.monotonic()
    assert task_service.cancel(task_id, account.id) == "cancel_requested"
    row = helpers.wait_status(task_id, "cancelled", timeout=5)
    assert time.monotonic() - asked <= 2.0
    assert row.attempt == 1 and row.result is None


def test_cancel_ignored_is_hard_stopped_after_grace(backend, app, account, processes):
    processes.worker("cpu", concurrency=1)
    task_id = task_service.submit("stubborn", {}, account_id=account.id)[0].id
    helpers.wait_status(task_id, "running")
    asked = time.monotonic()
    task_service.cancel(task_id, account.id)
    row = helpers.wait_status(task_id, ("cancelled", "failed", "queued"), timeout=10)
    assert row.status == "cancelled", "a cancel must win over the hard timeout"
    assert time.monotonic() - asked < 2 + 1.5  # grace period plus a heartbeat or two
    after = task_service.submit("noop", {}, account_id=account.id)[0].id
    helpers.wait_status(after, "succeeded", timeout=20)
