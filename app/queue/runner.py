"""The runner: claims tasks of a pool one at a time and runs each one's processor in this
process, under a watcher thread that renews the lease, notices a cancel, and enforces the hard
timeout. One wake-up drains the pool (`drain`), so a burst of submits needs few messages.

- Soft timeout: a SIGALRM timer raises `SoftTimeout` inside the processor (main thread), which
  may clean up; the attempt then fails as retryable.
- Cancel: the watcher's heartbeat reads the cancel request (at least every heartbeat interval)
  and sets the context's flag; the processor's next `progress`/`check`/`sleep` raises
  `Cancelled`.
- Hard stop: at the hard timeout, or a grace period after a cancel the processor ignored, the
  watcher writes the outcome, kills the processor's tracked child process groups and then this
  process (a Celery prefork child, which the pool replaces, as Celery's own `time_limit` does).
"""

import collections
import contextlib
import datetime
import json
import logging
import os
import pathlib
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy import orm

from app import logs
from app import storage as storage_module
from app.queue import context as context_module
from app.queue import control, errors, health, lifecycle, listen, sql
from processors import errors as processor_errors
from processors import registry as registry_module
from processors.policy import Policy

log = logging.getLogger("conveyor.runner")

LIMITS_CACHE_SECONDS = 1.0

Wake = Callable[[str, int, float | None], None]


