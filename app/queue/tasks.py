"""The one Celery task, thin as a view: it takes a pool name, and the runner claims and runs
the best eligible tasks there until the pool is empty (or its time slice ends). A lost or
duplicate message is harmless: the database decides what runs. Database outages become
Celery retries of the wake-up.
"""

import os
import socket

import celery
import sqlalchemy as sa
from celery import signals

from app.queue import celery as celery_glue


def register(app: celery.Celery, make_runner, after_fork) -> None:
    """Register the wake task on `app`; `make_runner()` builds this process's runner and
    `after_fork()` drops database connections a forked pool process inherited."""
    state: dict = {}

    @signals.worker_process_init.connect(weak=False)
    def reset_after_fork(**_):
        state.clear()
        after_fork()

    @app.task(
        name=celery_glue.WAKE_TASK,
        ignore_result=True,
        acks_late=True,
        autoretry_for=(sa.exc.OperationalError,),
        retry_backoff=True,
        max_retries=None,
    )
    def wake(pool: str) -> str:
        if "runner" not in state:
            state["runner"] = make_runner()
        return state["runner"].drain(pool)


def worker_name() -> str:
    """Return this process's name as recorded on the tasks it claims."""
    return f"{socket.gethostname()}:{os.getpid()}"
