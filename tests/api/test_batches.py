"""`POST /api/tasks/batch`: many tasks in one request, stored all or none, each validated and
counted as a single submit is (quota, rate limits, priority by role, idempotency), at fair
places; real workers run a batch, a later `run_at` included."""

import datetime
import uuid

import pytest

from app.services import accounts
from tests.api.conftest import bearer
from tests.queue import helpers

pytestmark = pytest.mark.embedded


def _total(client, key: str) -> int:
    return client.get("/api/tasks", headers=bearer(key)).get_json()["meta"]["total"]


def _batch(client, key: str, tasks: list[dict], **headers):
    return client.post("/api/tasks/batch", json={"tasks": tasks}, headers={**bearer(key), **headers})


def test_a_batch_is_stored_in_order_with_each_task_queued(backend, client, keys):
    tasks = [{"type": "noop"}, {"type": "sleep", "params": {"seconds": 1}, "priority": "high"}, {"type": "noop"}]
    answer = _batch(client, keys["a_member"], tasks)
    assert answer.status_code == 202, answer.get_json()
    body = answer.get_json()
    assert body["created"] is True and body["count"] == 3
    assert [t["type"] for t in body["tasks"]] == ["noop", "sleep", "noop"]
    assert [t["priority"] for t in body["tasks"]] == ["normal", "high", "normal"]
    for item in body["tasks"]:
        detail = client.get(f"/api/tasks/{item['task_id']}", headers=bearer(keys["a_member"])).get_json()
        assert detail["status"] == "queued"
        assert helpers.statuses(uuid.UUID(item["task_id"])) == ["queued"]
    sleep = client.get(f"/api/tasks/{body['tasks'][1]['task_id']}", headers=bearer(keys["a_member"])).get_json()
    assert sleep["params"] == {"seconds": 1}
    # Another account sees none of them.
    assert _total(client, keys["b_member"]) == 0


def test_one_bad_task_refuses_the_batch_naming_every_bad_one(backend, client, keys):
    tasks = [
        {"type": "noop"},
        {"type": "sleep", "params": {"seconds": "long"}},
        {"type": "no-such-type"},
        {"type": "noop", "priority": "soon"},
    ]
    answer = _batch(client, keys["a_member"], tasks)
    assert answer.status_code == 422
    errors = answer.get_json()["errors"]
    # The schema names the unknown priority; the task core the type and the params.
    assert "priority" in errors["tasks"]["3"]
    fixed = [tasks[0], tasks[1], tasks[2], {"type": "noop"}]
    answer = _batch(client, keys["a_member"], fixed)
    assert answer.status_code == 422
    errors = answer.get_json()["errors"]["tasks"]
    assert set(errors) == {"1", "2"}
    assert "seconds" in errors["1"]["params"] and "type" in errors["2"]
    assert _total(client, keys["a_member"]) == 0, "a refused batch stores nothing"


def test_the_batch_size_is_bounded(backend, client, keys):
    assert _batch(client, keys["a_member"], []).status_code == 422
    too_many = _batch(client, keys["a_member"], [{"type": "noop"}] * 1001)
    assert too_many.status_code == 422 and "tasks" in too_many.get_json()["errors"]
    assert _batch(client, keys["a_member"], [{"type": "noop"}] * 1000).status_code == 202
    assert _total(client, keys["a_member"]) == 1000


def test_the_waiting_quota_counts_every_task_of_a_batch(backend, client, keys):
    account = accounts.get(accounts.authenticate(keys["a_member"]).account_id)
    accounts.configure(account.name, max_waiting=3)
    refused = _batch(client, keys["a_member"], [{"type": "noop"}] * 4)
    assert refused.status_code == 429
    assert refused.get_json()["code"] == "quota" and refused.get_json()["quota"] == "max_waiting"
    assert _total(client, keys["a_member"]) == 0
    assert _batch(client, keys["a_member"], [{"type": "noop"}] * 3).status_code == 202
    assert _batch(client, keys["a_member"], [{"type": "noop"}]).status_code == 429


def test_urgent_in_a_batch_needs_the_role_and_names_the_task(backend, client, keys):
    tasks = [{"type": "noop"}, {"type": "noop", "priority": "urgent"}]
    refused = _batch(client, keys["a_member"], tasks)
    assert refused.status_code == 403
    assert "priority" in refused.get_json()["errors"]["tasks"]["1"]
    assert _total(client, keys["a_member"]) == 0
    assert _batch(client, keys["a_admin"], tasks).status_code == 202


def test_a_repeated_batch_key_returns_the_first_batch(backend, client, keys):
    tasks = [{"type": "noop"}, {"type": "sleep", "params": {"seconds": 1}}]
    first = _batch(client, keys["a_member"], tasks, **{"Idempotency-Key": "import-7"}).get_json()
    again = _batch(client, keys["a_member"], tasks, **{"Idempotency-Key": "import-7"})
    assert again.status_code == 202
    assert again.get_json()["created"] is False
    assert [t["task_id"] for t in again.get_json()["tasks"]] == [t["task_id"] for t in first["tasks"]]
    assert _total(client, keys["a_member"]) == 2
    # The key is per account.
    other = _batch(client, keys["b_member"], tasks, **{"Idempotency-Key": "import-7"}).get_json()
    assert other["created"] is True


def test_a_batch_takes_fair_places_one_step_apart(backend, client, keys):
    """A's batch of 4 goes one task per step, so B's task submitted after it comes second, not
    after all of A's (with equal places it would be fifth)."""
    a_tasks = _batch(client, keys["a_member"], [{"type": "noop"}] * 4).get_json()["tasks"]
    b_task = client.post("/api/tasks", json={"type": "noop"}, headers=bearer(keys["b_member"])).get_json()
    assert b_task["position"] == 2
    last = client.get(f"/api/tasks/{a_tasks[-1]['task_id']}", headers=bearer(keys["a_member"])).get_json()
    assert last["position"] == 5


def test_workers_run_a_batch_and_a_later_run_at_waits(backend, client, keys, processes):
    processes.worker("cpu", concurrency=2)
    processes.sweeper()
    later = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2)).isoformat()
    tasks = [{"type": "noop"} for _ in range(20)] + [{"type": "noop", "run_at": later}]
    answer = _batch(client, keys["a_member"], tasks)
    assert answer.status_code == 202
    ids = [uuid.UUID(t["task_id"]) for t in answer.get_json()["tasks"]]
    helpers.wait_all(ids, timeout=60)
    delayed = helpers.task(ids[-1])
    assert delayed.started_at >= datetime.datetime.fromisoformat(later)
