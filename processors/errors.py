"""Errors and control signals a processor raises, and the runner understands.

Errors say whether another attempt could help: a `RetryableError` (network, 5xx, rate
limit) is retried by the type's policy, a `PermanentError` (bad input, content policy)
fails the task at once. Any other exception escaping `run` is treated as retryable and
recorded with its traceback.

Control signals are not errors: `Cancelled` and `SoftTimeout` derive from BaseException so
that a processor's broad `except Exception` cannot swallow them by accident.
"""


class ProcessorError(Exception):
    """A processor failed."""

    retryable = True

    def __init__(self, message: str | None = None, *, retry_after: float | None = None):
        super().__init__(message or self.__doc__)
        self.retry_after = retry_after


class RetryableError(ProcessorError):
    """A temporary failure; another attempt may succeed."""

    retryable = True


class PermanentError(ProcessorError):
    """A failure no retry can fix."""

    retryable = False


class InvalidParams(PermanentError):
    """The task's params do not match the type's schema."""

    def __init__(self, errors: dict):
        super().__init__(f"invalid params: {errors}")
        self.errors = errors


class ControlSignal(BaseException):
    """Base of the signals that stop a run without it having failed on its own."""


class Cancelled(ControlSignal):
    """The task was cancelled, or this attempt lost its lease; stop now."""


class SoftTimeout(ControlSignal):
    """The type's soft timeout passed: clean up and stop before the hard timeout kills the run."""


class RegistryError(Exception):
    """A processor could not be registered."""
