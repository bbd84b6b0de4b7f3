"""Child processes of a provider (ffmpeg, espeak-ng): starting one, stopping a whole process
group and telling whether one still has members.

`start` gives each child a process group of its own, so everything it spawned can be stopped
together, and on Linux asks the kernel to SIGKILL it if the thread that started it dies: a
worker killed with SIGKILL (the OOM killer, a hard time limit, `kill -9`) runs no cleanup, and
ffmpeg would otherwise go on encoding for minutes with no one to read its output.
"""

from __future__ import annotations

import ctypes
import os
import pathlib
import signal
import subprocess
import sys
import time

from processors import errors

REAP_WAIT = 2.0  # seconds to let killed group members finish dying
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def start(
    argv: list[str], *, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
) -> subprocess.Popen:
    """Start `argv` in a process group of its own that dies with its starter (see above).
    A missing program is a `PermanentError` naming it."""
    try:
        return subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=_dies_with(os.getpid()) if _LIBC is not None else None,
        )
    except FileNotFoundError as exc:
        raise errors.PermanentError(f"{argv[0]} is not installed") from exc


def _dies_with(parent: int):
    """The child's last step before exec: SIGKILL when the starting thread ends, and exit at
    once if the parent is already gone (it died between fork and this call)."""

    def set_death_signal() -> None:
        if _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0 or os.getppid() != parent:
            os._exit(127)

    return set_death_signal


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
