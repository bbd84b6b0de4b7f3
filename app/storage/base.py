"""The `Storage` contract every backend implements, and the key rules they share.

A key is a relative POSIX path such as `tasks/<task_id>/<attempt>/<name>` or
`uploads/<account>/<id>/<name>`: no leading `/`, no empty, `.` or `..` parts, no backslashes
or control characters, each part at most 255 bytes and the key at most 1024 (S3's limit).
A prefix follows the same rules and names a folder: `tasks/<id>/1` covers `tasks/<id>/1/a`
but not `tasks/<id>/10/a`, so deleting one attempt never touches another.

Every backend stores whole objects atomically: a reader sees the old bytes or the new ones,
never part of a write.
"""

import abc
import io
import os
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from app.storage import errors

CHUNK_SIZE = 64 * 1024
MAX_KEY_BYTES = 1024
MAX_PART_BYTES = 255
# Local writes go to a hidden temporary file next to their target; keys may not use the name.
TEMP_PREFIX = ".partial-"


def check_key(key: str) -> str:
    """Return `key` if it follows the key rules; raise ValueError saying which one it breaks."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"a storage key must be a non-empty string, not {key!r}")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ValueError(f"storage key is longer than {MAX_KEY_BYTES} bytes: {key[:80]!r}...")
    if key.startswith("/") or "\\" in key or any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise ValueError(f"storage key must be a relative POSIX path without control characters: {key!r}")
    for part in key.split("/"):
        _check_part(key, part)
    return key


def _check_part(key: str, part: str) -> None:
    if part in ("", ".", ".."):
        raise ValueError(f"storage key has an empty, '.' or '..' part: {key!r}")
    if part.startswith(TEMP_PREFIX):
        raise ValueError(f"storage key parts may not start with {TEMP_PREFIX!r}: {key!r}")
    if len(part.encode("utf-8", "surrogatepass")) > MAX_PART_BYTES:
        raise ValueError(f"storage key has a part longer than {MAX_PART_BYTES} bytes: {key!r}")


def check_prefix(prefix: str) -> str:
    """Return `prefix` without a trailing slash if it follows the key rules; else ValueError."""
    if isinstance(prefix, str) and prefix.endswith("/"):
        prefix = prefix[:-1]
    return check_key(prefix)


def check_range(start: int, end: int | None) -> None:
    """Raise ValueError unless `start`..`end` (inclusive) is a possible byte range."""
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"bad byte range {start}-{'' if end is None else end}")


class Body(Protocol):
    """What `Chunks` reads from: an open file or an HTTP response body."""

    def read(self, size: int) -> bytes: ...

    def close(self) -> None: ...


class Chunks(Iterator[bytes]):
    """The bytes of one read, in chunks. Reading to the end or `close()` releases the file or
    connection; callers that stop early must call `close()` (a WSGI server does)."""

    def __init__(self, body: Body | None, length: int, chunk_size: int = CHUNK_SIZE):
        self._body = io.BytesIO() if body is None else body
        self._left = length
        self._chunk_size = chunk_size
        if length <= 0:
            self.close()

    def __next__(self) -> bytes:
        if self._left <= 0:
            raise StopIteration
        data = self._body.read(min(self._chunk_size, self._left))
        if not data:
            left = self._left
            self.close()
            raise errors.StorageError(f"the object ended {left} bytes early")
        self._left -= len(data)
        if self._left <= 0:
            self.close()
        return data

    def close(self) -> None:
        """Release the file or connection; further iteration yields nothing."""
        self._left = 0
        self._body.close()


class Storage(abc.ABC):
    """Where task artifacts and uploads live: a local folder or an S3 bucket.

    Keys follow `check_key`; a bad key raises ValueError before any I/O. Failures of the store
    itself raise `errors.StorageError`; an absent key raises `errors.Missing` where noted.
    Errors about the caller's own local files (a source to upload, a destination to fetch to)
    are the usual OSErrors.
    """

    @abc.abstractmethod
    def put_file(self, key: str, path: str | os.PathLike, mime: str | None = None) -> int:
        """Store the local file at `path` under `key`, replacing any object there.

        Args:
            key: where to store it.
            path: the local file to copy; it is left in place.
            mime: the content type, kept where the backend can keep one (S3).

        Returns:
            The number of bytes stored.
        """

    @abc.abstractmethod
    def put_stream(self, key: str, stream: BinaryIO, mime: str | None = None, max_bytes: int | None = None) -> int:
        """Store what a binary file-like object yields under `key`, read in chunks.

        Args:
            key: where to store it.
            stream: anything with `read(size) -> bytes`; read to its end, never seeked.
            mime: the content type, kept where the backend can keep one (S3).
            max_bytes: the most bytes allowed. Past it, raise `errors.TooLarge` and store
                nothing: an object already under `key` stays as it was.

        Returns:
            The number of bytes stored.
        """

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """Return the size in bytes of the object under `key`; raise `errors.Missing` if none."""

    @abc.abstractmethod
    def read_range(self, key: str, start: int = 0, end: int | None = None, chunk_size: int = CHUNK_SIZE) -> Chunks:
        """Return the bytes `start`..`end` of the object under `key`, in chunks.

        Args:
            key: the object to read.
            start: the first byte, from 0.
            end: the last byte, inclusive as in an HTTP Range; None or past the end means up
                to the last byte. A `start` at or past the end yields nothing.
            chunk_size: the most bytes per chunk.

        Raises `errors.Missing` at the call, not at the first chunk, so an HTTP view can still
        answer 404; ValueError if `start` < 0 or `end` < `start`.
        """

    @abc.abstractmethod
    def fetch(self, key: str, dest_path: str | os.PathLike) -> int:
        """Copy the object under `key` to the local file `dest_path`; return its size.

        Raises `errors.Missing` if there is no such object.
        """

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete the object under `key`; an absent object is not an error."""

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under the folder `prefix`; return how many were deleted."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Tell whether an object is stored under `key`."""

    @abc.abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Return the keys under the folder `prefix`, sorted."""
