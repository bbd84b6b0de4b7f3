"""`GET /metrics`, read with prometheus-client's own parser: the queue's state now, counters
and histograms the sweeper counts from what real workers did (each event once, whichever
process asks), HTTP requests by route template with no task id in any label, a bearer token
when one is set, and a Grafana dashboard that asks only for metrics that exist."""

import json
import re
import signal
import time
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

import app as app_package
from app import runtime
from app.extensions import db
from app.queue import counting
from app.services import metrics
from tests.api.conftest import bearer
from tests.conftest import ROOT, wait_for
from tests.queue import helpers

pytestmark = pytest.mark.embedded

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(autouse=True)
def meter(monkeypatch):
    """A fresh HTTP meter: counts of other tests' requests not yet flushed stay out."""
    monkeypatch.setattr(metrics, "METER", metrics.HttpMeter())


def scrape(client, headers: dict | None = None) -> list:
    """Return the samples of `/metrics` (prometheus-client's parser: it raises on bad text)."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=")
    text = response.get_data(as_text=True)
    assert not UUID.search(text), "no task id (or any id) in a label"
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(samples: list, name: str, **labels) -> float | None:
    """Return the value of the one sample `name` with (at least) `labels`, or None."""
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
    return found[0] if found else None


def submit(client, key: str, type: str, params: dict | None = None, **options) -> uuid.UUID:
    response = client.post("/api/tasks", json={"type": type, "params": params or {}, **options}, headers=bearer(key))
    assert response.status_code == 202, response.get_json()
    return uuid.UUID(response.get_json()["task_id"])


def test_the_queue_state_now(backend, client, keys):
    operator, member = bearer(keys["a_operator"]), keys["a_member"]
    assert client.post("/api/tasks/queue/stop", headers=operator).status_code == 200
    for _ in range(3):
        submit(client, member, "noop")
    submit(client, member, "sleep", {"seconds": 1}, priority="high")
    time.sleep(0.05)

    samples = scrape(client)

    assert value(samples, "conveyor_tasks", status="queued", pool="cpu", type="noop", priority="normal") == 3
    assert value(samples, "conveyor_tasks", status="queued", type="sleep", priority="high") == 1
    assert value(samples, "conveyor_tasks", status="running") is None
    assert value(samples, "conveyor_oldest_waiting_seconds", pool="cpu") > 0.04
    assert value(samples, "conveyor_paused", scope="queue") == 1
    idle = value(samples, "conveyor_idle_workers")
    assert (idle is None) if backend["name"] == "embedded" else True


def test_what_workers_did_is_counted_once_with_run_time_and_wait(backend, client, keys, processes, settings):
    member = keys["a_member"]
    processes.worker("cpu")
    processes.worker("io")
    processes.sweeper()
    done = [submit(client, member, "noop") for _ in range(5)]
    done.append(submit(client, member, "flaky", {"times": 1}))  # one retry, then succeeds
    done.append(submit(client, member, "flaky", {"times": 1, "error": "permanent"}))
    waiting = submit(client, member, "sleep", {"seconds": 1}, run_at="2999-01-01T00:00:00Z")
    assert client.post(f"/api/tasks/{waiting}/cancel", headers=bearer(member)).status_code == 200
    for task_id in done:
        helpers.wait_status(task_id, ("succeeded", "failed"), timeout=60)

    def counted() -> list | None:
        samples = scrape(client)
        ended = sum(s.value for s in samples if s.name == "conveyor_tasks_finished_total")
        return samples if ended == len(done) + 1 else None

    finished = wait_for(counted, timeout=30, message="the sweeper to count the 8 tasks that ended")

    assert value(finished, "conveyor_tasks_finished_total", type="noop", outcome="succeeded") == 5
    assert value(finished, "conveyor_tasks_finished_total", type="flaky", outcome="succeeded") == 1
    assert value(finished, "conveyor_tasks_finished_total", type="sleep", outcome="cancelled") == 1
    assert value(finished, "conveyor_task_attempts_total", type="flaky") == 3
    assert value(finished, "conveyor_task_retries_total", type="flaky") == 1
    assert value(finished, "conveyor_lease_rescues_total") is None
    assert value(finished, "conveyor_task_run_duration_seconds_count", type="noop") == 5
    assert 0 < value(finished, "conveyor_task_run_duration_seconds_sum", type="noop") < 5
    buckets = [
        s for s in finished if s.name == "conveyor_task_run_duration_seconds_bucket" and s.labels["type"] == "noop"
    ]
    counts = [s.value for s in sorted(buckets, key=lambda s: float(s.labels["le"]))]
    assert counts == sorted(counts) and counts[-1] == 5, "cumulative buckets ending at the count"
    assert value(finished, "conveyor_task_queue_wait_seconds_count", pool="cpu") == 5
    assert value(finished, "conveyor_task_queue_wait_seconds_count", pool="io") == 2

    with runtime.current().sessions() as session:  # the job again: nothing new to count
        assert counting.count_batch(session, lag_seconds=0) == 0
        session.commit()
    again = scrape(client)
    assert value(again, "conveyor_tasks_finished_total", type="noop", outcome="succeeded") == 5
    _check_the_grafana_dashboard(client)


def _check_the_grafana_dashboard(client) -> None:
    # Every metric a panel asks for is one /metrics has (a renamed metric breaks no panel).
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    asked = {name for expr in exprs for name in re.findall(r"\bconveyor_[a-z_]+", expr)}
    # A gauge is declared even with no sample now; a counter appears with its first count.
    families = list(text_string_to_metric_families(client.get("/metrics").get_data(as_text=True)))
    have = {f.name for f in families} | {s.name for f in families for s in f.samples} | {"conveyor_lease_rescues_total"}
    assert len(exprs) >= 8 and asked and asked <= have, asked - have


def test_a_lost_worker_is_a_lease_rescue_and_running_attempts_count_per_account(backend, client, keys, processes):
    if backend["name"] == "embedded":
        pytest.skip("the embedded default runs one worker process tree under manage.py run; crashes: PostgreSQL")
    member = keys["a_member"]
    worker = processes.worker("cpu")
    processes.sweeper()
    task_id = submit(client, member, "sleep", {"seconds": 60})
    helpers.wait_status(task_id, "running", timeout=30)
    account = client.get("/api/account", headers=bearer(member)).get_json()["name"]
    running = scrape(client)
    assert value(running, "conveyor_running_tasks", type="sleep", account=account) == 1
    assert value(running, "conveyor_tasks", status="running", type="sleep") == 1

    processes.kill(worker, signal.SIGKILL)

    def counted() -> list | None:
        samples = scrape(client)
        return samples if value(samples, "conveyor_lease_rescues_total", pool="cpu") else None

    rescued = wait_for(counted, timeout=30, message="the rescue to be counted")
    assert value(rescued, "conveyor_lease_rescues_total", pool="cpu") == 1
    assert value(rescued, "conveyor_task_retries_total", type="sleep") == 1
    assert client.post(f"/api/tasks/{task_id}/cancel", headers=bearer(member)).status_code == 200


def test_http_requests_by_route_template_status_and_time(backend, client, keys):
    member = bearer(keys["a_member"])
    for _ in range(3):
        assert client.get(f"/api/tasks/{uuid.uuid4()}", headers=member).status_code == 404
    assert client.get("/health").status_code == 200
    assert client.get("/no/such/path").status_code == 404

    samples = scrape(client)

    route = "/api/tasks/<task_id>"
    assert value(samples, "conveyor_http_requests_total", route=route, method="GET", status="404") == 3
    assert value(samples, "conveyor_http_requests_total", route="/health", status="200") == 1
    assert value(samples, "conveyor_http_requests_total", route="unmatched", status="404") == 1
    assert value(samples, "conveyor_http_request_duration_seconds_count", route=route, method="GET") == 3


def test_a_metrics_token_is_asked_for_when_set(settings):
    guarded = app_package.create_app({**settings, "CONVEYOR_METRICS_TOKEN": "s3cret-token"})
    with guarded.app_context():
        client = guarded.test_client()
        refused = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        samples = scrape(client, {"Authorization": "Bearer s3cret-token"})
        db.session.remove()
        db.engine.dispose()
        guarded.extensions["conveyor"].close()
    assert refused.status_code == 401 and wrong.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert value(samples, "conveyor_http_requests_total", route="/metrics", status="401") == 2
