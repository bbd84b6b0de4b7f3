"""The state machine in `app.queue.states` is what the queue's statements enforce: every
operation succeeds exactly from the states the transition table allows."""

import uuid

import pytest

from app import models
from app.extensions import db
from app.models import Status
from app.queue import errors, lifecycle, states

OPERATIONS = {
    # operation -> (the state it moves a task to, the states it may start from, how to call it)
    "cancel": (Status.CANCELLED, states.REQUESTS["cancel"], lambda task: lifecycle.cancel(db.session, task.id)),
    "retry": (Status.QUEUED, states.REQUESTS["retry"], lambda task: lifecycle.retry(db.session, task.id, 1)),
    "finish": (
        Status.SUCCEEDED,
        frozenset(states.sources(Status.SUCCEEDED)),
        lambda task: lifecycle.finish(db.session, task.id, task.attempt, {}),
    ),
}


def _task_in(account, status: Status) -> models.Task:
    task = models.Task(
        id=uuid.uuid4(),
        type="noop",
        pool="cpu",
        status=status,
        params={},
        attempt=1,
        max_attempts=1,
        account_id=account.id,
    )
    db.session.add(task)
    db.session.commit()
    return task


@pytest.mark.embedded
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("status", list(Status))
def test_operations_follow_the_transition_table(backend, app, account, operation, status):
    target, sources, call = OPERATIONS[operation]
    task = _task_in(account, status)
    allowed = status in sources
    try:
        call(task)
        db.session.commit()
        moved = True
    except (errors.InvalidTransition, errors.StaleAttempt):
        db.session.rollback()
        moved = False
    db.session.expire_all()
    after = db.session.get(models.Task, task.id).status
    if status == Status.RUNNING and operation == "cancel":
        # A running task is asked, not moved: its attempt stops at the next heartbeat.
        assert moved and after == Status.RUNNING and db.session.get(models.Task, task.id).cancel_requested_at
        return
    assert moved == allowed, f"{operation} from {status}: table says {allowed}"
    assert after == (target if allowed else status)


def test_requests_are_moves_the_table_allows():
    targets = {"cancel": Status.CANCELLED, "retry": Status.QUEUED}
    for request, sources in states.REQUESTS.items():
        assert all(states.can_move(source, targets[request]) for source in sources), request


def test_terminal_states_have_no_way_out_but_retry():
    for state in states.TERMINAL:
        assert states.TRANSITIONS[state] <= {Status.QUEUED}
    assert states.sources(Status.RUNNING) == [Status.QUEUED]
