"""The supervisor of `manage.py run`: it starts each worker and the sweeper as a child process,
restarts a child that dies (after 1 s, doubling to 30 s while it keeps dying; back to 1 s once
it has run a minute), logs a line for each exit and restart, and stops them all when `run`
ends. The API in `run` never stops because of a child. Restart counts go in the `run`
heartbeat (`queue.health`), which `queue status` lists.
"""

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from app.queue import health

log = logging.getLogger("conveyor.supervisor")
ROLE = "run"
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
# A child that ran this long before it died is restarted after the first backoff again.
STABLE_SECONDS = 60.0
WATCH_SECONDS = 0.5


@dataclasses.dataclass
class Child:
    """One supervised process: its `manage.py` arguments and its history."""

    name: str
    args: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = FIRST_BACKOFF_SECONDS
    restart_at: float | None = None
    last_exit: int | None = None

    def report(self) -> dict:
        running = self.process is not None and self.process.poll() is None
        return {
            "name": self.name,
            "pid": self.process.pid if running else None,
            "state": "running" if running else "restarting",
            "restarts": self.restarts,
            "last_exit": self.last_exit,
        }


def spawn(args: list[str]) -> subprocess.Popen:
    """Start `python -m app.cli ARGS` in a session of its own: Ctrl-C reaches `run` alone,
    which then stops each child cleanly."""
    return subprocess.Popen([sys.executable, "-m", "app.cli", *args], start_new_session=True)


class Supervisor:
    """Keep the children running until `stop`."""

    def __init__(self, children: dict[str, list[str]], var_dir: str, start=spawn):
        self.children = [Child(name, args) for name, args in children.items()]
        self.var_dir = var_dir
        self._start = start
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start every child, and a thread that watches them."""
        for child in self.children:
            self._launch(child)
        self._beat()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 20) -> None:
        """Stop watching, then stop the children: SIGTERM (a worker's warm shutdown lets its
        running tasks end), SIGKILL to whatever is left of each group after `timeout`."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            running = [child.process for child in self.children if child.process is not None]
            for process in running:
                process.terminate()
            deadline = time.monotonic() + timeout
            for process in running:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
                _signal_group(process, signal.SIGKILL)  # pool processes left by a worker that did not stop
                process.wait()
        health.remove(self.var_dir, ROLE)

    def _watch(self) -> None:
        while not self._stopping.wait(WATCH_SECONDS):
            with self._lock:
                for child in self.children:
                    self._tend(child)
            self._beat()

    def _tend(self, child: Child) -> None:
        now = time.monotonic()
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.restarts += 1
                log.warning("restarting %s (restart %d)", child.name, child.restarts)
                self._launch(child)
            return
        code = child.process.poll()
        if code is None:
            return
        _signal_group(child.process, signal.SIGKILL)  # pool processes its death left behind
        child.last_exit = code
        if now - child.started_at >= STABLE_SECONDS:
            child.backoff = FIRST_BACKOFF_SECONDS
        child.restart_at = now + child.backoff
        log.error("%s exited with %s; restarting in %gs", child.name, _describe(code), child.backoff)
        child.backoff = min(MAX_BACKOFF_SECONDS, child.backoff * 2)

    def _launch(self, child: Child) -> None:
        child.restart_at = None
        child.started_at = time.monotonic()
        try:
            child.process = self._start(child.args)
        except OSError as exc:  # out of processes or memory: try again after the backoff
            log.error("could not start %s: %s", child.name, exc)
            child.restart_at = child.started_at + child.backoff
            child.backoff = min(MAX_BACKOFF_SECONDS, child.backoff * 2)

    def _beat(self) -> None:
        with self._lock:
            children = [child.report() for child in self.children]
        try:
            health.beat(self.var_dir, ROLE, state="supervising", children=children)
        except OSError:
            log.warning("could not write the run heartbeat in %s", health.folder(self.var_dir), exc_info=True)

    def restarts(self) -> dict[str, int]:
        """How many times each child was restarted."""
        with self._lock:
            return {child.name: child.restarts for child in self.children}


def _describe(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"code {code}"


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
