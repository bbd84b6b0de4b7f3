"""Celery settings for Conveyor's workers: reliable delivery, one message at a time.

PostgreSQL owns task state, order and control; Celery only delivers wake-ups and runs code.
So messages are acknowledged after the run (`task_acks_late`), a worker takes one at a time
(`worker_prefetch_multiplier = 1`), a killed pool process gives its message back
(`task_reject_on_worker_lost`), and results are not stored (they live in `tasks`).
The broker URL and queues are set from Conveyor's settings in `app.queue.celery`.
"""

task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
task_serializer = "json"
accept_content = ["json"]
task_ignore_result = True
task_store_errors_even_if_ignored = False
result_backend = None
task_default_queue = "cpu"
worker_hijack_root_logger = False
worker_send_task_events = False
task_send_sent_event = False
broker_connection_retry_on_startup = True
broker_pool_limit = 10
# Redis: a message held by a worker that died is redelivered after this long. Conveyor does
# not wait for it: the task's own lease expires in seconds and the sweeper wakes it again.
broker_transport_options = {"visibility_timeout": 3600}
