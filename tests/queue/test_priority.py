"""Strict priority: among tasks that may start, urgent > high > normal > low, then run_at,
then age, whatever order the broker's messages arrive in."""

import pytest

from app.models import Priority
from app.services import queue as queue_service
from app.services import tasks as task_service
from tests.queue import helpers


def _submit(account, count: int, priority: str, seconds: float = 0.02) -> list:
    return [
        task_service.submit("sleep", {"seconds": seconds}, account_id=account.id, priority=priority)[0].id
        for _ in range(count)
    ]


@pytest.mark.embedded
def test_urgent_tasks_start_before_waiting_low_ones(backend, app, account, processes):
    low_count = 50 if backend == "postgres" else 15
    queue_service.stop()
    low = _submit(account, low_count, "low")
    urgent = _submit(account, 5, "urgent")
    processes.worker("cpu", concurrency=1)
    queue_service.start()
    helpers.wait_all(low + urgent, timeout=120)

    order = sorted(low + urgent, key=lambda task_id: helpers.task(task_id).started_at)
    assert set(order[:5]) == set(urgent), "the 5 urgent tasks must start before any low one"
    assert order[5:] == low, "low tasks keep their submission order"


def test_priority_beats_arrival_while_the_queue_runs(backend, app, account, processes):
    processes.worker("cpu", concurrency=1)
    blocker = _submit(account, 1, "normal", seconds=1.0)[0]
    helpers.wait_status(blocker, "running")
    later = _submit(account, 3, "low") + _submit(account, 3, "high") + _submit(account, 2, "urgent")
    helpers.wait_all([blocker, *later], timeout=60)

    started = sorted(later, key=lambda task_id: helpers.task(task_id).started_at)
    priorities = [helpers.task(task_id).priority for task_id in started]
    assert priorities == sorted(priorities)
    assert priorities[0] == Priority.URGENT and priorities[-1] == Priority.LOW
