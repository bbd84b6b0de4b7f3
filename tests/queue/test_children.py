"""Child tasks: a processor submits children through its context; a retried parent gets the
same children back; cancelling a parent cancels every waiting or running task below it."""

import pytest
import sqlalchemy as sa

from app import models
from app.extensions import db
from app.services import tasks as task_service
from tests.queue import helpers

pytestmark = pytest.mark.embedded


def _children(parent_id) -> list[models.Task]:
    db.session.rollback()
    query = sa.select(models.Task).where(models.Task.parent_id == parent_id).order_by(models.Task.created_at)
    return list(db.session.scalars(query))


def test_children_run_and_a_retried_parent_does_not_duplicate_them(backend, app, account, processes):
    processes.worker("io", concurrency=1)
    processes.worker("cpu", concurrency=2)
    parent, _ = task_service.submit("fan_out", {"count": 2, "seconds": 0.3, "fail_once": True}, account_id=account.id)
    done = helpers.wait_status(parent.id, ("succeeded", "failed"), timeout=60)
    assert done.status == "succeeded", done.error
    assert done.attempt == 2, "the first attempt failed after submitting the children"
    children = _children(parent.id)
    assert [c.type for c in children] == ["sleep", "sleep"], "the retry got the same two children back"
    assert {c.status for c in children} == {"succeeded"} and all(c.account_id == account.id for c in children)
    assert done.result == {"children": {"child-0": "succeeded", "child-1": "succeeded"}}


def test_cancelling_a_parent_cancels_its_children(backend, app, account, processes):
    processes.worker("io", concurrency=1)
    processes.worker("cpu", concurrency=1)  # one child runs, the others wait
    parent, _ = task_service.submit("fan_out", {"count": 3, "seconds": 30}, account_id=account.id)
    helpers.wait_for(lambda: len(_children(parent.id)) == 3, timeout=30, message="three children")
    helpers.wait_for(
        lambda: any(c.status == "running" for c in _children(parent.id)), timeout=30, message="a child running"
    )
    assert task_service.cancel(parent.id, account.id) == "cancel_requested"
    helpers.wait_status(parent.id, "cancelled", timeout=30)
    for child in _children(parent.id):
        helpers.wait_status(child.id, "cancelled", timeout=30)


def test_a_child_over_the_accounts_waiting_quota_is_refused(backend, app, account, processes):
    from app.services import accounts

    accounts.configure(account.name, max_waiting=1)
    processes.worker("io", concurrency=1)  # no cpu worker: the first child keeps waiting
    parent, _ = task_service.submit("fan_out", {"count": 2, "seconds": 0.1}, account_id=account.id)
    done = helpers.wait_status(parent.id, ("succeeded", "failed"), timeout=60)
    assert done.status == "failed" and done.attempt == 2, "refused children are retried, then fail the parent"
    assert "max_waiting" in str(done.error)
    assert len(_children(parent.id)) == 1, "the second child was never stored"
