"""`/api/webhooks`: an account admin adds a webhook and sees its secret once; members read;
other accounts see nothing of it; operators see every account's; bad input is a 422 naming the
field (a private URL included); the fan-out makes one delivery per event and endpoint, exactly
once however often it runs; deliveries list their attempts and replay makes one due again."""

import datetime
import uuid

import pytest
import sqlalchemy as sa

from app import models, runtime
from app.extensions import db
from app.queue import webhooks as fan_out
from tests import commands
from tests.api.conftest import bearer

pytestmark = pytest.mark.embedded

HOOK = "https://hooks.example.com/conveyor"


@pytest.fixture
def settings(settings):
    """Private URLs refused, as on a server (the embedded default allows them)."""
    return {**settings, "CONVEYOR_ALLOW_PRIVATE_URLS": "0"}


def _create(client, key: str, **body) -> dict:
    response = client.post("/api/webhooks", json={"url": HOOK, **body}, headers=bearer(key))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_an_admin_adds_a_webhook_and_sees_its_secret_once(app, client, keys):
    made = _create(client, keys["a_admin"], events=["task.succeeded", "task.progress"], description="ci")

    assert made["secret"].startswith("whsec_") and len(made["secret"]) > 40
    assert made["events"] == ["task.succeeded", "task.progress"] and made["url"] == HOOK
    listed = client.get("/api/webhooks", headers=bearer(keys["a_member"])).get_json()["items"]
    assert [item["id"] for item in listed] == [made["id"]] and "secret" not in listed[0]
    one = client.get(f"/api/webhooks/{made['id']}", headers=bearer(keys["a_member"])).get_json()
    assert "secret" not in one and one["description"] == "ci"
    default = _create(client, keys["a_admin"])
    assert default["events"] == ["task.succeeded", "task.failed", "task.cancelled"]


def test_members_cannot_change_webhooks_and_other_accounts_see_none(app, client, keys):
    made = _create(client, keys["a_admin"])

    assert client.post("/api/webhooks", json={"url": HOOK}, headers=bearer(keys["a_member"])).status_code == 403
    assert client.delete(f"/api/webhooks/{made['id']}", headers=bearer(keys["a_member"])).status_code == 403
    assert client.get(f"/api/webhooks/{made['id']}", headers=bearer(keys["b_admin"])).status_code == 404
    assert client.delete(f"/api/webhooks/{made['id']}", headers=bearer(keys["b_admin"])).status_code == 404
    assert client.get("/api/webhooks", headers=bearer(keys["b_admin"])).get_json()["items"] == []
    b_made = _create(client, keys["b_admin"])
    everyone = client.get("/api/webhooks", headers=bearer(keys["a_operator"])).get_json()["items"]
    assert {item["id"] for item in everyone} == {made["id"], b_made["id"]}
    only_b = client.get(f"/api/webhooks?account={b_made['account']}", headers=bearer(keys["a_operator"]))
    assert [item["id"] for item in only_b.get_json()["items"]] == [b_made["id"]]
    by_operator = _create(client, keys["a_operator"], account=b_made["account"])
    assert by_operator["account"] == b_made["account"]
    foreign = client.post(
        "/api/webhooks", json={"url": HOOK, "account": b_made["account"]}, headers=bearer(keys["a_admin"])
    )
    assert foreign.status_code == 403

    assert client.delete(f"/api/webhooks/{made['id']}", headers=bearer(keys["a_admin"])).status_code == 204
    assert client.get(f"/api/webhooks/{made['id']}", headers=bearer(keys["a_admin"])).status_code == 404


BAD = [
    ({"url": "ftp://hooks.example.com/x"}, "url"),
    ({"url": "http://127.0.0.1:18150/hook"}, "url"),
    ({"url": "http://10.1.2.3/hook"}, "url"),
    ({"url": "http://[::1]/hook"}, "url"),
    ({"url": "https://" + "a" * 2000 + ".com/"}, "url"),
    ({}, "url"),
    ({"url": HOOK, "events": ["task.nope"]}, "events"),
    ({"url": HOOK, "events": []}, "events"),
    ({"url": HOOK, "events": ["task.failed", "task.failed"]}, "events"),
    ({"url": HOOK, "description": "x" * 501}, "description"),
    ({"url": HOOK, "secret": "mine"}, "secret"),
]


def test_bad_input_is_a_422_naming_the_field_and_nothing_is_stored(app, client, keys):
    for body, field in BAD:
        response = client.post("/api/webhooks", json=body, headers=bearer(keys["a_admin"]))

        assert response.status_code == 422, (body, response.get_json())
        assert field in response.get_json()["errors"], (body, response.get_json())
    assert db.session.scalar(sa.select(sa.func.count()).select_from(models.WebhookEndpoint)) == 0