class Runner:
    """Runs claimed tasks of any type, one at a time, in the calling (main) thread."""

    def __init__(
        self,
        session_factory: orm.sessionmaker,
        registry: registry_module.Registry,
        settings: dict,
        wake: Wake,
        worker: str,
        nudge: Callable[[str, sa.Connection], bool] | None = None,
        autocommit_engine: sa.Engine | None = None,
        storage: storage_module.Storage | None = None,
    ):
        self.session_factory = session_factory
        self.storage = storage or storage_module.from_settings(settings)
        self.autocommit_engine = autocommit_engine
        self._hot: sa.Connection | None = None
        self.registry = registry
        self.settings = settings
        self.wake = wake
        self.nudge = nudge or (lambda pool, connection: self.wake(pool, 1, None))
        self.worker = worker
        var = pathlib.Path(settings["CONVEYOR_VAR_DIR"])
        self.work_dir = var / "work"
        self._limited: frozenset[str] = frozenset()
        self._accounts_limited: sql.AccountLimits | None = None
        self._limits_read = float("-inf")
        self._watching: Watcher | None = None

    def drain(self, pool: str) -> str:
        """Run tasks of `pool` one after another, each claimed by priority, until none is
        eligible or `CONVEYOR_DRAIN_SECONDS` have passed; in that case publish a wake-up for
        what may be left, so this process does not hold the pool's work (and a warm shutdown)
        for longer. Return the outcomes, counted."""
        outcomes: collections.Counter[str] = collections.Counter()
        self._drain(pool, outcomes)
        return _summary(outcomes)

    def serve(self, pool: str, stop_fd: int | None = None) -> str:
        """What a wake-up does: drain the pool, then, on PostgreSQL, stay listening for its
        next tasks until it has been idle for `CONVEYOR_LINGER_SECONDS` (see `listen`), or
        until `stop_fd` becomes readable (the worker shuts down). Return the outcomes."""
        outcomes: collections.Counter[str] = collections.Counter()
        if self._drain(pool, outcomes) and self._can_listen():
            self._linger(pool, outcomes, stop_fd)
        return _summary(outcomes)

    def _drain(self, pool: str, outcomes: collections.Counter, row=None) -> bool:
        """Run `row` (if given) and then claimed tasks until none is eligible (return True) or
        the time slice ended (publish a wake-up for the rest and return False)."""
        deadline = time.monotonic() + self.settings["CONVEYOR_DRAIN_SECONDS"]
        while row is not None or (row := self.claim(pool)) is not None:
            outcomes[self.run(row)] += 1
            if not getattr(row, "more", True):  # PostgreSQL says when the claim took the last one
                return True
            if time.monotonic() >= deadline:
                self.wake(pool, 1, None)
                return False
            row = None
        return True

    def _can_listen(self) -> bool:
        return listen.enabled(self.autocommit_engine, self.settings)

    def _linger(self, pool: str, outcomes: collections.Counter, stop_fd: int | None) -> None:
        """Wait on the claim connection for the pool's notices (and claim at least every
        `listen.POLL_SECONDS`); run what comes; return once idle for the linger time."""
        idle_until = time.monotonic() + self.settings["CONVEYOR_LINGER_SECONDS"]
        while (left := idle_until - time.monotonic()) > 0:
            with self._hot_connection() as connection:
                listener = listen.Listener(connection, pool)
                listener.forget()
                row = self.claim(pool, listener)
                listener.claimed(row)
                if row is None:
                    if listener.wait(min(listen.POLL_SECONDS, left), stop_fd) == "stop":
                        listener.unmark()
                        return
                    continue
                if row.more:  # more work came with this wake-up: another idle worker may help
                    self.nudge(pool, connection)
            if not self._drain(pool, outcomes, row):
                return  # the time slice ended; its wake-up carries on
            idle_until = time.monotonic() + self.settings["CONVEYOR_LINGER_SECONDS"]
        with self._hot_connection() as connection:
            listen.Listener(connection, pool).unmark()

    def run_next(self, pool: str) -> str | None:
        """Claim and run the best eligible task of `pool`; return its outcome, None if idle."""
        row = self.claim(pool)
        return None if row is None else self.run(row)

    def claim(self, pool: str, listener: listen.Listener | None = None):
        """Claim the best eligible task of `pool` for this worker; return its row or None.
        With a `listener` (on the claim connection), the claim also marks it as waiting and
        clears the mark again if it takes a task (`Listener.claim_options`)."""
        serialize = bool(self._limited_types())
        accounts = self._account_limits()
        lease = self.settings["CONVEYOR_LEASE_SECONDS"]
        if listener is not None and (serialize or accounts):
            listener.mark()  # the claim runs on another connection
        if self.autocommit_engine is not None and not (serialize or accounts):
            options = listener.claim_options() if listener is not None else {}
            with self._hot_connection() as connection:
                return lifecycle.claim(connection, pool, lease, self.worker, **options)
        with self.session_factory() as session:
            row = lifecycle.claim(session, pool, lease, self.worker, serialize=serialize, account_limits=accounts)
            session.commit()
            return row

    def run(self, row) -> str:
        """Run the claimed task `row` (its attempt already counted) to an outcome."""
        policy = self.registry.policy(row.type)
        workdir = self.work_dir / str(row.id) / str(row.attempt)
        ctx = context_module.DurableContext(
            self.session_factory,
            row.id,
            row.attempt,
            workdir,
            self.storage,
            row.account_id,
            self.settings,
            submit=lambda type, params, key: self._submit_child(row, type, params, key),
            type=row.type,
        )
        if row.attempt > 1:
            self._drop_earlier_artifacts(row)
        watch = self._watcher().watch(row, ctx, policy)
        try:
            with logs.task(row.id, row.type, row.attempt, row.account_id):
                outcome = self._execute(row, ctx, policy)
                return watch.settle(lambda: self._record(row, ctx, policy, outcome)) or "stale"
        finally:
            self._watcher().release(watch)
            ctx.close()
            if ctx.workdir_made:
                shutil.rmtree(workdir.parent, ignore_errors=True)

    def _submit_child(self, row, type: str, params: dict, key: str):
        """Store a child task of `row` and wake its pool; the key makes a retried parent's
        repeat return the same child. Raises PermanentError for bad params or type,
        RetryableError when the account is at its waiting quota."""
        with self.session_factory() as session:
            try:
                child, created = lifecycle.submit(
                    session,
                    self.registry,
                    type=type,
                    params=params,
                    account_id=row.account_id,
                    parent_id=row.id,
                    idempotency_key=f"child:{row.id}:{key}",
                    fair=bool(self.settings["CONVEYOR_FAIR_SHARE"]),
                    max_waiting=self.settings["CONVEYOR_ACCOUNT_MAX_WAITING"],
                )
            except (errors.UnknownTaskType, processor_errors.InvalidParams) as exc:
                raise processor_errors.PermanentError(f"child task {key!r}: {exc}") from exc
            except errors.QuotaExceeded as exc:
                # The quota frees as the account's tasks start: the parent retries by its policy.
                raise processor_errors.RetryableError(f"child task {key!r}: quota {exc.quota}: {exc}") from exc
            session.commit()
            child_id, pool, run_at = child.id, child.pool, child.run_at
        if created:
            self.wake(pool, 1, max(0.0, (run_at - lifecycle.now()).total_seconds()) or None)
        return child_id

    def _drop_earlier_artifacts(self, row) -> None:
        """A retry replaces what earlier attempts stored: remove their artifact rows and files."""
        with self.session_factory() as session:
            keys = lifecycle.drop_artifacts_before(session, row.id, row.attempt)
            session.commit()
        for key in keys:
            self.storage.delete(key)

    def _watcher(self) -> "Watcher":
        # Started on first use, in the process that runs tasks (after the pool's fork).
        if self._watching is None:
            self._watching = Watcher(self)
            self._watching.start()
        return self._watching

    def _execute(self, row, ctx: context_module.DurableContext, policy: Policy) -> tuple:
        processor = self.registry.create(row.type)
        try:
            try:
                _arm_soft_timeout(policy.soft_timeout)
                params = processor.load_params(row.params)
                result = processor.run(params, ctx)
            finally:
                _arm_soft_timeout(0)
        except processor_errors.Cancelled:
            return ("stale",) if ctx.stale else ("cancelled", "cancelled while running")
        except processor_errors.SoftTimeout:
            return (
                "failed",
                {
                    "type": "SoftTimeout",
                    "retryable": True,
                    "message": f"soft timeout: still running after {policy.soft_timeout:g}s",
                },
                None,
            )
        except processor_errors.ProcessorError as exc:
            return ("failed", lifecycle.describe_error(exc), exc.retry_after)
        except Exception as exc:
            return ("failed", lifecycle.describe_error(exc, traceback.format_exc()), None)
        problem = _result_problem(result)
        if problem:
            return ("failed", {"type": "BadResult", "retryable": False, "message": problem}, None)
        return ("succeeded", result)

    def _record(self, row, ctx, policy: Policy, outcome: tuple) -> str:
        """Write the attempt's outcome, fenced; publish the retry's wake-up after commit."""
        kind = outcome[0]
        if kind == "stale":
            log.warning("task %s attempt %s lost its lease; its outcome is dropped", row.id, row.attempt)
            return "stale"
        if kind == "failed" and self._cancel_seen(ctx):
            kind, outcome = "cancelled", ("cancelled", f"cancelled; the run ended with {outcome[1]['type']}")
        retry_at = None
        try:
            if kind == "succeeded" and self.autocommit_engine is not None:
                with self._hot_connection() as connection:
                    lifecycle.finish(connection, row.id, row.attempt, outcome[1])
                return self._after_record(row, kind, None)
            with self.session_factory() as session:
                if kind == "succeeded":
                    lifecycle.finish(session, row.id, row.attempt, outcome[1])
                elif kind == "cancelled":
                    lifecycle.end_cancelled(session, row.id, row.attempt, outcome[1])
                else:
                    error, retry_after = outcome[1], outcome[2]
                    delay = max(policy.backoff(row.attempt), retry_after or 0)
                    ended = lifecycle.fail(
                        session, row.id, row.attempt, row.max_attempts, error, error["retryable"], delay
                    )
                    retry_at = ended if isinstance(ended, datetime.datetime) else None
                    kind = "retrying" if retry_at else ended or "failed"
                session.commit()
            if kind in ("retrying", "failed"):
                _log_failure(outcome[1], retry_at)
        except errors.StaleAttempt:
            log.warning("task %s attempt %s is stale; outcome %s dropped", row.id, row.attempt, kind)
            return "stale"
        return self._after_record(row, kind, retry_at)

    def _after_record(self, row, kind: str, retry_at: datetime.datetime | None) -> str:
        """Publish the wake-ups an ended attempt calls for; return its outcome."""
        if retry_at is not None:
            self.wake(row.pool, 1, max(0.0, (retry_at - lifecycle.now()).total_seconds()))
        if row.type in self._limited_types() or self._account_limits() is not None:
            # Wake-ups that arrived while the type or account was full were spent; start the
            # next one now.
            self.wake(row.pool, 1, None)
        return kind

    @contextlib.contextmanager
    def _hot_connection(self):
        """This process's autocommit connection, kept open between tasks; dropped on error."""
        if self._hot is None:
            self._hot = self.autocommit_engine.connect()
        try:
            yield self._hot
        except errors.CONNECTION_SPOILED:
            if self._hot is not None:  # not already dropped by a nested use
                self._hot.invalidate()
                self._hot.close()
                self._hot = None
            raise

    def _limited_types(self) -> frozenset[str]:
        self._read_limits()
        return self._limited

    def _account_limits(self) -> sql.AccountLimits | None:
        self._read_limits()
        return self._accounts_limited

    def _read_limits(self) -> None:
        clock = time.monotonic()
        if clock - self._limits_read > LIMITS_CACHE_SECONDS:
            with self.session_factory() as session:
                self._limited = frozenset(control.limits(session))
                default = self.settings["CONVEYOR_ACCOUNT_MAX_RUNNING"]
                self._accounts_limited = control.account_limits(session, default)
            self._limits_read = clock

    @staticmethod
    def _cancel_seen(ctx) -> bool:
        return ctx.cancelled() and not ctx.stale

    def hard_stop(self, row, ctx, policy: Policy, reason: str) -> None:
        """Record the outcome of an attempt that would not stop, then kill it and this process."""
        if reason == "cancel" or self._cancel_seen(ctx):
            outcome = ("cancelled", f"hard-stopped {self.settings['CONVEYOR_CANCEL_GRACE_SECONDS']:g}s after cancel")
        else:
            outcome = (
                "failed",
                {
                    "type": "HardTimeout",
                    "retryable": True,
                    "message": f"hard timeout: killed after {policy.hard_timeout:g}s",
                },
                None,
            )
        try:
            self._record(row, ctx, policy, outcome)
        finally:
            for process in ctx.tracked():
                _kill_group(process.pid)
            log.error(
                "task %s attempt %s hard-stopped (%s); killing worker process %s",
                row.id,
                row.attempt,
                reason,
                os.getpid(),
            )
            health.expect_exit(self.settings["CONVEYOR_VAR_DIR"])
            os.kill(os.getpid(), signal.SIGKILL)


