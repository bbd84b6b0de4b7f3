"""Running `manage.py` in tests: a command in this process (`in_process`), as a subprocess
(`manage`), and `manage.py run` in the background on the embedded default (`start_run`)."""

import os
import pathlib
import socket
import subprocess
import sys

from tests.conftest import ROOT


def in_process(app, *args: str) -> subprocess.CompletedProcess:
    """Run a command in this process, on `app` (no interpreter start-up: a tenth of the time);
    for commands whose exit code and output are all the test looks at."""
    result = app.test_cli_runner().invoke(args=list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def environment(settings: dict) -> dict:
    """The environment of a command run with `settings`."""
    return {**os.environ, **settings, "PYTHONPATH": str(ROOT)}


def manage(settings: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `manage.py ARGS` as a subprocess with `settings`."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def embedded(settings: dict) -> dict:
    """The environment of the embedded default: `settings`, no DATABASE_URL or BROKER_URL."""
    env = environment(settings)
    for name in ("DATABASE_URL", "BROKER_URL"):
        env.pop(name, None)
    return env


def start_run(env: dict, log_path: pathlib.Path) -> tuple[subprocess.Popen, int]:
    """Start `manage.py run` on a free port with `env`, its output in `log_path`."""
    port = free_port()
    with open(log_path, "w") as log:
        run = subprocess.Popen(
            [sys.executable, "manage.py", "run", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return run, port
