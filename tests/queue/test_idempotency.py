"""Idempotency keys: the same key in one account gives one task, even under concurrency."""

import threading

import pytest
import sqlalchemy as sa

from app import models
from app.extensions import db
from app.services import tasks as task_service


@pytest.mark.embedded
def test_same_key_twice_gives_one_task(backend, app, account):
    first, created = task_service.submit("noop", {"echo": 1}, account_id=account.id, idempotency_key="k-1")
    again, created_again = task_service.submit("noop", {"echo": 2}, account_id=account.id, idempotency_key="k-1")
    assert created and not created_again
    assert again.id == first.id and again.params == {"echo": 1}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(models.Task)) == 1


def test_key_is_scoped_to_the_account(backend, app, account):
    other = models.Account(name="other-account")
    db.session.add(other)
    db.session.commit()
    mine = task_service.submit("noop", {}, account_id=account.id, idempotency_key="shared")[0]
    theirs = task_service.submit("noop", {}, account_id=other.id, idempotency_key="shared")[0]
    assert mine.id != theirs.id


def test_concurrent_submits_with_one_key_give_one_task(backend, app, account):
    ids, failures = [], []
    account_id = account.id  # read here: the fixture's row belongs to this thread's session

    def submit():
        with app.app_context():
            try:
                ids.append(task_service.submit("noop", {}, account_id=account_id, idempotency_key="race")[0].id)
            except Exception as exc:  # collected and asserted below
                failures.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and len(set(ids)) == 1
