"""Errors of the use cases, each mapped to one HTTP status by the API and one exit by the CLI."""


class ServiceError(Exception):
    """The request could not be served."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str | None = None, errors: dict | None = None, **extra):
        super().__init__(message or self.__doc__)
        self.message = message or self.__doc__
        self.errors = errors or {}
        self.extra = extra  # more fields of the answer, e.g. a quota's name and limit


class NotFound(ServiceError):
    """No such task in this account."""

    status = 404
    code = "not_found"


class Invalid(ServiceError):
    """The request has invalid fields."""

    status = 422
    code = "invalid"


class Conflict(ServiceError):
    """The task is not in a state that allows this."""

    status = 409
    code = "conflict"


class Unavailable(ServiceError):
    """This task type (with these params) cannot run here: a provider it needs is not configured."""

    status = 409
    code = "unavailable"


class TooLarge(ServiceError):
    """The upload is larger than the limit."""

    status = 413
    code = "too_large"


class UnsupportedMedia(ServiceError):
    """The file is no kind this platform accepts."""

    status = 415
    code = "unsupported_media_type"


def nested(flat: dict[str, list[str]]) -> dict:
    """Return field errors by dotted path (`source.url`) nested as marshmallow nests them
    (`{"source": {"url": [...]}}`)."""
    found: dict = {}
    for path, messages in flat.items():
        node = found
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = messages
    return found


class Forbidden(ServiceError):
    """Your role does not allow this."""

    status = 403
    code = "forbidden"


class QuotaExceeded(ServiceError):
    """The account is at a quota; nothing was stored. `extra` names the quota and its limit."""

    status = 429
    code = "quota"


class DatabaseUnavailable(ServiceError):
    """The database is unavailable (restarting or unreachable); try again in a few seconds."""

    status = 503
    code = "database_unavailable"
    retry_after = 2


def database_down(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached now (refused, restarting, a dropped
    connection): the caller should answer `DatabaseUnavailable`, not an internal error."""
    import sqlalchemy as sa

    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated
