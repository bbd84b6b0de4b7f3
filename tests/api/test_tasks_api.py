"""`/api/tasks` and the typed endpoints with good and bad input: what a 2xx stores, and what
each 4xx names, in the one error shape."""

import datetime
import uuid

import pytest

from app import models
from app.extensions import db
from tests.api.conftest import bearer

pytestmark = pytest.mark.embedded


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"code", "status", "message", "errors"} and body["status"] == status
    return body


def _count() -> int:
    db.session.rollback()
    return db.session.query(models.Task).count()


def test_submit_answers_202_with_position_and_eta_once_stored(backend, client, keys):
    response = client.post(
        "/api/tasks",
        json={"type": "sleep", "params": {"seconds": 1}, "priority": "high"},
        headers=bearer(keys["a_member"]),
    )
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued" and body["created"] is True and body["position"] == 1
    assert body["eta_seconds"] > 0
    task = db.session.get(models.Task, uuid.UUID(body["task_id"]))
    assert (task.type, task.params, task.priority) == ("sleep", {"seconds": 1.0}, models.Priority.HIGH)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "type"),
        ({"type": "nope"}, "type"),
        ({"type": "sleep", "params": {"seconds": "soon"}}, "params"),
        ({"type": "sleep", "params": {"seconds": 1}, "priority": "asap"}, "priority"),
        ({"type": "sleep", "run_at": "tomorrow"}, "run_at"),
        ({"type": "sleep", "run_at": "2030-01-01T00:00:00"}, "run_at"),  # no zone
        ({"type": "sleep", "parent_id": "not-a-uuid"}, "parent_id"),
        ({"type": "sleep", "extra": 1}, "extra"),
    ],
)
def test_submit_refuses_bad_input_naming_the_field_and_stores_nothing(backend, client, keys, payload, field):
    body = _error(client.post("/api/tasks", json=payload, headers=bearer(keys["a_member"])), 422)
    assert field in body["errors"], body
    assert body["code"] == "invalid"
    assert _count() == 0


def test_submit_refuses_a_body_that_is_not_json(backend, client, keys):
    response = client.post("/api/tasks", data="type=sleep", headers=bearer(keys["a_member"]))
    assert response.status_code in (400, 415, 422)
    assert set(response.get_json()) == {"code", "status", "message", "errors"}
    assert _count() == 0


def test_another_accounts_parent_is_refused(backend, client, keys):
    parent = client.post("/api/tasks", json={"type": "noop"}, headers=bearer(keys["b_member"])).get_json()["task_id"]
    response = client.post("/api/tasks", json={"type": "noop", "parent_id": parent}, headers=bearer(keys["a_member"]))
    assert response.status_code == 404
    assert _count() == 1


def test_idempotency_key_header_returns_the_first_task(backend, client, keys):
    headers = {**bearer(keys["a_member"]), "Idempotency-Key": "order-42"}
    first = client.post("/api/tasks", json={"type": "noop"}, headers=headers).get_json()
    again = client.post("/api/tasks", json={"type": "noop"}, headers=headers).get_json()
    assert again["task_id"] == first["task_id"] and (first["created"], again["created"]) == (True, False)
    other = client.post(
        "/api/tasks", json={"type": "noop"}, headers={**bearer(keys["b_member"]), "Idempotency-Key": "order-42"}
    )
    assert other.get_json()["task_id"] != first["task_id"], "keys are scoped per account"


def test_typed_endpoint_submits_its_type_and_names_bad_params(backend, client, keys):
    ok = client.post("/api/sleep/generate", json={"params": {"seconds": 2}}, headers=bearer(keys["a_member"]))
    assert ok.status_code == 202
    task = db.session.get(models.Task, uuid.UUID(ok.get_json()["task_id"]))
    assert (task.type, task.params) == ("sleep", {"seconds": 2.0})
    bad = _error(
        client.post("/api/sleep/generate", json={"params": {"seconds": -1}}, headers=bearer(keys["a_member"])), 422
    )
    assert "seconds" in bad["errors"]["params"]
    assert _count() == 1


def test_list_filters_and_paginates_in_the_body(backend, client, keys):
    member = bearer(keys["a_member"])
    for n in range(5):
        client.post("/api/tasks", json={"type": "noop", "params": {"echo": n}}, headers=member)
    client.post("/api/tasks", json={"type": "sleep", "params": {"seconds": 1}, "priority": "low"}, headers=member)
    client.post("/api/tasks", json={"type": "noop"}, headers=bearer(keys["b_member"]))
    page = client.get("/api/tasks?type=noop&page_size=2&page=2", headers=member).get_json()
    assert page["meta"] == {"page": 2, "page_size": 2, "total": 5, "pages": 3}
    assert [item["type"] for item in page["items"]] == ["noop", "noop"]
    assert client.get("/api/tasks?priority=low", headers=member).get_json()["meta"]["total"] == 1
    soon = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).isoformat()
    assert (
        client.get("/api/tasks", query_string={"created_after": soon}, headers=member).get_json()["meta"]["total"] == 0
    )
    assert "page_size" in _error(client.get("/api/tasks?page_size=0", headers=member), 422)["errors"]
    assert "status" in _error(client.get("/api/tasks?status=done", headers=member), 422)["errors"]


def test_detail_shows_position_cancel_retry_and_delete(backend, client, keys):
    member = bearer(keys["a_member"])
    first = client.post("/api/tasks", json={"type": "noop"}, headers=member).get_json()["task_id"]
    second = client.post("/api/tasks", json={"type": "noop"}, headers=member).get_json()["task_id"]
    detail = client.get(f"/api/tasks/{second}", headers=member).get_json()
    assert detail["position"] == 2 and detail["attempts"] == [] and detail["params"] == {"echo": None}
    assert _error(client.delete(f"/api/tasks/{first}", headers=member), 409)["errors"] == {"status": ["is queued"]}
    assert client.post(f"/api/tasks/{first}/cancel", headers=member).get_json()["outcome"] == "cancelled"
    assert _error(client.post(f"/api/tasks/{first}/cancel", headers=member), 409)["code"] == "conflict"
    retried = client.post(f"/api/tasks/{first}/retry", headers=member)
    assert retried.status_code == 202 and retried.get_json()["status"] == "queued"
    client.post(f"/api/tasks/{first}/cancel", headers=member)
    assert client.delete(f"/api/tasks/{first}", headers=member).status_code == 204
    assert client.get(f"/api/tasks/{first}", headers=member).status_code == 404
    assert client.get(f"/api/tasks/{second}", headers=member).get_json()["position"] == 1
    assert _error(client.get("/api/tasks/not-a-uuid", headers=member), 404)["code"] == "not_found"


def test_unknown_route_and_wrong_method_use_the_error_shape(backend, client, keys):
    assert _error(client.get("/api/nothing-here", headers=bearer(keys["a_member"])), 404)["code"] == "not_found"
    assert _error(client.put("/api/tasks", headers=bearer(keys["a_member"])), 405)["code"] == "method_not_allowed"
