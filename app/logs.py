"""Log output of every Conveyor process (API, workers, sweeper, `manage.py run`): plain text
lines, or with CONVEYOR_LOG_FORMAT=json one JSON object a line (python-json-logger) with
`time`, `level`, `logger`, `message`, the record's extra fields, and, for anything logged while
a task's attempt runs in this thread, its `task_id`, `type`, `attempt` and `account`.

`configure` installs one handler on the root logger (calling it again replaces it); `task`
binds an attempt to what its thread logs.
"""

import contextlib
import contextvars
import logging
import sys
import warnings
from collections.abc import Iterator

from pythonjsonlogger import json as jsonlog

FORMATS = ("text", "json")
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The fields a JSON line starts with (after `time`), renamed from the record's attribute names.
RENAMED = {"levelname": "level", "name": "logger"}
_TASK: contextvars.ContextVar[dict | None] = contextvars.ContextVar("conveyor_task", default=None)


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    """Send every logger's records to stderr in `log_format` ("text" or "json")."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_formatter(log_format))
    handler.addFilter(_add_task)
    handler.conveyor = True  # marks the handler a later call replaces
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "conveyor", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    _quiet_known_warnings()


def _formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        # `time`: ISO 8601 in UTC with milliseconds.
        return jsonlog.JsonFormatter(
            "%(levelname)s %(name)s %(message)s", rename_fields=RENAMED, timestamp="time", json_ensure_ascii=False
        )
    return logging.Formatter(TEXT)


def _add_task(record: logging.LogRecord) -> bool:
    # Fields already on the record (a processor's own `task_id`) are kept as they are.
    for key, value in (_TASK.get() or {}).items():
        if not hasattr(record, key):
            setattr(record, key, value)
    return True


def _quiet_known_warnings() -> None:
    # Celery warns on every start of a worker run as root; containers commonly run as root, and
    # Conveyor's workers accept only JSON messages (the warning is about pickle). Said once in
    # docs/operations.md instead.
    warnings.filterwarnings("ignore", message="You're running the worker with superuser privileges")


@contextlib.contextmanager
def task(task_id, type: str, attempt: int, account) -> Iterator[None]:
    """Tag what this thread logs with the attempt's task, type, attempt number and account."""
    token = _TASK.set({"task_id": str(task_id), "type": type, "attempt": attempt, "account": str(account)})
    try:
        yield
    finally:
        _TASK.reset(token)
