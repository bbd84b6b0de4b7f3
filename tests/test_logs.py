"""Structured logs: with CONVEYOR_LOG_FORMAT=json every line a worker and the sweeper log is
one JSON object with time, level, logger and message, and what an attempt logs carries its
task_id, type, attempt and account; Celery's root-user warning is not printed."""

import datetime
import json
import logging
import uuid

import pytest

from app import logs
from app.services import tasks as task_service
from tests.conftest import wait_for
from tests.queue import helpers


@pytest.fixture
def settings(settings) -> dict:
    return {**settings, "CONVEYOR_LOG_FORMAT": "json"}


def _lines(process) -> list[dict]:
    """The JSON lines of a process's log (Celery's start-up banner aside)."""
    text = process.log_path.read_text(errors="replace")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_workers_and_the_sweeper_log_json_with_the_attempts_fields(backend, app, account, processes):
    worker = processes.worker("io")
    sweeper = processes.sweeper()
    task, _ = task_service.submit("flaky", {"times": 1, "error": "permanent"}, account_id=account.id)
    helpers.wait_status(task.id, "failed", timeout=30)

    failed = wait_for(
        lambda: [line for line in _lines(worker) if line["message"].startswith("attempt failed with")],
        timeout=10,
        message="the worker to log the failure",
    )
    assert failed[0]["level"] == "WARNING" and failed[0]["logger"] == "conveyor.runner"
    assert (failed[0]["task_id"], failed[0]["type"], failed[0]["attempt"]) == (str(task.id), "flaky", 1)
    assert failed[0]["account"] == str(account.id)
    assert "PermanentError" in failed[0]["message"] and "the task failed" in failed[0]["message"]
    for line in _lines(worker) + wait_for(lambda: _lines(sweeper), timeout=10, message="the sweeper's first log"):
        assert {"time", "level", "logger", "message"} <= line.keys(), line
        assert datetime.datetime.fromisoformat(line["time"]).utcoffset() == datetime.timedelta(0)
    assert any(line["logger"] == "celery.apps.worker" and line["message"].endswith("ready.") for line in _lines(worker))
    assert "superuser privileges" not in worker.log_path.read_text(errors="replace")


def test_a_line_logged_outside_an_attempt_has_no_task_fields(capsys):
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    logs.configure("json")
    try:
        task_id = uuid.uuid4()
        with logs.task(task_id, "voice", 2, "acct"):
            logging.getLogger("conveyor.test").info("inside", extra={"data": {"n": 1}})
        logging.getLogger("conveyor.test").warning("outside")
        inside, outside = (json.loads(line) for line in capsys.readouterr().err.splitlines()[-2:])
    finally:
        root.handlers[:], root.level = handlers, level
    tagged = (inside["task_id"], inside["type"], inside["attempt"], inside["account"])
    assert tagged == (str(task_id), "voice", 2, "acct")
    assert inside["data"] == {"n": 1} and inside["level"] == "INFO" and inside["message"] == "inside"
    assert "task_id" not in outside and outside["level"] == "WARNING"
