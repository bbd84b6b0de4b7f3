"""The one Celery task, thin as a view: it takes a pool name, and the runner claims and runs
the best eligible tasks there until the pool is empty (or its time slice ends), then lingers
listening for more on PostgreSQL (`Runner.serve`). A lost or duplicate message is harmless:
the database decides what runs. Database outages become Celery retries of the wake-up.

A warm shutdown must not wait out a lingering pool process: the worker's main process opens
a pipe before it forks the pool and writes to it when the shutdown begins; a lingering process
watches the pipe and returns at once.
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
    stop_pipe: dict = {}

    @signals.worker_init.connect(weak=False)
    def open_stop_pipe(**_):
        stop_pipe["read"], stop_pipe["write"] = os.pipe()

    @signals.worker_shutting_down.connect(weak=False)
    def signal_stop(**_):
        if "write" in stop_pipe:
            os.write(stop_pipe["write"], b"x")  # never read: it stays readable for every process

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
        return state["runner"].serve(pool, stop_pipe.get("read"))


def worker_name() -> str:
    """Return this process's name as recorded on the tasks it claims."""
    return f"{socket.gethostname()}:{os.getpid()}"
