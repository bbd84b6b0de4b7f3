"""Supervision, with real processes: `manage.py run` restarts a worker or sweeper that dies,
with backoff, and keeps serving; a worker exits non-zero unless asked to stop, and a pool
process lost at start-up or later is replaced or ends the worker non-zero; `worker --check` and
`sweeper --check` tell whether one serves on this host."""

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from app import supervisor
from app.queue import health
from app.services import tasks as task_service
from tests import commands
from tests.conftest import ROOT, wait_for
from tests.queue import helpers


def _children(var_dir: str) -> dict[str, dict]:
    runs = health.records(var_dir, supervisor.ROLE)
    return {child["name"]: child for child in runs[0]["children"]} if runs else {}


def test_run_restarts_a_killed_worker_and_sweeper_and_keeps_serving(tmp_path):
    var_dir = str(tmp_path / "var")
    env = commands.embedded({"CONVEYOR_VAR_DIR": var_dir, "CONVEYOR_LEASE_SECONDS": "3"})
    log_path = tmp_path / "run.log"
    run, port = commands.start_run(env, log_path)
    try:
        wait_for(lambda: all(health.check(var_dir, role)[0] for role in ("worker-cpu", "sweeper")), 60, 0.2, "run")
        before = _children(var_dir)
        for name in ("worker --pool cpu", "sweeper"):
            os.kill(before[name]["pid"], signal.SIGKILL)
        wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).status == 200, 5)

        def restarted():
            now = _children(var_dir)
            return all(
                now[n]["restarts"] == 1 and now[n]["state"] == "running" for n in ("worker --pool cpu", "sweeper")
            )

        wait_for(restarted, timeout=20, interval=0.2, message="the restarts")
        after = _children(var_dir)
        wait_for(lambda: health.check(var_dir, "worker-cpu")[0], timeout=30, interval=0.2, message="the new worker")
        submitted = subprocess.run(
            [sys.executable, "manage.py", "tasks", "submit", "sleep", "--param", "seconds=0.1", "--wait"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        status = json.loads(
            subprocess.run(
                [sys.executable, "manage.py", "queue", "status"], cwd=ROOT, env=env, capture_output=True, timeout=60
            ).stdout
        )
        assert run.poll() is None, "run stopped"
    finally:
        run.terminate()
        run.wait(timeout=60)
    logged = log_path.read_text()

    assert submitted.returncode == 0, submitted.stderr
    for name in ("worker --pool cpu", "sweeper"):
        assert after[name]["pid"] != before[name]["pid"] and after[name]["last_exit"] == -signal.SIGKILL
        assert f"{name} exited with signal SIGKILL; restarting in 1s" in logged
        assert f"restarting {name} (restart 1)" in logged
    assert after["worker --pool io"]["restarts"] == 0
    supervised = next(p for p in status["processes"] if p["role"] == "run")
    assert {c["name"]: c["restarts"] for c in supervised["children"]} == {
        "worker --pool cpu": 1,
        "worker --pool io": 0,
        "sweeper": 1,
    }
    assert run.returncode == 0 and not list(health.folder(var_dir).glob("*.json")), "a clean stop leaves no heartbeat"


def test_a_child_that_keeps_dying_is_restarted_with_doubling_backoff(tmp_path):
    launched = []

    def start(args):  # a real process that dies at once, in place of a worker
        launched.append(time.monotonic())
        return subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"], start_new_session=True)

    supervised = supervisor.Supervisor({"crasher": []}, str(tmp_path), start=start)
    supervised.start()
    try:
        wait_for(lambda: len(launched) >= 4, timeout=20, interval=0.1, message="three restarts")
        child = _children(str(tmp_path))["crasher"]
    finally:
        supervised.stop()
    gaps = [later - earlier for earlier, later in itertools.pairwise(launched)][:3]

    assert child["restarts"] >= 3 and child["last_exit"] == 3
    for gap, backoff in zip(gaps, (1, 2, 4), strict=True):
        assert backoff <= gap < backoff + 1.5, gaps
    assert supervised.restarts()["crasher"] == len(launched) - 1


@pytest.mark.embedded
def test_worker_and_sweeper_checks_tell_whether_one_serves_here(backend, settings, app, processes):
    assert commands.in_process(app, "worker", "--pool", "cpu", "--check").returncode == 1
    worker = processes.worker("cpu")
    wait_for(lambda: health.check(settings["CONVEYOR_VAR_DIR"], "worker-cpu")[0], timeout=20, message="a heartbeat")
    serving = commands.manage(settings, "worker", "--pool", "cpu", "--check")  # as compose runs it
    other_pool = commands.in_process(app, "worker", "--pool", "io", "--check")
    no_sweeper = commands.in_process(app, "sweeper", "--check")
    processes.sweeper()
    wait_for(lambda: health.check(settings["CONVEYOR_VAR_DIR"], "sweeper")[0], timeout=20, message="a heartbeat")
    sweeping = commands.in_process(app, "sweeper", "--check")
    processes.kill(worker, signal.SIGKILL)
    gone = commands.in_process(app, "worker", "--pool", "cpu", "--check")

    assert serving.returncode == 0 and "worker-cpu pid" in serving.stdout and "serving" in serving.stdout
    assert other_pool.returncode == 1 and "no worker-io heartbeat" in other_pool.stderr
    assert no_sweeper.returncode == 1
    assert sweeping.returncode == 0 and "(active" in sweeping.stdout
    assert gone.returncode == 1, gone.stdout


@pytest.mark.embedded
@pytest.mark.parametrize("delay", [0.0, 0.4, 1.5])
def test_a_pool_process_lost_at_start_up_is_replaced_or_the_worker_exits_non_zero(
    backend, settings, app, account, processes, delay
):
    worker = processes._start(["worker", "--pool", "cpu", "--concurrency", "2"], None, "worker-cpu")
    pool = wait_for(lambda: _pool_of(worker.pid), timeout=30, interval=0.01, message="a pool process")
    time.sleep(delay)
    os.kill(pool[0], signal.SIGKILL)
    task_id = task_service.submit("noop", {}, account_id=account.id)[0].id

    def settled():
        return worker.poll() is not None or helpers.task(task_id).status == "succeeded"

    wait_for(settled, timeout=45, interval=0.1, message="the task to run or the worker to exit")

    if worker.poll() is None:  # replaced: the worker serves with its full pool
        wait_for(lambda: len(_pool_of(worker.pid)) == 2, timeout=10, message="the replacement")
    else:
        assert worker.returncode != 0, "a worker that lost its pool exited 0"


def _pool_of(pid: int) -> list[int]:
    """The worker's pool processes: its forked children (same command line as the worker)."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(child) for child in found if _cmdline(int(child)) == _cmdline(pid)]


def _cmdline(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return None


@pytest.mark.embedded
def test_a_worker_asked_to_stop_exits_0(backend, settings, app, processes):
    worker = processes.worker("cpu")
    os.kill(worker.pid, signal.SIGTERM)

    assert worker.wait(timeout=30) == 0
