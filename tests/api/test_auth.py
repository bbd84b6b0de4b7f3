"""The authorization matrix over every endpoint in the spec: no key and a bad key get 401, a
revoked key 401, a member on an admin endpoint 403, another account's task 404, and the owner
gets through."""

import uuid

import pytest

from app.services import accounts
from tests.api.conftest import bearer

pytestmark = pytest.mark.embedded


def _operations(client) -> list[tuple[str, str]]:
    spec = client.get("/api/openapi.json").get_json()
    return [(method.upper(), path) for path, item in spec["paths"].items() for method in item if method != "parameters"]


def _url(path: str, task_id: str) -> str:
    url = path.replace("{task_id}", task_id).replace("{artifact_id}", str(uuid.uuid4()))
    url = url.replace("{upload_id}", str(uuid.uuid4())).replace("{name}", "open-sans")
    url = url.replace("{webhook_id}", str(uuid.uuid4())).replace("{delivery_id}", str(uuid.uuid4()))
    return url + "?format=json" if url.endswith("/events") else url


def _call(client, method: str, url: str, key: str | None):
    headers = bearer(key) if key else {}
    return client.open(url, method=method, headers=headers, json={} if method == "POST" else None)


def test_every_operation_refuses_missing_and_bad_keys(backend, client, keys):
    task_id = client.post("/api/tasks", json={"type": "noop"}, headers=bearer(keys["a_member"])).get_json()["task_id"]
    operations = _operations(client)
    assert len(operations) >= 15
    for method, path in operations:
        url = _url(path, task_id)
        for key in (None, "cvk_00000000_not-a-key", "not even the format"):
            response = _call(client, method, url, key)
            assert response.status_code == 401, (method, path, key, response.status_code)
            body = response.get_json()
            assert body["code"] == "unauthorized" and body["status"] == 401 and body["errors"] == {}
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_admin_operations_by_role(backend, client, keys):
    """Members are refused every admin operation; account admins may only list (their own
    account's tasks); operators may do all of them."""
    admin_paths = [(m, p) for m, p in _operations(client) if p.startswith("/api/tasks/queue/")]
    assert {p for _, p in admin_paths} >= {
        "/api/tasks/queue/status",
        "/api/tasks/queue/list",
        "/api/tasks/queue/start",
        "/api/tasks/queue/stop",
        "/api/tasks/queue/cleanup",
        "/api/tasks/queue/limit",
    }
    for method, path in admin_paths:
        refused = _call(client, method, path, keys["a_member"])
        assert refused.status_code == 403, (method, path)
        assert refused.get_json()["code"] == "forbidden"
        by_admin = _call(client, method, path, keys["a_admin"])
        if path == "/api/tasks/queue/list":
            assert by_admin.status_code == 200, (method, path, by_admin.status_code)
        else:
            assert by_admin.status_code == 403, (method, path, by_admin.status_code)
            assert "operator" in by_admin.get_json()["message"]
        allowed = _call(client, method, path, keys["a_operator"])
        assert allowed.status_code not in (401, 403), (method, path, allowed.status_code)


def test_another_accounts_task_is_not_found_on_every_task_operation(backend, client, keys):
    task_id = client.post("/api/tasks", json={"type": "noop"}, headers=bearer(keys["a_member"])).get_json()["task_id"]
    task_paths = [(m, p) for m, p in _operations(client) if "{task_id}" in p]
    assert len(task_paths) >= 7
    for method, path in task_paths:
        for stranger in ("b_member", "b_admin"):  # an admin of another account is a stranger too
            response = _call(client, method, _url(path, task_id), keys[stranger])
            assert response.status_code == 404, (method, path, stranger, response.status_code)
            assert response.get_json()["code"] == "not_found"
    # The owner reaches each of them (404 only for the made-up artifact id); delete goes last.
    for method, path in sorted(task_paths, key=lambda op: op[0] == "DELETE"):
        response = _call(client, method, _url(path, task_id), keys["a_member"])
        assert response.status_code not in (401, 403), (method, path)
        if "{artifact_id}" not in path:
            assert response.status_code != 404, (method, path)


def test_a_revoked_key_is_refused(backend, client, keys):
    assert client.get("/api/tasks", headers=bearer(keys["a_member"])).status_code == 200
    accounts.revoke_key(keys["a_member"])
    response = client.get("/api/tasks", headers=bearer(keys["a_member"]))
    assert response.status_code == 401
    assert response.get_json()["message"] == "the API key is unknown or revoked"


def test_keys_are_stored_hashed(backend, app, keys):
    from app import models
    from app.extensions import db

    stored = {row.digest for row in db.session.query(models.ApiKey)}
    assert stored and not any(key in stored for key in keys.values())
    assert all(len(digest) == 64 for digest in stored)
