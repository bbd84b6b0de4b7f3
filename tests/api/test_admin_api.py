"""Admin queue endpoints: status, every account's tasks, stop/start by scope, limits, cleanup."""

import pytest

from app.extensions import db
from app.queue import control
from tests.api.conftest import bearer

pytestmark = pytest.mark.embedded


def test_status_lists_counts_and_stats(backend, client, keys):
    client.post("/api/tasks", json={"type": "noop"}, headers=bearer(keys["a_member"]))
    client.post(
        "/api/tasks",
        json={"type": "sleep", "params": {"seconds": 1}, "priority": "urgent"},
        headers=bearer(keys["b_admin"]),
    )
    status = client.get("/api/tasks/queue/status", headers=bearer(keys["a_operator"])).get_json()
    assert status["by_status"]["queued"] == 2
    assert status["by_type"] == {"noop": {"queued": 1}, "sleep": {"queued": 1}}
    assert status["waiting_by_priority"] == {"normal": 1, "urgent": 1}
    assert status["oldest_waiting_seconds"] >= 0
    assert {"running", "workers", "durations", "paused", "limits"} <= set(status)
    # No worker runs here: none waits on PostgreSQL; SQLite workers never wait so.
    assert status["idle_workers"] == ({} if backend["name"] == "postgres" else None)
    every = client.get("/api/tasks/queue/list", headers=bearer(keys["a_operator"])).get_json()
    assert every["meta"]["total"] == 2, "the admin list spans accounts"


def test_stop_start_by_scope_and_limits(backend, client, keys):
    admin = bearer(keys["a_operator"])
    assert client.post("/api/tasks/queue/stop?pool=io", headers=admin).get_json() == {
        "scope": "pool",
        "name": "io",
        "paused": True,
    }
    assert client.post("/api/tasks/queue/stop?type=sleep", headers=admin).status_code == 200
    db.session.rollback()
    assert control.paused(db.session) == [{"scope": "pool", "name": "io"}, {"scope": "type", "name": "sleep"}]
    refused = client.post("/api/tasks/queue/stop?pool=gpu", headers=admin)
    assert refused.status_code == 422 and "pool" in refused.get_json()["errors"]
    both = client.post("/api/tasks/queue/stop?pool=io&type=sleep", headers=admin)
    assert both.status_code == 422
    started = client.post("/api/tasks/queue/start?pool=io", headers=admin).get_json()
    assert started["paused"] is False
    assert client.post("/api/tasks/queue/limit", json={"type": "sleep", "limit": 2}, headers=admin).get_json() == {
        "type": "sleep",
        "limit": 2,
    }
    bad = client.post("/api/tasks/queue/limit", json={"type": "sleep", "limit": 0}, headers=admin)
    assert bad.status_code == 422 and "limit" in bad.get_json()["errors"]
    unknown = client.post("/api/tasks/queue/limit", json={"type": "nope", "limit": 1}, headers=admin)
    assert unknown.status_code == 422 and "type" in unknown.get_json()["errors"]


def test_cleanup_reports_what_it_did(backend, client, keys):
    report = client.post("/api/tasks/queue/cleanup", headers=bearer(keys["a_operator"])).get_json()
    assert report == {"handled": 0, "tasks": []}
    bad = client.post("/api/tasks/queue/cleanup", json={"stuck_after": -5}, headers=bearer(keys["a_operator"]))
    assert bad.status_code == 422 and "stuck_after" in bad.get_json()["errors"]
