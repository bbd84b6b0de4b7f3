"""One live attempt: a worker SIGKILLed mid-task loses its lease within seconds and a new
worker finishes the task; an attempt that comes back after losing its lease cannot write."""

import signal
import time

import pytest

from app.extensions import db
from app.queue import errors, lifecycle
from app.services import queue as queue_service
from app.services import tasks as task_service
from tests.conftest import wait_for
from tests.queue import helpers


@pytest.mark.embedded
def test_killed_worker_task_is_finished_by_a_new_worker(backend, app, account, processes):
    first = processes.worker("cpu", concurrency=1)
    processes.sweeper()
    task_id = task_service.submit("sleep", {"seconds": 2}, account_id=account.id)[0].id
    wait_for(lambda: helpers.task(task_id).progress > 0, timeout=20, message="the sleep to make progress")
    processes.kill(first, signal.SIGKILL)
    processes.worker("cpu", concurrency=1)
    row = helpers.wait_status(task_id, "succeeded", timeout=30)

    assert row.attempt == 2
    lost = [e.data["error"] for e in helpers.events(task_id, "status") if "error" in e.data]
    assert [error["type"] for error in lost] == ["LeaseExpired"]
    assert [e.attempt for e in helpers.events(task_id, "status") if e.data["status"] == "succeeded"] == [2]
    with pytest.raises(errors.StaleAttempt):
        lifecycle.finish(db.session, task_id, 1, {"from": "the dead attempt"})
    db.session.rollback()
    assert helpers.task(task_id).result == {"slept": 2.0}


def test_attempt_that_returns_after_losing_its_lease_cannot_write(backend, app, account, processes):
    frozen = processes.worker("cpu", concurrency=1)
    processes.sweeper()
    task_id = task_service.submit("sleep", {"seconds": 3}, account_id=account.id)[0].id
    wait_for(lambda: helpers.task(task_id).progress > 0, timeout=20, message="the sleep to make progress")
    processes.kill(frozen, signal.SIGSTOP)
    processes.worker("cpu", concurrency=1)
    wait_for(lambda: helpers.task(task_id).attempt == 2, timeout=20, message="the second attempt")
    processes.kill(frozen, signal.SIGCONT)
    row = helpers.wait_status(task_id, "succeeded", timeout=30)
    time.sleep(2)  # give the thawed attempt time to try its writes

    assert row.attempt == 2 and helpers.task(task_id).result == {"slept": 3.0}
    late = [e for e in helpers.events(task_id) if e.attempt == 1 and e.id > _rescue_event(task_id).id]
    assert late == [], "the stale attempt wrote after its lease was taken"
    assert [e.data["status"] for e in helpers.events(task_id, "status")].count("succeeded") == 1


def _rescue_event(task_id):
    return next(e for e in helpers.events(task_id, "status") if e.data.get("error", {}).get("type") == "LeaseExpired")


def test_admin_cleanup_reports_each_task_it_rescued(backend, app, account, processes):
    worker = processes.worker("cpu", concurrency=1)
    task_id = task_service.submit("sleep", {"seconds": 5}, account_id=account.id)[0].id
    wait_for(lambda: helpers.task(task_id).progress > 0, timeout=20, message="the sleep to make progress")
    processes.kill(worker, signal.SIGKILL)
    assert queue_service.cleanup() == [], "a live lease is not rescued"
    wait_for(lambda: helpers.task(task_id).lease_until < lifecycle.now(), timeout=10, message="the lease to expire")

    report = queue_service.cleanup()
    assert [(item["task_id"], item["action"]) for item in report] == [(str(task_id), "requeued")]
    assert "stopped renewing its lease" in report[0]["reason"]
    assert helpers.task(task_id).status == "queued"
