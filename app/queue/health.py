"""Liveness of this machine's long-lived processes, kept as small JSON heartbeat files in
`CONVEYOR_VAR_DIR/health/`, one per process: `worker-<pool>` (written by a worker's main process
every few seconds while it is connected to the broker and its pool runs), `sweeper` (each
round, with whether it reached the database) and `run` (the supervisor of `manage.py run`, with
its children's restart counts).

`manage.py worker --check` and `sweeper --check` read them (compose's healthchecks): healthy
when a process of that role on this host is alive and its heartbeat is fresh. `queue status`
lists them. Files of other hosts sharing the folder are listed with their age but never
checked for a live PID (it means nothing here).
"""

import json
import os
import pathlib
import socket
import time

FOLDER = "health"
BEAT_SECONDS = 5.0
# A heartbeat older than this (or than a process's own `stale_after`) means not serving.
STALE_SECONDS = 20.0
# Files of processes gone longer than this are dropped when the folder is read.
FORGET_SECONDS = 3600.0


def folder(var_dir: str) -> pathlib.Path:
    """The folder of the heartbeat files."""
    return pathlib.Path(var_dir) / FOLDER


def path(var_dir: str, role: str, pid: int | None = None) -> pathlib.Path:
    """The heartbeat file of the process `pid` (this one by default) in `role`."""
    return folder(var_dir) / f"{role}-{socket.gethostname()}-{pid or os.getpid()}.json"


def beat(var_dir: str, role: str, **fields) -> None:
    """Write this process's heartbeat (atomically: a reader never sees half a file)."""
    record = {"role": role, "hostname": socket.gethostname(), "pid": os.getpid(), "at": time.time(), **fields}
    target = path(var_dir, role)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".tmp")
    partial.write_text(json.dumps(record))
    os.replace(partial, target)


def remove(var_dir: str, role: str) -> None:
    """Drop this process's heartbeat file (a clean exit)."""
    path(var_dir, role).unlink(missing_ok=True)


def records(var_dir: str, role_prefix: str = "") -> list[dict]:
    """Every heartbeat in the folder whose role starts with `role_prefix`, each with its
    `age_seconds` and `healthy`. Files of local processes that are gone are removed (and of
    other hosts, once an hour stale)."""
    found = []
    now = time.time()
    for file in sorted(folder(var_dir).glob(f"{role_prefix}*.json")):
        try:
            record = json.loads(file.read_text())
        except (OSError, ValueError):
            continue  # removed or replaced while we read
        record["age_seconds"] = round(now - record.get("at", 0), 1)
        record["healthy"] = _healthy(record)
        gone = record.get("hostname") == socket.gethostname() and not _alive(record.get("pid", 0))
        if gone or (not record["healthy"] and record["age_seconds"] > FORGET_SECONDS):
            file.unlink(missing_ok=True)
            continue
        found.append(record)
    return found


def check(var_dir: str, role: str) -> tuple[bool, str]:
    """Whether a process of `role` on this host is serving; and a line saying why (not)."""
    local = [r for r in records(var_dir, role) if r["role"] == role and r["hostname"] == socket.gethostname()]
    if not local:
        return False, f"no {role} heartbeat on {socket.gethostname()} in {folder(var_dir)}"
    healthy = [r for r in local if r["healthy"]]
    if healthy:
        record = healthy[0]
        return True, f"{role} pid {record['pid']} serving ({record.get('state', 'ok')}, {record['age_seconds']}s ago)"
    best = min(local, key=lambda r: r["age_seconds"])
    problem = best.get("problem") or f"last heartbeat {best['age_seconds']}s ago"
    return False, f"{role} pid {best['pid']} is not serving: {problem}"


def _healthy(record: dict) -> bool:
    fresh = record["age_seconds"] <= record.get("stale_after", STALE_SECONDS)
    if record.get("hostname") == socket.gethostname() and not _alive(record.get("pid", 0)):
        return False
    return fresh and record.get("ok", True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def expect_exit(var_dir: str) -> None:
    """Say that this (pool) process is about to end itself on purpose (a hard stop), so its
    worker does not take its end for a lost process."""
    target = folder(var_dir) / f"exit-{os.getpid()}"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.touch()


def expected_exits(var_dir: str, pids: set[int]) -> set[int]:
    """Which of `pids` ended on purpose (`expect_exit`); their marks are removed."""
    found = set()
    for pid in pids:
        mark = folder(var_dir) / f"exit-{pid}"
        if mark.exists():
            mark.unlink(missing_ok=True)
            found.add(pid)
    return found
