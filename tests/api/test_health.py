"""Health checks: alive, database and broker readiness (503 with the reason when not)."""

import pytest

import app as app_package

pytestmark = pytest.mark.embedded


def test_health_checks_answer_ok(backend, client):
    for path in ("/health", "/health/db", "/health/redis"):
        response = client.get(path)
        assert response.status_code == 200 and response.get_json()["status"] == "ok", path


def test_broker_down_is_503_with_the_reason(backend, settings):
    down = app_package.create_app({**settings, "BROKER_URL": "redis://:secret@127.0.0.1:1/0"})
    response = down.test_client().get("/health/redis")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and body["reason"]
    assert "secret" not in response.get_data(as_text=True), "the broker password is never echoed"