def test_unknown_ids_are_404(app, client, keys):
    missing = uuid.uuid4()
    for path in (f"/api/webhooks/{missing}", f"/api/webhooks/{missing}/deliveries"):
        assert client.get(path, headers=bearer(keys["a_admin"])).status_code == 404
    replayed = client.post(f"/api/webhooks/deliveries/{missing}/replay", headers=bearer(keys["a_admin"]))
    assert replayed.status_code == 404


def _waiting_task_cancelled(client, key: str) -> str:
    later = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).isoformat()
    submitted = client.post("/api/tasks", json={"type": "noop", "run_at": later}, headers=bearer(key))
    task_id = submitted.get_json()["task_id"]
    assert client.post(f"/api/tasks/{task_id}/cancel", headers=bearer(key)).status_code == 200
    return task_id


def _fan_out() -> int:
    with runtime.current().sessions() as session:
        done = fan_out.fan_out_batch(session, progress_seconds=5.0, lag_seconds=0.0)
        session.commit()
    return done


def test_each_event_is_fanned_out_once_per_subscribed_endpoint(app, client, keys):
    cancelled = _create(client, keys["a_admin"], events=["task.cancelled"])
    succeeded_only = _create(client, keys["a_admin"], events=["task.succeeded"])
    other_account = _create(client, keys["b_admin"], events=["task.cancelled"])
    task_id = _waiting_task_cancelled(client, keys["a_member"])

    assert _fan_out() >= 2  # the queued and the cancelled events
    assert _fan_out() == 0, "the cursor moved past them"

    listed = client.get(f"/api/webhooks/{cancelled['id']}/deliveries", headers=bearer(keys["a_member"])).get_json()
    [delivery] = listed["items"]
    assert (delivery["event_type"], delivery["status"], delivery["task_id"]) == ("task.cancelled", "pending", task_id)
    assert delivery["payload"]["type"] == "task.cancelled" and delivery["payload"]["data"]["task_id"] == task_id
    assert delivery["payload"]["data"]["status"] == "cancelled" and delivery["tries"] == []
    for unsubscribed, key in ((succeeded_only, "a_admin"), (other_account, "b_admin")):
        found = client.get(f"/api/webhooks/{unsubscribed['id']}/deliveries", headers=bearer(keys[key]))
        assert found.get_json()["items"] == []


def test_replay_makes_a_finished_delivery_due_now_with_the_same_id(app, client, keys):
    endpoint = _create(client, keys["a_admin"], events=["task.cancelled"])
    _waiting_task_cancelled(client, keys["a_member"])
    _fan_out()
    delivery = db.session.scalars(sa.select(models.WebhookDelivery)).one()
    delivery.status, delivery.next_attempt_at, delivery.finished_at = "failed", None, models.utcnow()
    db.session.commit()

    assert (
        client.post(f"/api/webhooks/deliveries/{delivery.id}/replay", headers=bearer(keys["a_member"])).status_code
        == 403
    )
    assert (
        client.post(f"/api/webhooks/deliveries/{delivery.id}/replay", headers=bearer(keys["b_admin"])).status_code
        == 404
    )
    replayed = client.post(f"/api/webhooks/deliveries/{delivery.id}/replay", headers=bearer(keys["a_admin"]))

    assert replayed.status_code == 200, replayed.get_json()
    body = replayed.get_json()
    assert (body["id"], body["status"], body["finished_at"]) == (str(delivery.id), "pending", None)
    assert body["next_attempt_at"] is not None and body["webhook_id"] == endpoint["id"]


def test_the_cli_creates_lists_and_deletes_webhooks(app, client, keys):
    account = client.get("/api/account", headers=bearer(keys["a_admin"])).get_json()["name"]
    made = commands.in_process(app, "webhooks", "create", HOOK, "--account", account, "--event", "task.failed")
    assert made.returncode == 0, made.stdout + made.stderr
    assert "whsec_" in made.stdout
    listed = commands.in_process(app, "webhooks", "list")
    assert HOOK in listed.stdout and "task.failed" in listed.stdout and "whsec_" not in listed.stdout
    endpoint_id = str(db.session.scalars(sa.select(models.WebhookEndpoint.id)).one())
    shown = commands.in_process(app, "webhooks", "deliveries", endpoint_id)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    refused = commands.in_process(app, "webhooks", "create", "http://127.0.0.1/x", "--account", account)
    assert refused.returncode != 0 and "url" in refused.stdout + refused.stderr
    deleted = commands.in_process(app, "webhooks", "delete", endpoint_id)
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(models.WebhookEndpoint)) == 0
