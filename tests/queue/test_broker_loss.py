"""Durable on accept: tasks committed to PostgreSQL all run even if Redis loses every message."""

import redis

from app.services import tasks as task_service
from tests.queue import helpers


def test_all_tasks_complete_after_redis_is_flushed(backend, app, account, processes, settings):
    task_ids = [task_service.submit("noop", {"echo": n}, account_id=account.id)[0].id for n in range(100)]
    client = redis.Redis.from_url(settings["BROKER_URL"])
    assert client.llen("cpu") == 100
    client.flushdb()
    processes.worker("cpu", concurrency=2)
    processes.sweeper()
    helpers.wait_all(task_ids, timeout=60)
    assert sorted(helpers.task(t).result["echo"] for t in task_ids) == list(range(100))
