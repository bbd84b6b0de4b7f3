"""The local-folder backend: one file per key under a root folder (by default
`var/artifacts`), for a single machine or a shared mount.

Writes go to a temporary file in the target's folder, are flushed to disk, then renamed over
the target, so a reader sees the old file or the new one. Paths are resolved and must stay
inside the root, even through symlinks.
"""

import contextlib
import os
import pathlib
import secrets
import shutil
from collections.abc import Iterator
from typing import BinaryIO

from app.storage import base, errors

COPY_CHUNK = 1024 * 1024


class LocalStorage(base.Storage):
    """Objects as files under `root`; the MIME type is not kept (the database row has it)."""

    def __init__(self, root: str | os.PathLike):
        self.root = pathlib.Path(root).absolute()

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def put_file(self, key: str, path: str | os.PathLike, mime: str | None = None) -> int:
        """Copy the file at `path` under `key`; return its size."""
        target = self._path(key)
        with open(path, "rb") as source:
            return self._write(key, target, source, None)

    def put_stream(self, key: str, stream: BinaryIO, mime: str | None = None, max_bytes: int | None = None) -> int:
        """Store `stream` under `key`; raise TooLarge past `max_bytes`; return the size."""
        return self._write(key, self._path(key), stream, max_bytes)

    def size(self, key: str) -> int:
        """Return the size of the object under `key`."""
        path = self._path(key)
        with self._errors(key):
            return _file_stat(path).st_size

    def read_range(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = base.CHUNK_SIZE
    ) -> base.Chunks:
        """Return the bytes `start`..`end` (inclusive) of the object under `key`."""
        path = self._path(key)
        base.check_range(start, end)
        with self._errors(key):
            handle = open(path, "rb")  # noqa: SIM115 - Chunks closes it
        size = os.fstat(handle.fileno()).st_size
        last = size - 1 if end is None else min(end, size - 1)
        handle.seek(min(start, size))
        return base.Chunks(handle, last - start + 1, chunk_size)

    def fetch(self, key: str, dest_path: str | os.PathLike) -> int:
        """Copy the object under `key` to `dest_path`; return its size."""
        path = self._path(key)
        with self._errors(key):
            source = open(path, "rb")  # noqa: SIM115 - closed below
        with source, open(dest_path, "wb") as dest:
            shutil.copyfileobj(source, dest, COPY_CHUNK)
            return dest.tell()

    def delete(self, key: str) -> None:
        """Delete the object under `key`, if any, and folders left empty."""
        path = self._path(key)
        with self._errors(key):
            path.unlink(missing_ok=True)
        self._prune(path.parent)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under the folder `prefix`; return how many."""
        top = self._path(base.check_prefix(prefix))
        count = 0
        with self._errors(prefix):
            for folder, _dirs, names in os.walk(top, topdown=False):
                count += sum(_unlink(pathlib.Path(folder, name)) for name in names)
                _rmdir(pathlib.Path(folder))
        self._prune(top.parent)
        return count

    def exists(self, key: str) -> bool:
        """Tell whether an object is stored under `key`."""
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        """Return the keys under the folder `prefix`, sorted."""
        top = self._path(base.check_prefix(prefix))
        with self._errors(prefix):
            keys = [
                pathlib.Path(folder, name).relative_to(self.root).as_posix()
                for folder, _dirs, names in os.walk(top)
                for name in names
                if not name.startswith(base.TEMP_PREFIX)
            ]
        return sorted(keys)

    def _path(self, key: str) -> pathlib.Path:
        """Return the file for `key`, refusing any path that leaves the root."""
        path = self.root / base.check_key(key)
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key {key!r} leads outside {self.root}")
        return path

    def _write(self, key: str, target: pathlib.Path, source: BinaryIO, max_bytes: int | None) -> int:
        with self._errors(key, missing=False):
            temp, handle = _open_temp(target.parent)
            try:
                with handle:
                    size = _copy(key, source, handle, max_bytes)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp, target)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
        return size

    def _prune(self, folder: pathlib.Path) -> None:
        """Remove `folder` and its parents up to the root while they are empty."""
        while folder != self.root and folder.is_relative_to(self.root) and _rmdir(folder):
            folder = folder.parent

    @contextlib.contextmanager
    def _errors(self, key: str, missing: bool = True) -> Iterator[None]:
        """Turn file errors on the store's side into Missing (if `missing`: a read) or a
        StorageError naming the key."""
        try:
            yield
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            if not missing:
                raise errors.StorageError(f"local storage could not write {key!r} under {self.root}: {exc}") from exc
            raise errors.Missing(key) from exc
        except OSError as exc:
            raise errors.StorageError(f"local storage failed on {key!r} under {self.root}: {exc}") from exc


def _file_stat(path: pathlib.Path) -> os.stat_result:
    stat = path.stat()
    if not path.is_file():
        raise IsADirectoryError(path)
    return stat


def _open_temp(folder: pathlib.Path) -> tuple[pathlib.Path, BinaryIO]:
    """Create a temporary file in `folder` (and the folder); the umask sets its mode."""
    tries = 3
    while True:
        tries -= 1
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f"{base.TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            return temp, open(temp, "xb")
        except FileNotFoundError:
            # A concurrent delete pruned the folder between mkdir and open: make it again.
            if not tries:
                raise


def _copy(key: str, source: BinaryIO, dest: BinaryIO, max_bytes: int | None) -> int:
    size = 0
    while chunk := source.read(COPY_CHUNK):
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise errors.TooLarge(key, max_bytes)
        dest.write(chunk)
    return size


def _unlink(path: pathlib.Path) -> bool:
    """Delete a file; return whether it was an object (not a temporary file) that existed."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return not path.name.startswith(base.TEMP_PREFIX)


def _rmdir(folder: pathlib.Path) -> bool:
    """Remove `folder` if it is empty; return whether it is gone."""
    try:
        folder.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True
