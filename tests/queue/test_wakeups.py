"""Wake-ups are coalesced and one wake-up drains its pool: a burst of submits leaves at most
`CONVEYOR_WAKE_AHEAD` messages on the broker, and every task still runs, with no sweeper."""

import pytest

from app import runtime
from app.services import tasks as task_service
from tests.queue import helpers


@pytest.fixture
def settings(settings):
    return {**settings, "CONVEYOR_WAKE_AHEAD": "2"}


@pytest.mark.embedded
def test_a_burst_leaves_at_most_wake_ahead_messages(backend, app, account):
    for n in range(25):
        task_service.submit("noop", {"echo": n}, account_id=account.id)
    assert runtime.current().backlog("cpu") == 2


@pytest.mark.embedded
@pytest.mark.parametrize("drain_seconds", ["60", "0"], ids=["one-wake-drains", "time-slice-hands-over"])
def test_every_task_of_a_burst_runs_without_a_sweeper(backend, settings, app, account, processes, drain_seconds):
    task_ids = [task_service.submit("noop", {"echo": n}, account_id=account.id)[0].id for n in range(25)]
    # With a time slice of 0 each wake-up runs one task, then publishes the next wake-up itself.
    processes.env["CONVEYOR_DRAIN_SECONDS"] = drain_seconds
    processes.worker("cpu", concurrency=1)
    helpers.wait_all(task_ids, timeout=60)
    assert sorted(helpers.task(t).result["echo"] for t in task_ids) == list(range(25))


def test_a_claim_tells_a_draining_runner_whether_more_is_waiting(backend, app, account):
    # PostgreSQL only: the claim's snapshot still shows its own row, so "more" means "another".
    for n in range(2):
        task_service.submit("noop", {"echo": n}, account_id=account.id)
    runner = runtime.current().make_runner()
    first, second = runner.claim("cpu"), runner.claim("cpu")
    assert (first.more, second.more) == (True, False)
    assert runner.claim("cpu") is None
