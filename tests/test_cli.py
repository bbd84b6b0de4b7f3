"""The command line as a user runs it: `manage.py run` on the embedded default,
`tasks submit --wait` with its progress bar and exit codes, `tasks purge` and `uploads purge`."""

import datetime
import json
import os
import pathlib
import signal
import subprocess
import sys
import uuid

import httpx
import pytest

from app import models, runtime
from app.extensions import db
from app.services import tasks as task_service
from app.services import uploads as upload_service
from tests import commands, media
from tests.conftest import ROOT, wait_for
from tests.queue import helpers

_cli = commands.manage
_cli_in = commands.in_process


def test_run_serves_the_embedded_default_and_submit_wait_succeeds(tmp_path):
    env = commands.embedded({"CONVEYOR_VAR_DIR": str(tmp_path / "var")})
    run, port = commands.start_run(env, tmp_path / "run.log")
    try:
        wait_for(
            lambda: f"http://127.0.0.1:{port}/" in (tmp_path / "run.log").read_text(),
            timeout=60,
            message="manage.py run to print its URL",
        )
        done = subprocess.run(
            [sys.executable, "manage.py", "tasks", "submit", "sleep", "--param", "seconds=1", "--wait"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "100.0% succeeded" in done.stderr
        assert '"slept": 1.0' in done.stdout
        # The first run made a local admin key, stored it under var/ and printed it.
        key = (tmp_path / "var" / "admin-key").read_text().strip()
        assert key.startswith("cvk_") and key in (tmp_path / "run.log").read_text()
        listed = httpx.get(f"http://127.0.0.1:{port}/api/tasks", headers={"Authorization": f"Bearer {key}"})
        assert listed.status_code == 200 and listed.json()["meta"]["total"] == 1
        # It is an operator's key: whoever runs the platform may stop the whole queue.
        me = httpx.get(f"http://127.0.0.1:{port}/api/account", headers={"Authorization": f"Bearer {key}"})
        assert me.json()["role"] == "operator" and me.json()["name"] == "local"
        status = httpx.get(
            f"http://127.0.0.1:{port}/api/tasks/queue/status", headers={"Authorization": f"Bearer {key}"}
        )
        assert status.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/api/docs").status_code == 200
        family = _descendants(run.pid)
        assert len(family) >= 3, "run starts a worker per pool and the sweeper"
    finally:
        os.kill(run.pid, signal.SIGINT)
        run.wait(timeout=40)
    assert (tmp_path / "var" / "conveyor.db").exists()
    alive = [pid for pid in family if pathlib.Path(f"/proc/{pid}").exists()]
    assert alive == [], "manage.py run left processes behind"


def _descendants(pid: int) -> list[int]:
    parents = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found += children
        frontier += children
    return found


@pytest.mark.embedded
def test_submit_wait_exit_codes(backend, settings, app, processes):
    processes.worker("cpu", concurrency=1)
    processes.worker("io", concurrency=1)
    failed = _cli(settings, "tasks", "submit", "flaky", "--param", "times=1", "--param", "error=permanent", "--wait")
    assert failed.returncode == 1 and "task failed: flaky failure" in failed.stderr

    waiting = subprocess.Popen(
        [sys.executable, "manage.py", "tasks", "submit", "sleep", "--param", "seconds=30", "--wait"],
        cwd=ROOT,
        env={**os.environ, **settings, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    task = wait_for(
        lambda: task_service.find(None, type="sleep", status="running"), timeout=30, message="the sleep to run"
    )[0]
    cancel = _cli(settings, "tasks", "cancel", str(task.id))
    assert cancel.returncode == 0 and cancel.stdout.strip() == "cancel_requested"
    _, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 3 and "task cancelled" in err


@pytest.mark.embedded
def test_submit_refuses_bad_input_naming_the_field(backend, settings, app):
    unknown = _cli_in(app, "tasks", "submit", "nope")
    assert unknown.returncode != 0 and "unknown task type 'nope'" in unknown.stderr
    bad = _cli_in(app, "tasks", "submit", "sleep", "--param", "seconds=-1")
    assert bad.returncode != 0 and "seconds" in bad.stderr
    assert task_service.find(None) == []


@pytest.mark.embedded
def test_queue_commands_and_processors_list(backend, settings, app):
    stop = _cli_in(app, "queue", "stop", "--pool", "io")
    assert stop.returncode == 0 and '"paused": true' in stop.stdout
    status = _cli_in(app, "queue", "status")
    assert '"scope": "pool"' in status.stdout and '"name": "io"' in status.stdout
    listing = _cli_in(app, "processors", "list")
    assert listing.returncode == 0
    for name in ("noop", "sleep", "flaky"):
        assert any(line.startswith(name) and "available" in line for line in listing.stdout.splitlines())
    task_id = task_service.submit("flaky", {"times": 0}, account_id=_local_account(settings))[0].id
    shown = _cli_in(app, "tasks", "show", str(task_id))
    assert shown.returncode == 0 and '"status": "queued"' in shown.stdout
    assert helpers.task(task_id).status == "queued"


def _local_account(settings):
    from app.services import accounts

    return accounts.local().id


@pytest.mark.embedded
def test_purge_deletes_old_ended_tasks_with_their_files_and_keeps_the_rest(backend, settings, app, tmp_path):
    account = _local_account(settings)
    made = tmp_path / "out.txt"
    made.write_text("made by a task")

    def task(status: str, days_ago: float, parent=None) -> tuple[uuid.UUID, str]:
        """A task of the local account as the runner leaves it: ended `days_ago`, one artifact."""
        row = db.session.get(models.Task, task_service.submit("noop", {}, account_id=account, parent_id=parent)[0].id)
        row.status = status
        if status in ("succeeded", "failed", "cancelled"):
            row.finished_at = models.utcnow() - datetime.timedelta(days=days_ago)
        key = f"tasks/{row.id}/1/out.txt"
        runtime.current().storage.put_file(key, made)
        db.session.add(
            models.Artifact(task_id=row.id, attempt=1, kind="text", name="out.txt", storage_key=key, size=14)
        )
        db.session.commit()
        return row.id, key

    old, old_failed, recent = task("succeeded", 40), task("failed", 40), task("cancelled", 1)
    family = task("succeeded", 40)
    family_child = task("cancelled", 35, parent=family[0])
    waiting_parent = task("failed", 40)
    waiting_child = task("queued", 0, parent=waiting_parent[0])

    dry = _cli_in(app, "tasks", "purge", "--older-than", "30", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["matching"] == 5
    assert task_service.count(None) == 7

    only_failed = _cli_in(app, "tasks", "purge", "--older-than", "30", "--status", "failed")
    assert only_failed.returncode == 0, only_failed.stderr
    assert json.loads(only_failed.stdout) | {"before": None} == {
        "before": None,
        "statuses": ["failed"],
        "deleted": 1,
        "kept": 1,  # the failed parent of a queued task
        "file_errors": 0,
    }

    everything = _cli_in(app, "tasks", "purge", "--older-than", "30")
    assert everything.returncode == 0, everything.stderr
    report = json.loads(everything.stdout)
    assert (report["deleted"], report["kept"], report["file_errors"]) == (3, 1, 0)

    db.session.rollback()
    remaining = {row.id for row in task_service.find(None, limit=100)}
    assert remaining == {recent[0], waiting_parent[0], waiting_child[0]}
    store = runtime.current().storage
    for task_id, key in (old, old_failed, family, family_child):
        assert not store.exists(key)
        assert db.session.query(models.TaskEvent).filter_by(task_id=task_id).count() == 0
        assert db.session.query(models.Artifact).filter_by(task_id=task_id).count() == 0
    for _task_id, key in (recent, waiting_parent, waiting_child):
        assert store.exists(key)
    assert db.session.query(models.TaskEvent).filter_by(task_id=recent[0]).count() == 1

    for bad in (["--older-than", "0"], ["--older-than", "x"], ["--older-than", "3", "--status", "queued"]):
        refused = _cli_in(app, "tasks", "purge", *bad)
        assert refused.returncode == 2 and f"Invalid value for '{bad[-2]}'" in refused.stderr
    assert task_service.count(None) == 3


@pytest.mark.embedded
def test_uploads_purge_keeps_the_uploads_waiting_tasks_need(backend, settings, app, tmp_path):
    account = _local_account(settings)
    video = media.make_video(tmp_path / "clip.mp4", 1, size=(160, 120))

    def upload(days_ago: float) -> tuple[uuid.UUID, str]:
        with open(video, "rb") as stream:
            row = upload_service.create(stream, "clip.mp4", account_id=account, user_id=None)
        row.created_at = models.utcnow() - datetime.timedelta(days=days_ago)
        db.session.commit()
        return row.id, row.storage_key

    old, needed, used_by_ended, recent = upload(40), upload(40), upload(35), upload(1)
    for source in (needed, used_by_ended):
        task_service.submit("video_clip", {"source": {"upload_id": str(source[0])}}, account_id=account)
    ended = task_service.find(None, limit=2)[0]  # the newest: used_by_ended's task
    assert ended.params["source"]["upload_id"] == str(used_by_ended[0])
    ended.status, ended.finished_at = "succeeded", models.utcnow()
    db.session.commit()
    size = video.stat().st_size

    dry = _cli_in(app, "uploads", "purge", "--older-than", "30", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) | {"before": None} == {
        "before": None,
        "kept_in_use": 1,
        "matching": 2,
        "bytes": 2 * size,
    }
    assert upload_service.count(account) == 4

    done = _cli_in(app, "uploads", "purge", "--older-than", "30")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["deleted"], report["kept_in_use"], report["bytes"], report["file_errors"]) == (2, 1, 2 * size, 0)

    db.session.rollback()
    assert {row.id for row in upload_service.find(account)} == {needed[0], recent[0]}
    store = runtime.current().storage
    assert [store.exists(key) for _id, key in (old, needed, used_by_ended, recent)] == [False, True, False, True]

    refused = _cli_in(app, "uploads", "purge", "--older-than", "-2")
    assert refused.returncode == 2 and "Invalid value for '--older-than'" in refused.stderr
    assert upload_service.count(account) == 2


@pytest.mark.embedded
def test_accounts_set_checks_its_values_and_show_lists_them(backend, settings, app):
    assert _cli_in(app, "accounts", "create", "acme").returncode == 0
    for bad in (
        ["--weight", "0"],
        ["--max-waiting", "-3"],
        ["--max-running", "many"],
        ["--submit-rate", "fast"],
        [],
    ):
        refused = _cli_in(app, "accounts", "set", "acme", *bad)
        assert refused.returncode == 2 and "Error" in refused.stderr, (bad, refused.stderr)
    unknown = _cli_in(app, "accounts", "set", "nobody", "--weight", "2")
    assert unknown.returncode == 1 and "no account 'nobody'" in unknown.stderr
    args = ["--weight", "2.5", "--max-waiting", "1", "--max-running", "3", "--submit-rate", "20/second"]
    done = _cli_in(app, "accounts", "set", "acme", *args, "--allow-urgent")
    assert done.returncode == 0, done.stderr
    shown = _cli_in(app, "accounts", "show", "acme").stdout
    for line in ("weight        2.5", "allow urgent  yes", "max_waiting   1\n", "max_running   3\n", "20/second\n"):
        assert line in shown, (line, shown)
    back = _cli_in(app, "accounts", "set", "acme", "--max-waiting", "default", "--no-allow-urgent")
    assert back.returncode == 0 and "max_waiting   10000 (default)" in back.stdout and "allow urgent  no" in back.stdout
    listed = _cli_in(app, "accounts", "list").stdout
    assert any(line.startswith("acme  weight 2.5  waiting 0/10000") for line in listed.splitlines()), listed


@pytest.mark.embedded
def test_cli_submit_over_the_quota_exits_4_naming_it(backend, settings, app):
    assert _cli_in(app, "accounts", "create", "small").returncode == 0
    assert _cli_in(app, "accounts", "set", "small", "--max-waiting", "1").returncode == 0
    first = _cli_in(app, "tasks", "submit", "noop", "--account", "small", "--priority", "urgent")
    assert first.returncode == 0, "the command line acts as the platform: urgent is allowed"
    refused = _cli_in(app, "tasks", "submit", "noop", "--account", "small")
    assert refused.returncode == 4 and "max_waiting" in refused.stderr


@pytest.mark.embedded
def test_schedules_commands_create_list_pause_resume_show_and_delete(backend, app, account):
    made = _cli_in(
        app, "schedules", "create", "nightly", "noop", "--cron", "30 2 * * *", "--timezone", "Europe/Berlin",
        "--param", "echo=1", "--account", account.name,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    schedule_id = made.stdout.strip()
    assert made.stderr.count("fires ") == 5

    listed = _cli_in(app, "schedules", "list", "--account", account.name)
    assert schedule_id in listed.stdout and "cron '30 2 * * *' Europe/Berlin" in listed.stdout
    assert "paused" in _cli_in(app, "schedules", "pause", schedule_id).stdout
    assert "paused" in _cli_in(app, "schedules", "list").stdout
    assert "resumed" in _cli_in(app, "schedules", "resume", schedule_id).stdout
    shown = json.loads(_cli_in(app, "schedules", "show", schedule_id).stdout)
    assert shown["paused"] is False and len(shown["next_fire_times"]) == 5 and shown["params"] == {"echo": 1}
    assert _cli_in(app, "schedules", "delete", schedule_id).returncode == 0
    assert _cli_in(app, "schedules", "show", schedule_id).returncode == 1

    bad = _cli_in(app, "schedules", "create", "bad", "noop", "--cron", "61 * * * *", "--account", account.name)
    assert bad.returncode == 1 and "cron" in bad.stderr


@pytest.mark.embedded
def test_submit_from_file_stores_batches_all_or_none(backend, settings, app, tmp_path):
    good = tmp_path / "tasks.jsonl"
    lines = [json.dumps({"type": "noop", "params": {"echo": n}}) for n in range(1001)]
    lines.insert(3, "")  # blank lines are skipped
    lines.append(json.dumps({"type": "sleep", "params": {"seconds": 1}, "priority": "low"}))
    good.write_text("\n".join(lines) + "\n")
    stored = _cli_in(app, "tasks", "submit", "--from-file", str(good), "--idempotency-key", "import-1")
    assert stored.returncode == 0, stored.stderr
    ids = stored.stdout.split()
    assert len(ids) == 1002 and "batch 2: 2 tasks" in stored.stderr
    assert task_service.count(None) == 1002
    assert task_service.get(ids[-1], None).type == "sleep"
    again = _cli_in(app, "tasks", "submit", "--from-file", str(good), "--idempotency-key", "import-1")
    assert again.returncode == 0 and again.stdout.split() == ids, "a repeated key returns the stored tasks"
    assert task_service.count(None) == 1002
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "noop"}\n{"type": "sleep", "params": {"seconds": -1}}\n')
    refused = _cli_in(app, "tasks", "submit", "--from-file", str(bad))
    assert refused.returncode == 1 and "seconds" in refused.stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"type": "noop"}\n{"type": "noop", "prio": 1}\n')
    refused = _cli_in(app, "tasks", "submit", "--from-file", str(broken))
    assert refused.returncode == 1 and "line 2" in refused.stderr and "prio" in refused.stderr
    assert task_service.count(None) == 1002, "a refused batch stores nothing"
