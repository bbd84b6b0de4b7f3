"""`/api/schedules`: create, list, read (with the next 5 fire times), change and delete
schedules; every bad field is a 4xx naming it; members see their own schedules, admins their
account's, operators every account's; another account's schedule is a 404."""

import datetime
import itertools

import pytest

from tests.api.conftest import bearer

pytestmark = pytest.mark.embedded

HOURLY = {"name": "hourly noop", "type": "noop", "params": {"echo": "hi"}, "cron": "0 * * * *"}


def _create(client, key: str, **body) -> dict:
    response = client.post("/api/schedules", json={**HOURLY, **body}, headers=bearer(key))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _times(body: dict) -> list[datetime.datetime]:
    return [datetime.datetime.fromisoformat(t) for t in body["next_fire_times"]]


def test_a_schedule_is_created_read_changed_and_deleted(client, keys):
    made = _create(client, keys["a_member"], timezone="Europe/Berlin", priority="high")
    assert made["cron"] == "0 * * * *" and made["interval"] is None and made["misfire"] == "catch_up"
    times = _times(made)
    assert len(times) == 5 and times[0] > datetime.datetime.now(datetime.UTC)
    assert all(b - a == datetime.timedelta(hours=1) for a, b in itertools.pairwise(times))
    assert all(t.minute == 0 for t in times)

    path = f"/api/schedules/{made['id']}"
    read = client.get(path, headers=bearer(keys["a_member"])).get_json()
    assert read["name"] == "hourly noop" and read["priority"] == "high" and read["last_task_id"] is None

    changed = client.patch(path, json={"interval": 90, "paused": True}, headers=bearer(keys["a_member"]))
    assert changed.status_code == 200, changed.get_json()
    body = changed.get_json()
    assert body["cron"] is None and body["interval"] == 90 and body["paused"] and body["next_fire_times"] == []
    resumed = client.patch(path, json={"paused": False}, headers=bearer(keys["a_member"])).get_json()
    assert [b - a for a, b in itertools.pairwise(_times(resumed))] == [datetime.timedelta(seconds=90)] * 4

    assert client.delete(path, headers=bearer(keys["a_member"])).status_code == 204
    assert client.get(path, headers=bearer(keys["a_member"])).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "no_such_type"}, "type"),
        ({"params": {"echo": 1, "unknown": 2}}, "params"),
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * *"}, "cron"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"cron": None, "interval": 0}, "interval"),
        ({"cron": None, "interval": 10**9}, "interval"),
        ({"interval": 60}, "cron"),  # both
        ({"cron": None}, "cron"),  # neither
        ({"misfire": "sometimes"}, "misfire"),
        ({"priority": "asap"}, "priority"),
        ({"name": ""}, "name"),
    ],
)
def test_a_bad_field_is_refused_naming_it(client, keys, body, field):
    response = client.post("/api/schedules", json={**HOURLY, **body}, headers=bearer(keys["a_member"]))
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"].get("json", response.get_json()["errors"])


def test_a_member_may_not_schedule_urgent_tasks_but_an_admin_may(client, keys):
    refused = client.post("/api/schedules", json={**HOURLY, "priority": "urgent"}, headers=bearer(keys["a_member"]))
    assert refused.status_code == 403 and "priority" in refused.get_json()["errors"]
    made = _create(client, keys["a_admin"], priority="urgent")
    path = f"/api/schedules/{made['id']}"
    patched = client.patch(path, json={"priority": "urgent"}, headers=bearer(keys["a_member"]))
    assert patched.status_code == 404  # a member manages only the schedules it made


def test_who_sees_which_schedules(client, keys):
    mine = _create(client, keys["a_member"], name="member's")
    admins = _create(client, keys["a_admin"], name="admin's")
    theirs = _create(client, keys["b_member"], name="b's")

    def names(key, query=""):
        response = client.get(f"/api/schedules{query}", headers=bearer(key))
        assert response.status_code == 200, response.get_json()
        return sorted(item["name"] for item in response.get_json()["items"])

    assert names(keys["a_member"]) == ["member's"]
    assert names(keys["a_admin"]) == ["admin's", "member's"]
    assert names(keys["a_operator"]) == ["admin's", "b's", "member's"]
    assert names(keys["a_operator"], f"?account={theirs['account']}") == ["b's"]
    assert names(keys["a_admin"], f"?account={theirs['account']}") == []
    for key, schedule in ((keys["b_admin"], mine), (keys["a_member"], admins), (keys["a_admin"], theirs)):
        assert client.get(f"/api/schedules/{schedule['id']}", headers=bearer(key)).status_code == 404
        assert client.delete(f"/api/schedules/{schedule['id']}", headers=bearer(key)).status_code == 404
    assert client.get(f"/api/schedules/{theirs['id']}", headers=bearer(keys["a_operator"])).status_code == 200
    assert client.get("/api/schedules/not-a-uuid", headers=bearer(keys["a_admin"])).status_code == 404
    assert client.get("/api/schedules").status_code == 401
