"""What `create_app` builds for the queue and hands to services and entry points: the
processor registry, the Celery app, database sessions outside requests, artifact storage and
wake-ups.
"""

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import celery
import flask
import sqlalchemy as sa
from sqlalchemy import orm

from app import storage as storage_module
from app.queue import celery as celery_glue
from app.queue import listen, prepared, runner, tasks
from processors import registry as registry_module

log = logging.getLogger("conveyor.runtime")
MEMO_LIMIT = 10_000


@dataclasses.dataclass
class Runtime:
    """The queue's wiring for one Flask app."""

    app: flask.Flask
    settings: dict
    registry: registry_module.Registry
    celery: celery.Celery
    _memo: dict = dataclasses.field(default_factory=dict, repr=False)
    _memo_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def memo(self, key: tuple, seconds: float, compute: Callable[[], Any]) -> Any:
        """Return `compute()`, reusing a value made in this process less than `seconds` ago.
        For figures that may lag a little (ETA inputs, an authenticated key) on hot paths."""
        if seconds <= 0:
            return compute()
        clock = time.monotonic()
        with self._memo_lock:
            found = self._memo.get(key)
        if found is not None and found[0] > clock:
            return found[1]
        value = compute()
        with self._memo_lock:
            if len(self._memo) > MEMO_LIMIT:  # drop what expired; keys are few in practice
                self._memo = {k: v for k, v in self._memo.items() if v[0] > clock}
            self._memo[key] = (clock + seconds, value)
        return value

    def forget(self, key: tuple) -> None:
        """Drop a memoised value (this process only)."""
        with self._memo_lock:
            self._memo.pop(key, None)

    @functools.cached_property
    def engine(self) -> sa.Engine:
        from app.extensions import db

        with self.app.app_context():
            return db.engine

    @functools.cached_property
    def sessions(self) -> orm.sessionmaker:
        """A session factory for work outside requests (workers, sweeper)."""
        return orm.sessionmaker(bind=self.engine, expire_on_commit=False)

    @functools.cached_property
    def storage(self) -> storage_module.Storage:
        """Where artifacts and uploads are kept (a local directory or S3)."""
        return storage_module.from_settings(self.settings)

    @functools.cached_property
    def autocommit_engine(self) -> sa.Engine | None:
        """PostgreSQL connections whose every statement commits itself, for the single-statement
        moves on a worker's hot path (claim, finish): no BEGIN or COMMIT round trips. Never for
        statements that must hold together. None on SQLite."""
        if self.engine.dialect.name != "postgresql":
            return None
        options = {k: v for k, v in self.settings["SQLALCHEMY_ENGINE_OPTIONS"].items() if k.startswith(("pool", "max"))}
        execution = {prepared.OPTION: bool(self.settings["CONVEYOR_PREPARED_STATEMENTS"])}
        return sa.create_engine(self.engine.url, isolation_level="AUTOCOMMIT", execution_options=execution, **options)

    def close(self) -> None:
        """Close the connections of the autocommit engine, if one was made (the app's own
        engine is Flask-SQLAlchemy's to dispose)."""
        engine = self.__dict__.get("autocommit_engine")
        if engine is not None:
            engine.dispose()

    def wake(self, pool: str, count: int = 1, countdown: float | None = None) -> None:
        """Publish wake-ups to a pool (after the commit that made them due)."""
        celery_glue.wake(self.celery, pool, count, countdown)

    def wake_after_commit(self, pool: str, count: int = 1, countdown: float | None = None) -> bool:
        """Publish wake-ups for tasks already committed. A broker failure is logged, not
        raised: the task is stored, and the sweeper wakes it once the broker is back."""
        try:
            self.wake(pool, count, countdown)
        except Exception:
            log.warning("could not publish a wake-up to pool %s; the sweeper will", pool, exc_info=True)
            return False
        return True

    def nudge_after_commit(self, pool: str, connection: sa.Connection | None = None, notify: bool = True) -> bool:
        """Make sure a worker looks at `pool` soon, for tasks already committed. On PostgreSQL,
        notify one of the pool's workers that wait listening (`queue.listen`), on `connection`
        (an autocommit one) if given; `notify` False skips this (the caller just looked, after
        the same commit). If none waits, publish a wake-up unless `CONVEYOR_WAKE_AHEAD` of them
        already wait on the broker: a worker that takes one runs tasks until the pool is empty
        (`Runner.drain`), so the waiting ones cover this task too. A broker failure is logged,
        not raised, as in `wake_after_commit`."""
        try:
            if notify and self.listening and self._notify(pool, connection):
                return True
            if self.backlog(pool) >= self.settings["CONVEYOR_WAKE_AHEAD"]:
                return True
            self.wake(pool)
        except Exception:
            log.warning("could not wake pool %s; the sweeper will", pool, exc_info=True)
            return False
        return True

    @property
    def listening(self) -> bool:
        """Whether idle workers wait on PostgreSQL notices (see `queue.listen`)."""
        return listen.enabled(self.autocommit_engine, self.settings)

    def notify_waiting(self, pool: str) -> bool:
        """Wake one worker waiting on the pool (PostgreSQL); return whether one was waiting."""
        return self.listening and self._notify(pool, None)

    def _notify(self, pool: str, connection: sa.Connection | None) -> bool:
        if connection is not None:
            return listen.notify(connection, pool)
        with self.autocommit_engine.connect() as own:
            return listen.notify(own, pool)

    def backlog(self, pool: str) -> int:
        """Return the number of wake-ups waiting on the broker for a pool."""
        return celery_glue.backlog(self.celery, pool)

    def make_runner(self) -> runner.Runner:
        """Return a runner for this worker process."""
        return runner.Runner(
            self.sessions,
            self.registry,
            self.settings,
            self.wake_after_commit,
            tasks.worker_name(),
            nudge=self.nudge_after_commit,
            autocommit_engine=self.autocommit_engine,
            storage=self.storage,
        )

    def after_fork(self) -> None:
        """Drop pooled connections inherited from a parent process."""
        for name in ("engine", "autocommit_engine"):
            if self.__dict__.get(name) is not None:
                self.__dict__[name].dispose(close=False)
        # boto3 clients are not fork-safe: each process makes its own storage on first use.
        self.__dict__.pop("storage", None)


def current() -> Runtime:
    """Return the runtime of the current Flask app."""
    return flask.current_app.extensions["conveyor"]