class Watch:
    """One attempt under watch: its clock, the cancel it saw, and who settles its outcome."""

    def __init__(self, row, ctx, policy: Policy):
        self.row, self.ctx, self.policy = row, ctx, policy
        self.started = self.last_check = time.monotonic()
        self.cancel_seen: float | None = None
        self._settled = threading.Lock()
        self._done = False

    def settle(self, write: Callable[[], str]) -> str | None:
        """Write the outcome once: the run's own or the watcher's hard stop, whichever is first."""
        with self._settled:
            if self._done:
                return None
            self._done = True
            return write()


class Watcher(threading.Thread):
    """The process's one watcher thread: renews the watched attempt's lease, relays its cancel,
    and hard-stops it past its limits. It polls instead of being signalled, so starting and
    ending an attempt costs no thread switch (a `noop` task is shorter than one)."""

    TICK = 0.05  # seconds between looks at the current attempt

    def __init__(self, runner: Runner):
        super().__init__(name="conveyor-watcher", daemon=True)
        self.runner = runner
        self.interval = runner.settings["CONVEYOR_HEARTBEAT_SECONDS"]
        self.grace = runner.settings["CONVEYOR_CANCEL_GRACE_SECONDS"]
        self._watch: Watch | None = None

    def watch(self, row, ctx, policy: Policy) -> Watch:
        """Start watching a claimed attempt."""
        self._watch = watch = Watch(row, ctx, policy)
        return watch

    def release(self, watch: Watch) -> None:
        """Stop watching an attempt whose outcome is written."""
        if self._watch is watch:
            self._watch = None

    def run(self) -> None:
        while True:
            time.sleep(min(self.TICK, self.interval))
            watch = self._watch
            if watch is not None and time.monotonic() - watch.last_check >= self.interval:
                watch.last_check = time.monotonic()
                self._check(watch)

    def _check(self, watch: Watch) -> None:
        # Keep renewing the lease during the grace period: the attempt still runs.
        if self._beat(watch) and watch.cancel_seen is None:
            watch.cancel_seen = time.monotonic()
            watch.ctx.cancel()
        clock = time.monotonic()
        if clock - watch.started >= watch.policy.hard_timeout:
            self._hard_stop(watch, "timeout")
        elif watch.cancel_seen is not None and clock - watch.cancel_seen >= self.grace:
            self._hard_stop(watch, "cancel")

    def _beat(self, watch: Watch) -> bool:
        """Renew the lease; return whether the attempt must stop (cancelled or stale)."""
        row, lease = watch.row, self.runner.settings["CONVEYOR_LEASE_SECONDS"]
        try:
            with self.runner.session_factory() as session:
                cancel_asked = lifecycle.heartbeat(session, row.id, row.attempt, lease)
                session.commit()
            return cancel_asked
        except errors.StaleAttempt:
            watch.ctx.stale = True
            return True
        except Exception:  # a database hiccup: keep running, the lease allows a few misses
            log.exception("heartbeat of task %s failed", row.id)
            return False

    def _hard_stop(self, watch: Watch, reason: str) -> None:
        watch.settle(lambda: self.runner.hard_stop(watch.row, watch.ctx, watch.policy, reason))


