"""Child processes of a provider (ffmpeg, espeak-ng): stopping a whole process group and
telling whether one still has members.

Providers start their programs with `start_new_session=True`, so each child leads a process
group of its own and everything it spawned can be stopped together.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import time

REAP_WAIT = 2.0  # seconds to let killed group members finish dying


def kill_group(process: subprocess.Popen, grace: float = 1.0) -> None:
    """Stop a child's process group: SIGTERM, then SIGKILL after `grace` s; reap it, wait for the rest."""
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    # Also after a clean exit of the leader: anything it left in the group must go too.
    _signal_group(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.kill()  # not a group leader after all (started without start_new_session)
    process.wait()
    _wait_empty(process.pid, REAP_WAIT)


def group_members(pgid: int) -> list[int]:
    """Return the ids of the live (not zombie) processes in process group `pgid`."""
    members = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended while we looked
        # Fields after the parenthesised command name: state, ppid, pgrp, ...
        state, _ppid, pgrp = text.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def _wait_empty(pgid: int, seconds: float) -> None:
    # SIGKILL is delivered when each member is next scheduled, which on a busy machine is not at once.
    deadline = time.monotonic() + seconds
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already gone
