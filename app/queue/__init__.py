"""The queue core, free of Flask requests: named SQL (`sql`), the state machine (`states`),
task lifecycle (`lifecycle`: submit, claim, heartbeat, finish, retry, cancel), durable controls
(`control`), the runner that executes a claimed task (`runner`), the sweeper (`sweeper`), and
the Celery glue (`celery`, `tasks`).

Every function takes the SQLAlchemy session it works in and never commits: the caller (a
request, a CLI command or a worker job) owns the transaction.
"""
