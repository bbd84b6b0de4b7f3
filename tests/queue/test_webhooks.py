"""Webhooks end to end: real tasks run by real worker and sweeper processes, their events POSTed
to a real HTTP receiver on 127.0.0.1, each signature verified with the `standardwebhooks`
package (the spec's own implementation, not ours). A receiver that is not listening, then
answers 503, then comes back gets every event once it is back: none lost, each `webhook-id`
answered 2xx exactly once, every attempt kept; /metrics counts the outcomes."""

import concurrent.futures
import dataclasses
import datetime
import http.server
import json
import socket
import threading
import uuid

import pytest
import sqlalchemy as sa
import standardwebhooks
from prometheus_client.parser import text_string_to_metric_families

from app import models, runtime
from app.extensions import db
from app.queue import delivery
from app.queue import webhooks as fan_out
from app.services import tasks as task_service
from app.services import webhooks as webhook_service
from tests.conftest import wait_for

ALL_EVENTS = list(webhook_service.EVENTS)


@pytest.fixture
def settings(settings):
    """Receivers on 127.0.0.1, short retries, progress at most once a second."""
    return {
        **settings,
        "CONVEYOR_ALLOW_PRIVATE_URLS": "1",
        "CONVEYOR_WEBHOOK_RETRY_SECONDS": "0.5,0.5,0.5,1,1,1,1,1,1,1",
        "CONVEYOR_WEBHOOK_PROGRESS_SECONDS": "1",
    }


