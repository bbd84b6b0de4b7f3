"""A process-wide exclusive lock for the one sweeper: a PostgreSQL session advisory lock, or a
file lock beside the SQLite database (the embedded default runs on one machine).
"""

import fcntl
import pathlib

import sqlalchemy as sa

SWEEPER_KEY = 0x636F6E76  # "conv": the advisory lock id the sweeper holds


class Lock:
    """Try to hold an exclusive lock; `acquire` returns False if another holder has it."""

    def __init__(self, engine: sa.Engine, var_dir: str, key: int = SWEEPER_KEY):
        self.engine = engine
        self.key = key
        self.path = pathlib.Path(var_dir) / f"lock-{key:x}"
        self._connection: sa.Connection | None = None
        self._file = None

    def acquire(self) -> bool:
        """Take the lock if free; return whether this process holds it now."""
        if self.held:
            return True
        if self.engine.dialect.name == "postgresql":
            connection = self.engine.connect()
            if connection.scalar(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}):
                connection.commit()
                self._connection = connection
                return True
            connection.close()
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "w")  # noqa: SIM115 - held open for as long as the lock is
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    @property
    def held(self) -> bool:
        """Tell whether this process holds the lock."""
        return self._connection is not None or self._file is not None

    def check(self) -> bool:
        """Tell whether the lock is still held (its database connection may have dropped)."""
        if self._connection is None:
            return self._file is not None
        try:
            self._connection.scalar(sa.text("SELECT 1"))
            self._connection.commit()
            return True
        except sa.exc.SQLAlchemyError:  # the connection dropped, and the lock with it
            self.release()
            return False

    def release(self) -> None:
        """Let the lock go."""
        if self._connection is not None:
            try:
                self._connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                self._connection.commit()
            except sa.exc.SQLAlchemyError:
                pass  # the connection is gone, and the lock with it
            try:
                self._connection.close()
            except sa.exc.SQLAlchemyError:
                pass
            finally:
                self._connection = None
        if self._file is not None:
            self._file.close()
            self._file = None
