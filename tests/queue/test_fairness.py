"""Fair share across accounts: within a priority, claims alternate between accounts by their
recent starts (weighted), an account at its running limit starts nothing more, and a waiting
task ages toward higher priority."""

import datetime
import itertools
import time
import uuid

import pytest

from app import models
from app.api import schemas
from app.extensions import db
from app.services import queue as queue_service
from app.services import tasks as task_service
from tests.queue import helpers


def _account(name: str, **settings) -> models.Account:
    row = models.Account(id=uuid.uuid4(), name=f"{name}-{uuid.uuid4().hex[:8]}", **settings)
    db.session.add(row)
    db.session.commit()
    return row


def _submit(account, count: int, seconds: float = 0.02, priority: str = "normal") -> list:
    return [
        task_service.submit("sleep", {"seconds": seconds}, account_id=account.id, priority=priority)[0].id
        for _ in range(count)
    ]


def _start_order(task_ids) -> list:
    return sorted(task_ids, key=lambda task_id: helpers.task(task_id).started_at)


@pytest.mark.embedded
def test_a_flood_delays_another_accounts_task_by_about_one_task(backend, app, account, processes):
    other = _account("b")
    queue_service.stop()
    flood = _submit(account, 40)
    mine = _submit(other, 2)
    processes.worker("cpu", concurrency=1)
    queue_service.start()
    helpers.wait_all(flood + mine, timeout=120)

    order = _start_order(flood + mine)
    assert {order.index(task_id) for task_id in mine} <= {0, 1, 2, 3}, "B's two tasks start among the first four"
    assert [task_id for task_id in order if task_id in flood] == flood, "A's own tasks keep their order"


@pytest.mark.embedded
def test_a_new_submit_is_placed_right_behind_the_heads_of_a_flood(backend, app, account):
    other = _account("b")
    queue_service.stop()
    _submit(account, 150)
    task = task_service.get(_submit(other, 1)[0], other.id)
    assert task_service.position(task) <= 2


def test_a_task_due_later_keeps_its_place_after_the_pool_falls_idle(backend, app, account, processes):
    processes.sweeper()
    processes.worker("cpu", concurrency=1)
    earlier = _account("c")
    flood = _submit(account, 20, seconds=0.2)
    helpers.wait_for(lambda: _succeeded(flood) >= 15, 60, message="most of the flood")
    due = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=4)
    waiting = task_service.submit("sleep", {"seconds": 0.02}, account_id=earlier.id, run_at=due)[0].id
    helpers.wait_all(flood, timeout=60)
    time.sleep(1.5)  # the sweeper moves the pool's clock past the flood's places
    queue_service.stop()
    later = _submit(_account("b"), 10)
    helpers.wait_for(lambda: datetime.datetime.now(datetime.UTC) > due, 10, message="the task to be due")
    queue_service.start()
    helpers.wait_all([waiting, *later], timeout=60)
    assert _start_order([waiting, *later])[0] == waiting, "tasks submitted later overtook a task that was due"


def _succeeded(task_ids) -> int:
    return sum(helpers.task(task_id).status == "succeeded" for task_id in task_ids)


@pytest.mark.embedded
def test_weights_share_starts_in_proportion(backend, app, account, processes):
    heavy = _account("heavy", weight=2.0)
    queue_service.stop()
    light = _submit(account, 30)
    weighted = _submit(heavy, 30)
    processes.worker("cpu", concurrency=1)
    queue_service.start()
    helpers.wait_all(light + weighted, timeout=120)

    first = _start_order(light + weighted)[:30]
    share = sum(task_id in weighted for task_id in first)
    assert 19 <= share <= 21, f"weight 2 against 1 should get 20 of the first 30 starts, got {share}"


@pytest.mark.embedded
def test_priority_still_beats_fair_share(backend, app, account, processes):
    other = _account("b")
    queue_service.stop()
    urgent = _submit(account, 5, priority="urgent")
    normal = _submit(other, 3)
    processes.worker("cpu", concurrency=1)
    queue_service.start()
    helpers.wait_all(urgent + normal, timeout=60)
    assert set(_start_order(urgent + normal)[:5]) == set(urgent)


def test_an_account_at_its_running_limit_starts_nothing_more(backend, app, account, processes):
    account.max_running = 1
    db.session.commit()
    other = _account("b")
    queue_service.stop()
    limited = _submit(account, 4, seconds=0.6)
    free = _submit(other, 2, seconds=0.6)
    processes.worker("cpu", concurrency=2)
    queue_service.start()
    helpers.wait_all(limited + free, timeout=60)

    spans = sorted((helpers.task(t).started_at, helpers.task(t).finished_at) for t in limited)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, "two attempts of the limited account overlapped"
    free_spans = [(helpers.task(t).started_at, helpers.task(t).finished_at) for t in free]
    assert any(start < spans[0][1] for start, _ in free_spans), "the other account ran alongside"


class TestAging:
    @pytest.fixture
    def settings(self, settings):
        return {**settings, "CONVEYOR_AGING_SECONDS": "1"}

    @pytest.mark.embedded
    def test_a_waiting_low_task_rises_and_starts_before_newer_normal_ones(self, backend, app, account, processes):
        queue_service.stop()
        low = _submit(account, 1, priority="low")[0]
        processes.sweeper()
        helpers.wait_for(lambda: helpers.task(low).effective_priority <= models.Priority.NORMAL, 30, message="aging")
        assert helpers.task(low).priority == models.Priority.LOW
        normal = _submit(account, 10)
        processes.worker("cpu", concurrency=1)
        queue_service.start()
        helpers.wait_all([low, *normal], timeout=60)
        assert _start_order([low, *normal])[0] == low

    def test_the_detail_shows_the_effective_priority(self, backend, app, account, processes):
        queue_service.stop()
        low = _submit(account, 1, priority="low")[0]
        processes.sweeper()
        helpers.wait_for(lambda: helpers.task(low).effective_priority == models.Priority.URGENT, 30, message="aging")
        detail = schemas.TaskDetail().dump(helpers.task(low))  # what GET /api/tasks/<id> answers
        assert (detail["priority"], detail["effective_priority"]) == ("low", "urgent")


def test_aging_off_keeps_the_own_priority(backend, app, account, processes):
    queue_service.stop()
    low = _submit(account, 1, priority="low")[0]
    processes.sweeper()  # the default aging period is 300 s
    time.sleep(2)
    assert helpers.task(low).effective_priority == models.Priority.LOW
