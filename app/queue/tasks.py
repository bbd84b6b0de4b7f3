"""The one Celery task, thin as a view: it takes a pool name, and the runner claims and runs
the best eligible tasks there until the pool is empty (or its time slice ends), then lingers
listening for more on PostgreSQL (`Runner.serve`). A lost or duplicate message is harmless:
the database decides what runs. Database outages become Celery retries of the wake-up.

The worker's main process writes its heartbeat (`health`) every few seconds from Celery's event
loop while it consumes: a worker hung, cut from the broker or without pool goes stale.

A warm shutdown must not wait out a lingering pool process: the worker's main process opens
a pipe before it forks the pool and writes to it when the shutdown begins; a lingering process
watches the pipe and returns at once.
"""

import contextlib
import logging
import os
import signal
import socket

import celery
from celery import bootsteps, signals

from app.queue import celery as celery_glue
from app.queue import errors as queue_errors
from app.queue import health

log = logging.getLogger("conveyor.worker")


def register(app: celery.Celery, make_runner, after_fork) -> None:
    """Register the wake task on `app`; `make_runner()` builds this process's runner and
    `after_fork()` drops database connections a forked pool process inherited."""
    state: dict = {}
    stop_pipe: dict = {}

    def open_stop_pipe(**_):
        stop_pipe["read"], stop_pipe["write"] = os.pipe()

    def signal_stop(**_):
        if "write" in stop_pipe:
            os.write(stop_pipe["write"], b"x")  # never read: it stays readable for every process

    def reset_after_fork(**_):
        state.clear()
        after_fork()

    # Celery's signals are process-wide: they hold the receivers weakly and `app` holds them,
    # so an app that is dropped (a test's, say) takes its receivers along instead of leaking.
    app.conveyor_receivers = (open_stop_pipe, signal_stop, reset_after_fork)
    signals.worker_init.connect(open_stop_pipe)
    signals.worker_shutting_down.connect(signal_stop)
    signals.worker_process_init.connect(reset_after_fork)

    @app.task(
        name=celery_glue.WAKE_TASK,
        shared=False,  # a shared task is kept process-wide, and with it this app
        ignore_result=True,
        acks_late=True,
        autoretry_for=queue_errors.DATABASE_AWAY,
        retry_backoff=True,
        retry_backoff_max=5,  # the sweeper wakes the pools too, once the database is back
        max_retries=None,
    )
    def wake(pool: str) -> str:
        if "runner" not in state:
            state["runner"] = make_runner()
        return state["runner"].serve(pool, stop_pipe.get("read"))


def worker_name() -> str:
    """Return this process's name as recorded on the tasks it claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


def beat_health(app: celery.Celery, var_dir: str, pool: str) -> None:
    """Have the worker's main process write the `worker-<pool>` heartbeat while it consumes
    (a consumer step: it stops when the broker connection is lost, starts again after).

    It also watches the pool. Where Celery runs without its event loop (the filesystem broker
    of the embedded default), pool processes share one queue and its lock: one killed while
    holding it leaves the others blocked for good. So there a lost pool process ends the
    worker with `EXIT_POOL_LOST` (its pool killed; leases of its tasks expire and the sweeper
    rescues them), for `manage.py run` or a process manager to start a fresh one. With the
    event loop (Redis, AMQP) each process has its own queues and Celery replaces a lost one."""
    role = f"worker-{pool}"
    seen: set[int] = set()  # the pool's processes at the last look

    class PoolStarted(bootsteps.StartStopStep):
        requires = {"celery.worker.components:Pool"}

        def start(self, worker):
            seen.update(worker.pool.info.get("processes") or [])

    class Heartbeat(bootsteps.StartStopStep):
        requires = {"celery.worker.consumer.tasks:Tasks"}

        def start(self, consumer):
            self.beat(consumer)
            self.timer = consumer.timer.call_repeatedly(health.BEAT_SECONDS, self.beat, (consumer,))

        def beat(self, consumer):
            processes = set(consumer.pool.info.get("processes") or [])
            lost = seen - processes
            lost -= health.expected_exits(var_dir, lost)  # hard stops end their own process
            if lost and not consumer.controller.use_eventloop:
                _pool_lost(lost, processes)
            seen.clear()
            seen.update(processes)
            health.beat(var_dir, role, state="consuming", processes=len(processes), ok=bool(processes))

        def stop(self, consumer):
            if getattr(self, "timer", None) is not None:
                self.timer.cancel()
                self.timer = None

        def shutdown(self, consumer):
            self.stop(consumer)
            health.remove(var_dir, role)

    app.steps["worker"].add(PoolStarted)
    app.steps["consumer"].add(Heartbeat)


# Exit code of a worker whose pool lost a process it cannot recover from (EX_SOFTWARE).
EXIT_POOL_LOST = 70


def _pool_lost(lost: set[int], left: set[int]) -> None:
    log.critical(
        "pool process(es) %s lost; the pool's shared queue may be locked for good: exiting (code %d) to be restarted",
        sorted(lost),
        EXIT_POOL_LOST,
    )
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    logging.shutdown()
    os._exit(EXIT_POOL_LOST)
