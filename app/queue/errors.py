"""Errors of the queue core. Services turn them into API errors and CLI messages."""


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
