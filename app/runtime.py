"""What `create_app` builds for the queue and hands to services and entry points: the
processor registry, the Celery app, database sessions outside requests, and wake-ups.
"""

import dataclasses
import functools

import celery
import flask
import sqlalchemy as sa
from sqlalchemy import orm

from app.queue import celery as celery_glue
from app.queue import runner, tasks
from processors import registry as registry_module


@dataclasses.dataclass
class Runtime:
    """The queue's wiring for one Flask app."""

    app: flask.Flask
    settings: dict
    registry: registry_module.Registry
    celery: celery.Celery

    @functools.cached_property
    def engine(self) -> sa.Engine:
        from app.extensions import db
        with self.app.app_context():
            return db.engine

    @functools.cached_property
    def sessions(self) -> orm.sessionmaker:
        """A session factory for work outside requests (workers, sweeper)."""
        return orm.sessionmaker(bind=self.engine, expire_on_commit=False)

    def wake(self, pool: str, count: int = 1, countdown: float | None = None) -> None:
        """Publish wake-ups to a pool (after the commit that made them due)."""
        celery_glue.wake(self.celery, pool, count, countdown)

    def backlog(self, pool: str) -> int:
        """Return the number of wake-ups waiting on the broker for a pool."""
        return celery_glue.backlog(self.celery, pool)

    def make_runner(self) -> runner.Runner:
        """Return a runner for this worker process."""
        return runner.Runner(self.sessions, self.registry, self.settings, self.wake, tasks.worker_name())

    def after_fork(self) -> None:
        """Drop pooled connections inherited from a parent process."""
        if "engine" in self.__dict__:
            self.engine.dispose(close=False)


def current() -> Runtime:
    """Return the runtime of the current Flask app."""
    return flask.current_app.extensions["conveyor"]
