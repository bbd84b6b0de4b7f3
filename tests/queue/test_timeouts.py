"""Soft timeout reaches the processor, which may clean up; a processor that ignores it is
killed at the hard timeout, and its task is retried or failed by policy."""

import pytest

from app.services import tasks as task_service
from tests.plugins import StubbornProcessor
from tests.queue import helpers


@pytest.mark.embedded
def test_soft_timeout_is_seen_by_the_processor(backend, app, account, processes):
    processes.worker("cpu", concurrency=1)
    task_id = task_service.submit("soft_aware", {}, account_id=account.id)[0].id
    row = helpers.wait_status(task_id, "failed", timeout=20)

    assert row.error["type"] == "SoftTimeout"
    logs = [e.data["message"] for e in helpers.events(task_id, "log")]
    assert "cleaning up after soft timeout" in logs
    running = next(e for e in helpers.events(task_id, "status") if e.data["status"] == "running")
    failed = helpers.events(task_id, "status")[-1]
    assert 0.9 <= (failed.created_at - running.created_at).total_seconds() < 3


@pytest.mark.embedded
def test_processor_ignoring_soft_timeout_is_killed_at_hard_timeout(backend, app, account, processes):
    processes.worker("cpu", concurrency=1)
    task_id = task_service.submit("stubborn", {}, account_id=account.id)[0].id
    row = helpers.wait_status(task_id, "failed", timeout=30)

    hard = StubbornProcessor.policy.hard_timeout
    assert row.attempt == StubbornProcessor.policy.max_attempts
    status_events = helpers.events(task_id, "status")
    for attempt in (1, 2):
        started = next(e for e in status_events if e.data["status"] == "running" and e.attempt == attempt)
        ended = next(e for e in status_events if e.attempt == attempt and "error" in e.data)
        assert ended.data["error"]["type"] == "HardTimeout"
        assert hard <= (ended.created_at - started.created_at).total_seconds() < hard + 1.5

    # The killed pool process was replaced: the worker still runs tasks.
    after = task_service.submit("noop", {}, account_id=account.id)[0].id
    helpers.wait_status(after, "succeeded", timeout=20)
