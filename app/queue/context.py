"""The durable processor context: progress, logs and artifacts of the live attempt become
rows and events, each write fenced by the attempt number.
"""

import shutil
import time
import uuid

import sqlalchemy as sa
from sqlalchemy import orm

from app import models
from app.queue import errors, lifecycle
from processors import base

# At most this many progress writes a second; a new stage and 100% are always written.
PROGRESS_WRITES_PER_SECOND = 4


class DurableContext(base.Context):
    """A processor context backed by the database."""

    def __init__(
        self,
        session_factory: orm.sessionmaker,
        task_id: uuid.UUID,
        attempt: int,
        workdir,
        artifact_dir,
        settings: dict | None = None,
    ):
        super().__init__(str(task_id), attempt, workdir, settings)
        self.id = task_id
        self.stale = False
        self._session_factory = session_factory
        self._opened: orm.Session | None = None
        self._artifact_dir = artifact_dir
        self._last_write = 0.0
        self._last_stage: str | None = None

    def close(self) -> None:
        """Release the context's database session."""
        if self._opened is not None:
            self._opened.close()

    @property
    def _session(self) -> orm.Session:
        # Opened on the first write: a task that reports nothing costs no session.
        if self._opened is None:
            self._opened = self._session_factory()
        return self._opened

    def _write(self, operation, *args) -> bool:
        try:
            cancel_asked = operation(self._session, self.id, self.attempt, *args)
            self._session.commit()
        except errors.StaleAttempt:
            self._session.rollback()
            self.stale = True
            self.cancel()
            return False
        except BaseException:
            self._session.rollback()
            raise
        if cancel_asked:
            self.cancel()
        return True

    def _record_progress(self, percent: float, stage: str | None, message: str | None) -> None:
        clock = time.monotonic()
        urgent = stage != self._last_stage or percent >= 100
        if not urgent and clock - self._last_write < 1 / PROGRESS_WRITES_PER_SECOND:
            return
        self._last_write, self._last_stage = clock, stage
        self._write(lifecycle.record_progress, percent, stage, (message or "")[:500] or None)

    def _record_log(self, message: str, data: dict) -> None:
        self._write(_fenced_event, "log", {"message": message[:2000], **data})

    def _record_artifact(self, item: dict) -> dict:
        self.check()  # a stale or cancelled attempt stores nothing
        target_dir = self._artifact_dir / str(self.id) / str(self.attempt)
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / item["name"]
        shutil.copyfile(item["path"], target)
        artifact = models.Artifact(
            id=uuid.uuid4(),
            task_id=self.id,
            attempt=self.attempt,
            kind=item["kind"],
            name=item["name"],
            storage_key=str(target.relative_to(self._artifact_dir)),
            mime=item["mime"],
            size=item["size"],
            meta=item["metadata"],
        )
        self._session.add(artifact)
        described = {**item, "id": str(artifact.id)}
        described.pop("path")
        self._write(_fenced_event, "artifact", described)
        return described


def _fenced_event(session: orm.Session, task_id: uuid.UUID, attempt: int, kind: str, data: dict) -> bool:
    """Append an event only while `attempt` is the live one; return whether cancel was asked."""
    row = session.execute(
        sa.update(models.Task)
        .where(models.Task.id == task_id, models.Task.attempt == attempt, models.Task.status == models.Status.RUNNING)
        .values(updated_at=lifecycle.now())
        .returning(models.Task.cancel_requested_at)
    ).first()
    if row is None:
        raise errors.StaleAttempt()
    lifecycle.add_event(session, task_id, attempt, kind, data)
    return row.cancel_requested_at is not None
