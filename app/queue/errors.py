"""Errors of the queue core. Services turn them into API errors and CLI messages."""

import psycopg2
import sqlalchemy as sa

# The database went away (restarting, refused, a dropped connection): worth a retry later.
# psycopg2's own come from raw connections (a waiting worker's LISTEN).
DATABASE_AWAY = (sa.exc.OperationalError, sa.exc.InterfaceError, psycopg2.OperationalError, psycopg2.InterfaceError)
# Errors after which a connection is not used again.
CONNECTION_SPOILED = (sa.exc.DBAPIError, psycopg2.Error)


class QueueError(Exception):
    """The queue could not do what was asked."""

    def __init__(self, message: str | None = None):
        super().__init__(message or self.__doc__)


class UnknownTaskType(QueueError):
    """No processor is registered for this task type."""


class InvalidTransition(QueueError):
    """The task is not in a state that allows this."""


class StaleAttempt(QueueError):
    """This attempt is no longer the task's live one; its writes are refused."""


class QuotaExceeded(QueueError):
    """The account is at one of its quotas; the task was not stored."""

    def __init__(self, quota: str, limit: int, current: int, message: str | None = None):
        super().__init__(message or f"the account has {current} waiting tasks, its {quota} quota is {limit}")
        self.quota, self.limit, self.current = quota, limit, current
