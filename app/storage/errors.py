"""Errors the artifact store raises: `StorageError` is the base, `Missing` says no object is
stored under a key, `TooLarge` says a stream passed its size limit. A key that breaks the key
rules is a caller's bug and raises a plain `ValueError`.
"""


class StorageError(Exception):
    """The artifact store failed."""

    def __init__(self, message: str | None = None):
        super().__init__(message or self.__doc__)


class Missing(StorageError, LookupError):
    """No object is stored under this key."""

    def __init__(self, key: str):
        super().__init__(f"no object is stored under {key!r}")
        self.key = key


class TooLarge(StorageError):
    """The stream is larger than its limit; nothing was stored."""

    def __init__(self, key: str, max_bytes: int):
        super().__init__(f"{key!r} is larger than {max_bytes} bytes; nothing was stored")
        self.key = key
        self.max_bytes = max_bytes
