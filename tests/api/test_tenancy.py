"""Tenancy on the API: the waiting quota (429 `quota` naming it, on the generic and the typed
submit), priority by role (403 naming `priority`), an account admin's queue list scoped to its
account, and `GET /api/account` with the quotas in force and the usage."""

import pytest

from app.services import accounts
from tests.api.conftest import bearer

pytestmark = pytest.mark.embedded


def _account_of(key: str):
    return accounts.get(accounts.authenticate(key).account_id)


def test_a_submit_over_max_waiting_is_429_naming_the_quota(backend, client, keys):
    accounts.configure(_account_of(keys["a_member"]).name, max_waiting=2)
    member = bearer(keys["a_member"])
    for _ in range(2):
        assert client.post("/api/tasks", json={"type": "noop"}, headers=member).status_code == 202
    for path, body in (("/api/tasks", {"type": "noop"}), ("/api/sleep/generate", {"params": {"seconds": 1}})):
        refused = client.post(path, json=body, headers=member)
        assert refused.status_code == 429, path
        answer = refused.get_json()
        assert answer["code"] == "quota" and answer["quota"] == "max_waiting" and answer["limit"] == 2
        assert answer["current"] == 2 and "max_waiting" in answer["errors"]
    listed = client.get("/api/tasks", headers=member).get_json()
    assert listed["meta"]["total"] == 2, "a refused submit stores nothing"
    # Another account is not held back by this one's quota.
    assert client.post("/api/tasks", json={"type": "noop"}, headers=bearer(keys["b_member"])).status_code == 202


def test_a_repeated_idempotency_key_gets_its_task_even_at_the_quota(backend, client, keys):
    accounts.configure(_account_of(keys["a_member"]).name, max_waiting=1)
    headers = {**bearer(keys["a_member"]), "Idempotency-Key": "once"}
    first = client.post("/api/tasks", json={"type": "noop"}, headers=headers).get_json()
    again = client.post("/api/tasks", json={"type": "noop"}, headers=headers)
    assert again.status_code == 202 and again.get_json()["task_id"] == first["task_id"]
    other = {**headers, "Idempotency-Key": "another"}
    assert client.post("/api/tasks", json={"type": "noop"}, headers=other).status_code == 429


def test_the_platform_default_quota_applies_to_accounts_without_their_own(backend, app, client, keys):
    app.extensions["conveyor"].settings["CONVEYOR_ACCOUNT_MAX_WAITING"] = 1
    member = bearer(keys["a_member"])
    assert client.post("/api/tasks", json={"type": "noop"}, headers=member).status_code == 202
    refused = client.post("/api/tasks", json={"type": "noop"}, headers=member)
    assert refused.status_code == 429 and refused.get_json()["limit"] == 1


def test_urgent_needs_an_account_admin_or_allow_urgent(backend, client, keys):
    urgent = {"type": "noop", "priority": "urgent"}
    refused = client.post("/api/tasks", json=urgent, headers=bearer(keys["a_member"]))
    assert refused.status_code == 403
    assert refused.get_json()["code"] == "forbidden" and "priority" in refused.get_json()["errors"]
    typed = client.post(
        "/api/sleep/generate", json={"params": {"seconds": 1}, "priority": "urgent"}, headers=bearer(keys["a_member"])
    )
    assert typed.status_code == 403 and "priority" in typed.get_json()["errors"]
    for allowed in ("high", "normal", "low"):
        body = {"type": "noop", "priority": allowed}
        assert client.post("/api/tasks", json=body, headers=bearer(keys["a_member"])).status_code == 202
    assert client.post("/api/tasks", json=urgent, headers=bearer(keys["a_admin"])).status_code == 202
    assert client.post("/api/tasks", json=urgent, headers=bearer(keys["a_operator"])).status_code == 202
    accounts.configure(_account_of(keys["b_member"]).name, allow_urgent=True)
    assert client.post("/api/tasks", json=urgent, headers=bearer(keys["b_member"])).status_code == 202
    assert client.post("/api/tasks", json=urgent, headers=bearer(keys["a_member"])).status_code == 403


def test_an_account_admin_lists_only_its_own_accounts_tasks(backend, client, keys):
    mine = client.post("/api/tasks", json={"type": "noop"}, headers=bearer(keys["a_member"])).get_json()
    client.post("/api/tasks", json={"type": "noop"}, headers=bearer(keys["b_member"]))
    listed = client.get("/api/tasks/queue/list", headers=bearer(keys["a_admin"])).get_json()
    assert [item["id"] for item in listed["items"]] == [mine["task_id"]]
    other = _account_of(keys["b_member"]).name
    elsewhere = client.get(f"/api/tasks/queue/list?account={other}", headers=bearer(keys["a_admin"]))
    assert elsewhere.status_code == 200 and elsewhere.get_json()["meta"]["total"] == 0
    every = client.get("/api/tasks/queue/list", headers=bearer(keys["a_operator"])).get_json()
    assert every["meta"]["total"] == 2
    one = client.get(f"/api/tasks/queue/list?account={other}", headers=bearer(keys["a_operator"])).get_json()
    assert one["meta"]["total"] == 1
    unknown = client.get("/api/tasks/queue/list?account=nobody-here", headers=bearer(keys["a_operator"]))
    assert unknown.status_code == 404


def test_get_account_shows_settings_in_force_and_usage(backend, client, keys):
    name = _account_of(keys["a_member"]).name
    client.post("/api/tasks", json={"type": "noop"}, headers=bearer(keys["a_member"]))
    accounts.configure(name, max_waiting=5, submit_rate="20/second", weight=2)
    answer = client.get("/api/account", headers=bearer(keys["a_member"]))
    assert answer.status_code == 200
    info = answer.get_json()
    assert info["name"] == name and info["role"] == "member" and info["weight"] == 2
    assert info["quotas"]["max_waiting"] == {"value": 5, "default": False}
    assert info["quotas"]["max_running"] == {"value": None, "default": True}
    assert info["quotas"]["submit_rate"] == {"value": "20/second", "default": False}
    assert info["usage"] == {"waiting": 1, "running": 0}
    assert client.get("/api/account").status_code == 401


def test_configure_refuses_bad_values_naming_each(backend, app, keys):
    from app.services import errors

    name = _account_of(keys["a_member"]).name
    with pytest.raises(errors.Invalid) as refused:
        accounts.configure(name, weight=0, max_waiting=-1, submit_rate="lots")
    assert set(refused.value.errors) == {"weight", "max_waiting", "submit_rate"}
    assert _account_of(keys["a_member"]).weight == 1.0


def test_the_spec_documents_the_submit_refusals(backend, client, keys):
    spec = client.get("/api/openapi.json").get_json()
    for path in ("/api/tasks", "/api/sleep/generate"):
        responses = spec["paths"][path]["post"]["responses"]
        assert {"403", "429"} <= set(responses), path
    assert "/api/account" in spec["paths"]