def _log_failure(error: dict, retry_at: datetime.datetime | None) -> None:
    # Logged with the attempt's task fields (`logs.task`): an operator reads why in the log too.
    then = f"retrying at {retry_at.isoformat()}" if retry_at else "the task failed"
    log.warning("attempt failed with %s: %s; %s", error["type"], error["message"][:500], then)


def _summary(outcomes: collections.Counter) -> str:
    return " ".join(f"{kind}={count}" for kind, count in sorted(outcomes.items())) or "idle"


def _result_problem(result) -> str | None:
    """Return why a processor's result cannot be stored, or None."""
    if not isinstance(result, dict):
        return f"processor returned {type(result).__name__}, not a dict"
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return f"processor returned a result that is not JSON: {exc}"
    return None


class _SoftTimeoutAlarm:
    """SIGALRM handler raising SoftTimeout in the main thread."""

    installed = False

    @classmethod
    def handler(cls, signum, frame):
        raise processor_errors.SoftTimeout()


def _arm_soft_timeout(seconds: float) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signals reach only the main thread; the hard timeout still applies
    if not _SoftTimeoutAlarm.installed:
        signal.signal(signal.SIGALRM, _SoftTimeoutAlarm.handler)
        _SoftTimeoutAlarm.installed = True
    signal.setitimer(signal.ITIMER_REAL, max(0.0, seconds))


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
