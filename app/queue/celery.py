"""Celery glue: build the Celery app from Conveyor's settings, publish wake-ups, and read a
pool's broker backlog. Pools are Celery queues named after them (`cpu`, `io`).
"""

import pathlib

import celery
import kombu

import celeryconfig
from processors.policy import POOLS

WAKE_TASK = "conveyor.wake"


# How often a worker on the filesystem broker looks for new messages.
FILESYSTEM_POLL_SECONDS = 0.1


def create(settings: dict) -> celery.Celery:
    """Return a Celery app configured from `settings` (broker, queues, reliability)."""
    app = celery.Celery("conveyor", set_as_current=False)
    app.config_from_object(celeryconfig)
    # kombu warns about a filesystem:// URL without a host; the host means nothing there.
    url = settings["BROKER_URL"]
    app.conf.broker_url = "filesystem://localhost//" if url == "filesystem://" else url
    app.conf.task_queues = [kombu.Queue(pool, routing_key=pool) for pool in POOLS]
    if settings["BROKER_URL"].startswith("filesystem:"):
        folder = pathlib.Path(settings["CONVEYOR_VAR_DIR"]) / "broker"
        for sub in ("processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        app.conf.broker_transport_options = {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
            "control_folder": str(folder / "control"),
            # kombu looks in the folder once a second by default; a wake-up would wait up to
            # that long. A listing of a near-empty folder costs microseconds.
            "polling_interval": FILESYSTEM_POLL_SECONDS,
        }
    return app


def wake(app: celery.Celery, pool: str, count: int = 1, countdown: float | None = None) -> None:
    """Publish `count` wake-ups to `pool`; each lets one worker claim one task there."""
    with app.producer_or_acquire() as producer:
        for _ in range(count):
            app.send_task(
                WAKE_TASK, args=[pool], queue=pool, routing_key=pool, countdown=countdown or None, producer=producer
            )


def backlog(app: celery.Celery, pool: str) -> int:
    """Return how many wake-ups wait on the broker in `pool` (not those held by workers)."""
    with app.connection_or_acquire() as connection:  # from the pool: no connect per call
        channel = connection.default_channel
        if connection.transport.driver_type == "redis":
            # kombu keeps a Redis queue's messages in a list named after it (wake-ups carry no
            # message priority); one LLEN costs a tenth of kombu's generic queue_declare.
            return channel.client.llen(pool)
        try:
            return channel.queue_declare(queue=pool, passive=True).message_count
        except Exception:  # the queue does not exist yet: nothing was ever published there
            return 0
