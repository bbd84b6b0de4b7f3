"""Idle workers wait on PostgreSQL instead of the broker (PostgreSQL only).

A worker process that has drained its pool stays for `CONVEYOR_LINGER_SECONDS`, its claim
connection `LISTEN`ing on a channel of its own (`conveyor_wake_<backend pid>`). While it waits
it marks that session (`application_name` = `conveyor-listen:<pool>`, visible in
`pg_stat_activity`). Right after its commit, in the same round trip, a submit runs one
statement that sends `NOTIFY` to one marked session of the pool (`sql.notify_waiter`), and
publishes a Celery wake-up only when there is none. A busy pool's submits publish as before; an
idle pool's cost no broker message, and its worker no Celery delivery.

Why no task is left behind:
- a waiter marks itself, then claims, then waits: a task committed before the mark was visible
  is found by that claim; one committed after it is notified;
- the claim that takes a task clears the mark in the same statement (`sql.claim_with_event`
  with `rename`); a submit checks for marks after its own commit, so a waiter it did not see
  either claims after that commit or was never waiting, and the submit publishes instead;
- a notified waiter takes the best task, not necessarily the notified one. When its claim saw
  more work waiting, it wakes another waiter (or publishes) before it runs its task, so a
  burst spreads over the idle workers. A task committed during that claim itself may wait for
  the next sweep (`CONVEYOR_SWEEP_SECONDS`) if the claimed task runs long.

A dead worker's mark goes with its session. Set `CONVEYOR_LINGER_SECONDS=0` behind a pooler
in transaction mode (PgBouncer), where `LISTEN` does not hold.
"""

import select

import sqlalchemy as sa

from app.queue import prepared, sql

# How often a waiting worker claims anyway: tasks whose `run_at` came, or controls that
# changed, reach it within this long even if no notice or Celery message does.
POLL_SECONDS = 1.0


def enabled(autocommit_engine, settings) -> bool:
    """Whether idle workers wait on PostgreSQL: there is an autocommit engine (PostgreSQL) and
    a linger time."""
    return autocommit_engine is not None and settings["CONVEYOR_LINGER_SECONDS"] > 0


def channel(backend_pid: int) -> str:
    """The `NOTIFY` channel of one waiting session."""
    return f"{sql.WAKE}{backend_pid}"


def mark(pool: str) -> str:
    """The `application_name` of a session waiting for the pool's work."""
    return f"{sql.WAITING}{pool}"


def notify(connection: sa.Connection, pool: str) -> bool:
    """Notify one of the pool's waiting workers, if any; return whether one was waiting. Run
    it on an autocommit connection after the commit that made the work (the notice is sent
    when this statement commits). Prepared on hot connections: planning the view costs four
    times running it."""
    found = prepared.execute(connection, "conveyor_notify", sql.notify_waiter(), {"mark": mark(pool)}).first()
    return found is not None


class Listener:
    """The waiting side, on one autocommit psycopg2 connection (a worker's claim connection).
    `LISTEN` is sent once per connection; the mark is set and cleared only when it changes."""

    def __init__(self, connection: sa.Connection, pool: str):
        self.raw = connection.connection.dbapi_connection
        self.pool = pool
        self.state = connection.info.get("conveyor_listen")
        if self.state is None:
            with self.raw.cursor() as cursor:
                cursor.execute(f"LISTEN {channel(self.raw.get_backend_pid())}")
                cursor.execute("SELECT current_setting('application_name')")
                plain_name = cursor.fetchone()[0]
            self.state = connection.info["conveyor_listen"] = {"plain_name": plain_name, "marked": None}

    @property
    def plain_name(self) -> str:
        """The session's application name when it is not waiting."""
        return self.state["plain_name"]

    def mark(self) -> None:
        """Mark the session as waiting for the pool's work (then claim, then wait)."""
        if self.state["marked"] != self.pool:
            self._set_name(mark(self.pool))
            self.state["marked"] = self.pool

    def unmark(self) -> None:
        """Clear the mark: this process is about to run a task, or leaves."""
        if self.state["marked"] is not None:
            self._set_name(self.plain_name)
            self.state["marked"] = None

    def claim_options(self) -> dict:
        """`lifecycle.claim` options for a claim on this connection: mark the session first
        (unless it is marked), in the same round trip, and clear the mark if a task is taken."""
        marking = None if self.state["marked"] == self.pool else mark(self.pool)
        return {"session_name": self.plain_name, "mark": marking}

    def claimed(self, row) -> None:
        """After a claim with `claim_options` (or `mark()` and a claim elsewhere): the session
        is marked if nothing was taken; if a task was, the claim cleared the mark (`renamed`),
        or it is cleared now."""
        if row is None:
            self.state["marked"] = self.pool
        elif getattr(row, "renamed", None) is not None:
            self.state["marked"] = None
        else:
            self.unmark()

    def forget(self) -> None:
        """Drop the notices received so far: call it before a claim, which covers them."""
        del self.raw.notifies[:]

    def wait(self, timeout: float, stop_fd: int | None = None) -> str:
        """Wait up to `timeout` s for a notice; return "notified", "timeout" or "stop" (when
        `stop_fd` became readable: the worker is shutting down)."""
        if self.raw.notifies:  # came in during the claim
            return "notified"
        watched = [self.raw] if stop_fd is None else [self.raw, stop_fd]
        readable, _, _ = select.select(watched, [], [], max(0.0, timeout))
        if stop_fd is not None and stop_fd in readable:
            return "stop"
        if readable:
            self.raw.poll()
        return "notified" if self.raw.notifies else "timeout"

    def _set_name(self, name: str) -> None:
        with self.raw.cursor() as cursor:
            cursor.execute("SELECT set_config('application_name', %s, false)", (name,))
