"""Live progress over SSE, served by gunicorn (gthread) as in production, with a real worker
running a `sleep` task: ordered events, the terminal status then `close`; a reconnect with
`Last-Event-ID` gets only later events; a late client gets the history and `close`."""

import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

from tests.api.conftest import bearer
from tests.commands import free_port
from tests.conftest import ROOT, wait_for

pytestmark = pytest.mark.embedded


@pytest.fixture
def server(settings, tmp_path):
    """The API under gunicorn on 127.0.0.1, stopped (by its process group) after the test."""
    port = free_port()
    env = {**os.environ, **settings, "PYTHONPATH": str(ROOT), "CONVEYOR_SSE_HEARTBEAT_SECONDS": "0.3"}
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - the child's output for the whole test
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-k",
            "gthread",
            "--threads",
            "4",
            "-w",
            "1",
            "-b",
            f"127.0.0.1:{port}",
            "app:create_app()",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return process.poll() is not None

    try:
        wait_for(up, timeout=30, message="gunicorn to answer")
        assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _read_stream(url: str, headers: dict) -> tuple[list[dict], bool]:
    """Read an SSE stream to its end; return its messages and whether a heartbeat came."""
    messages, current, heartbeat = [], {}, False
    with httpx.stream("GET", url, headers=headers, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        for line in response.iter_lines():
            if line.startswith(":"):
                heartbeat = True
            elif line == "":
                if current.get("event"):
                    messages.append(current)
                current = {}
            else:
                field, _, value = line.partition(": ")
                current[field] = value
    return messages, heartbeat


def test_sse_follows_a_running_task_to_close_and_resumes(backend, app, keys, processes, server):
    member = bearer(keys["a_member"])
    processes.worker("cpu", concurrency=1)
    submitted = httpx.post(
        f"{server}/api/tasks", json={"type": "sleep", "params": {"seconds": 1.5}}, headers=member, timeout=10
    )
    assert submitted.status_code == 202
    task_id = submitted.json()["task_id"]
    events_url = f"{server}/api/tasks/{task_id}/events"

    messages, _ = _read_stream(events_url, member)
    kinds = [m["event"] for m in messages]
    assert kinds[-1] == "close" and json.loads(messages[-1]["data"])["status"] == "succeeded"
    rows = [m for m in messages if m["event"] != "close"]
    ids = [int(m["id"]) for m in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), "events come in sequence order, once each"
    statuses = [json.loads(m["data"])["data"]["status"] for m in rows if m["event"] == "status"]
    assert statuses == ["queued", "running", "succeeded"]
    progress = [json.loads(m["data"])["data"]["progress"] for m in rows if m["event"] == "progress"]
    assert len(progress) >= 2 and progress == sorted(progress), progress
    assert rows[-1]["event"] == "status", "the terminal status is the last row before close"

    # Reconnect after the second event: only later events, then close.
    resumed, _ = _read_stream(events_url, {**member, "Last-Event-ID": str(ids[1])})
    assert [int(m["id"]) for m in resumed if m["event"] != "close"] == ids[2:]
    assert resumed[-1]["event"] == "close"

    # A client that connects after the end gets the whole history and close at once.
    late, _ = _read_stream(events_url, member)
    assert [m.get("id") for m in late] == [m.get("id") for m in messages]

    # The same events as JSON, for polling.
    polled = httpx.get(f"{events_url}?format=json&after={ids[0]}", headers=member, timeout=10).json()
    assert [item["id"] for item in polled["items"]] == ids[1:]
    assert polled["done"] is True and polled["status"] == "succeeded" and polled["next_after"] == ids[-1]


def test_a_quiet_stream_sends_heartbeats_and_stays_open(backend, app, keys, server):
    member = bearer(keys["a_member"])
    task_id = httpx.post(f"{server}/api/tasks", json={"type": "noop"}, headers=member, timeout=10).json()["task_id"]
    seen = []
    # No worker runs: after the `queued` event the stream has nothing to say but heartbeats.
    with httpx.stream("GET", f"{server}/api/tasks/{task_id}/events", headers=member, timeout=10) as response:
        for line in response.iter_lines():
            seen.append(line)
            if seen.count(": heartbeat") == 2:
                break
    assert "retry: 2000" in seen and "event: status" in seen
    assert "event: close" not in seen, "a waiting task's stream stays open"
