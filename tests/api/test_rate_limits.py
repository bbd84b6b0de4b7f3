"""Submit rate limits: per key and per account across its keys, a 429 `rate_limit` with
`Retry-After` and `RateLimit-*` headers; on PostgreSQL deployments counted in Redis."""

import time

import pytest
import redis

from app.services import accounts
from tests.api.conftest import bearer

pytestmark = pytest.mark.embedded


@pytest.fixture
def settings(settings) -> dict:
    """Low rates, so a test reaches them: 3 a minute per key (no burst beyond that), 10 per
    account."""
    rates = {
        "CONVEYOR_SUBMIT_RATE": "3/minute",
        "CONVEYOR_SUBMIT_BURST": "3",
        "CONVEYOR_ACCOUNT_SUBMIT_RATE": "10/minute",
    }
    return {**settings, **rates}


def _submit(client, key: str, path: str = "/api/tasks", body: dict | None = None):
    return client.post(path, json=body or {"type": "noop"}, headers=bearer(key))


def test_a_key_over_its_rate_gets_429_with_retry_after_and_ratelimit_headers(backend, client, keys):
    answers = [_submit(client, keys["a_member"]) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert "Retry-After" not in answers[0].headers
    refused = _submit(client, keys["a_member"], "/api/sleep/generate", {"params": {"seconds": 1}})
    assert refused.status_code == 429
    body = refused.get_json()
    assert body["code"] == "rate_limit" and body["status"] == 429 and body["scope"] == "key"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Limit"] == "3" and refused.headers["RateLimit-Remaining"] == "0"
    assert int(refused.headers["RateLimit-Reset"]) > time.time()
    assert client.get("/api/tasks", headers=bearer(keys["a_member"])).get_json()["meta"]["total"] == 3
    # Another key of the same account has its own count (the account's rate is larger here).
    assert _submit(client, keys["a_admin"]).status_code == 202
    if backend["name"] == "postgres":  # shared by every API process: counted in the broker's Redis
        assert any(b"conveyor-submits" in key for key in redis.Redis.from_url(backend["BROKER_URL"]).scan_iter())


def test_an_accounts_keys_share_the_accounts_rate(backend, client, keys):
    name = accounts.get(accounts.authenticate(keys["a_member"]).account_id).name
    accounts.configure(name, submit_rate="5/minute")
    assert [_submit(client, keys["a_member"]).status_code for _ in range(3)] == [202, 202, 202]
    assert _submit(client, keys["a_member"]).status_code == 429  # the key's own 3
    second = [_submit(client, keys["a_admin"]) for _ in range(3)]
    assert second[0].status_code == 202, "a second key may submit while the account has room"
    refused = next(answer for answer in second if answer.status_code == 429)
    assert refused.get_json()["scope"] == "account", "the account's 5 ran out before the key's 3"
    assert "Retry-After" in refused.headers
    # The other account is not touched by this one's submits.
    assert _submit(client, keys["b_member"]).status_code == 202