class Receiver:
    """An HTTP server on 127.0.0.1 keeping every POST; it answers `answer` (200 or 503)."""

    def __init__(self, port: int):
        self.received: list[dict] = []
        self.answer = 200
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.answer
                receiver.received.append(
                    {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body, "status": status}
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accepted(self) -> list[dict]:
        return [item for item in self.received if item["status"] == 200]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A port of the tests' range (18100-18199) that nothing listens on now."""
    for port in range(18100, 18200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18100-18199")


@pytest.fixture
def receivers():
    started: list[Receiver] = []
    yield lambda port: started.append(Receiver(port)) or started[-1]
    for receiver in started:
        receiver.stop()


def verified(received: list[dict], secret: str) -> list[dict]:
    """Each body, checked with standardwebhooks against its headers (raises if any fails)."""
    hook = standardwebhooks.Webhook(secret)
    return [{**hook.verify(item["body"], item["headers"]), "id": item["headers"]["webhook-id"]} for item in received]


def _deliveries() -> list[models.WebhookDelivery]:
    db.session.rollback()
    return list(db.session.scalars(sa.select(models.WebhookDelivery)))


def _attempts() -> list[models.WebhookAttempt]:
    db.session.rollback()
    return list(db.session.scalars(sa.select(models.WebhookAttempt).order_by(models.WebhookAttempt.id)))


def _cancelled_while_waiting(account_id: uuid.UUID) -> uuid.UUID:
    later = models.utcnow() + datetime.timedelta(hours=1)
    task_id = task_service.submit("noop", {}, account_id=account_id, run_at=later)[0].id
    task_service.cancel(task_id, account_id=account_id)
    return task_id


def _webhook_counts(app) -> dict[str, float]:
    text = app.test_client().get("/metrics").get_data(as_text=True)
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "conveyor_webhook_deliveries_total"
    }


def test_task_events_arrive_signed_and_verify_with_the_specs_package(backend, app, account, processes, receivers):
    port = free_port()
    receiver = receivers(port)
    _, secret = webhook_service.create(account.id, f"http://127.0.0.1:{port}/hook", ALL_EVENTS)
    processes.worker("cpu")
    processes.worker("io")
    processes.sweeper()

    ok = task_service.submit("noop", {"echo": "hi"}, account_id=account.id)[0].id
    failed = task_service.submit("flaky", {"times": 1, "error": "permanent"}, account_id=account.id)[0].id
    slept = task_service.submit("sleep", {"seconds": 2.5}, account_id=account.id)[0].id
    cancelled = _cancelled_while_waiting(account.id)
    ends = {(str(ok), "task.succeeded"), (str(failed), "task.failed"), (str(slept), "task.succeeded")}
    ends.add((str(cancelled), "task.cancelled"))

    def arrived():
        got = {(b["data"]["task_id"], b["type"]) for b in verified(receiver.accepted(), secret)}
        return ends <= got

    wait_for(arrived, timeout=30, interval=0.2, message="every task's end at the receiver")
    bodies = verified(receiver.accepted(), secret)

    assert len({body["id"] for body in bodies}) == len(bodies), "each webhook-id sent once"
    by_event = {(body["data"]["task_id"], body["type"]): body for body in bodies}
    assert by_event[(str(ok), "task.succeeded")]["data"]["result"] == {"echo": "hi"}
    assert by_event[(str(failed), "task.failed")]["data"]["error"]["retryable"] is False
    assert (str(ok), "task.started") in by_event and (str(slept), "task.started") in by_event
    progress = [body for body in bodies if body["type"] == "task.progress" and body["data"]["task_id"] == str(slept)]
    assert 1 <= len(progress) <= 4, "throttled to one a second of the sleep's ~11 reports"
    assert all(body["data"]["account"] == account.name for body in bodies)
    assert {d.id for d in _deliveries() if d.status == "delivered"} == {uuid.UUID(body["id"]) for body in bodies}
    wait_for(lambda: _webhook_counts(app).get("delivered") == len(bodies), timeout=5, message="the metric")


def test_a_receiver_that_was_down_gets_every_event_once_back(backend, app, account, processes, receivers):
    port = free_port()
    endpoint, secret = webhook_service.create(account.id, f"http://127.0.0.1:{port}/hook")
    processes.worker("cpu")
    processes.sweeper()
    tasks = [task_service.submit("noop", {}, account_id=account.id)[0].id for _ in range(3)]
    tasks.append(_cancelled_while_waiting(account.id))

    # Not listening: attempts fail with a connection error and are retried.
    wait_for(lambda: len(_deliveries()) == 4 and all(d.attempts >= 1 for d in _deliveries()), 20, 0.2, "refusals")
    receiver = receivers(port)
    receiver.answer = 503
    wait_for(lambda: len(receiver.received) >= 4, timeout=10, interval=0.1, message="503 answers")
    receiver.answer = 200
    wait_for(lambda: all(d.status == "delivered" for d in _deliveries()), 20, 0.2, "every delivery delivered")

    bodies = verified(receiver.accepted(), secret)
    deliveries = _deliveries()
    assert sorted(body["id"] for body in bodies) == sorted(str(d.id) for d in deliveries), "each id once, none lost"
    assert {body["data"]["task_id"] for body in bodies} == {str(task) for task in tasks}
    attempts = _attempts()
    for row in deliveries:
        mine = [a for a in attempts if a.delivery_id == row.id]
        assert [a.number for a in mine] == list(range(1, row.attempts + 1))
        assert mine[0].status_code is None and mine[0].error, "the first try found nobody listening"
        assert mine[-1].status_code == 200 and all(a.status_code != 200 for a in mine[:-1])
    assert any(a.status_code == 503 for a in attempts)
    counts = _webhook_counts(app)
    assert counts["delivered"] == 4 and counts["retried"] == len(attempts) - 4
    shown = json.dumps(webhook_service.deliveries(endpoint.id, account.id), default=str)
    assert '"status_code": 503' in shown


@pytest.mark.embedded
def test_one_round_sends_records_and_retries_on_both_backends(backend, app, account, receivers):
    port = free_port()
    receiver = receivers(port)
    _, secret = webhook_service.create(account.id, f"http://127.0.0.1:{port}/hook", ["task.cancelled"])
    task_id = _cancelled_while_waiting(account.id)
    conveyor = runtime.current()
    with conveyor.sessions() as session:
        fan_out.fan_out_batch(session, 5.0, lag_seconds=0.0)
        session.commit()
    settings = dataclasses.replace(delivery.Settings.of(conveyor.settings), allow_private=True)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        assert delivery.run_once(conveyor.sessions, settings, pool) == 1
        assert delivery.run_once(conveyor.sessions, settings, pool) == 0, "delivered: nothing due"
        [sent] = verified(receiver.accepted(), secret)
        assert (sent["type"], sent["data"]["task_id"]) == ("task.cancelled", str(task_id))
        receiver.answer = 503
        webhook_service.replay(uuid.UUID(sent["id"]), account.id)
        assert delivery.run_once(conveyor.sessions, settings, pool) == 1
        # The URL is checked again at send time: private addresses refused unless allowed.
        webhook_service.replay(uuid.UUID(sent["id"]), account.id)
        refusing = dataclasses.replace(settings, allow_private=False)
        assert delivery.run_once(conveyor.sessions, refusing, pool) == 1

    [row] = _deliveries()
    assert (row.status, row.attempts) == ("pending", 3) and row.next_attempt_at > models.utcnow()
    attempts = _attempts()
    assert [(a.number, a.status_code) for a in attempts] == [(1, 200), (2, 503), (3, None)]
    assert "private address" in attempts[2].error and len(receiver.received) == 2
