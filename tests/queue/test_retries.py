"""Retries follow the type's policy: exponential backoff with jitter between attempts, every
attempt's error kept; a permanent error fails at once."""

import json

import pytest

from app.services import tasks as task_service
from tests.queue import helpers

POLICY = {"flaky": {"max_attempts": 4, "backoff_base": 1.0, "backoff_cap": 10, "backoff_jitter": 0.5}}
# A retry's next start may lag its due time by the wake-up's delivery and the claim.
LAG = 1.0


@pytest.fixture
def settings(settings):
    return {**settings, "CONVEYOR_POLICIES": json.dumps(POLICY)}


@pytest.mark.embedded
def test_retryable_errors_back_off_then_succeed(backend, app, account, processes):
    processes.worker("io", concurrency=1)
    task_id = task_service.submit("flaky", {"times": 2}, account_id=account.id)[0].id
    row = helpers.wait_status(task_id, "succeeded", timeout=30)

    assert row.attempt == 3 and row.result == {"succeeded_on_attempt": 3}
    status_events = helpers.events(task_id, "status")
    retries = [e for e in status_events if e.data["status"] == "queued" and "error" in e.data]
    assert [e.data["error"]["attempt"] for e in retries] == [1, 2]
    for retry in retries:
        attempt = retry.data["error"]["attempt"]
        full = min(10, 1.0 * 2 ** (attempt - 1))
        assert full * 0.5 <= retry.data["retry_in"] <= full, "backoff outside the policy's jitter range"
        started = next(e for e in status_events if e.data["status"] == "running" and e.attempt == attempt + 1)
        waited = (started.created_at - retry.created_at).total_seconds()
        assert retry.data["retry_in"] - 0.05 <= waited <= retry.data["retry_in"] + LAG, waited


def test_exhausted_attempts_fail_with_every_error_kept(backend, app, account, processes):
    processes.worker("io", concurrency=1)
    task_id = task_service.submit("flaky", {"times": 10}, account_id=account.id)[0].id
    row = helpers.wait_status(task_id, "failed", timeout=30)

    assert row.attempt == 4
    errors = [e.data["error"] for e in helpers.events(task_id, "status") if "error" in e.data]
    assert [error["attempt"] for error in errors] == [1, 2, 3, 4]
    assert all(error["type"] == "RetryableError" and "flaky failure" in error["message"] for error in errors)
    assert row.error["attempt"] == 4


@pytest.mark.embedded
def test_permanent_error_fails_at_once(backend, app, account, processes):
    processes.worker("io", concurrency=1)
    task_id = task_service.submit("flaky", {"times": 3, "error": "permanent"}, account_id=account.id)[0].id
    row = helpers.wait_status(task_id, "failed", timeout=30)

    assert row.attempt == 1
    assert row.error["type"] == "PermanentError" and row.error["retryable"] is False
    assert helpers.statuses(task_id) == ["queued", "running", "failed"]
