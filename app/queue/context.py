"""The durable processor context: progress, logs and artifacts of the live attempt become
rows and events, each write fenced by the attempt number; artifact files go to the storage
adapter under `tasks/<task>/<attempt>/<name>`, and uploads come from it. Metered usage is
written as it is reported, and not fenced: what a stale attempt consumed was consumed.
"""

import pathlib
import time
import uuid
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy import orm

from app import models, storage
from app.queue import errors, lifecycle
from processors import base
from processors import errors as processor_errors

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
        store: storage.Storage,
        account_id: uuid.UUID | None = None,
        settings: dict | None = None,
        submit: Callable[[str, dict, str], uuid.UUID] | None = None,
        type: str = "",
    ):
        super().__init__(str(task_id), attempt, workdir, settings)
        self.id = task_id
        self.type = type
        self.account_id = account_id
        self.stale = False
        self._session_factory = session_factory
        self._opened: orm.Session | None = None
        self._storage = store
        self._submit = submit
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

    def _record_usage(self, item: dict) -> None:
        now = models.utcnow()
        record = models.UsageRecord(
            account_id=self.account_id,
            task_id=self.id,
            attempt=self.attempt,
            type=self.type,
            measure=item["measure"],
            model=item["model"][:200],
            quantity=item["quantity"],
            day=now.date(),
            created_at=now,
        )
        try:
            self._session.add(record)
            self._session.commit()
        except BaseException:
            self._session.rollback()
            raise

    def fetch_upload(self, upload_id: str) -> pathlib.Path:
        """Copy an upload of the task's account into the workdir and return its path."""
        try:
            wanted = uuid.UUID(str(upload_id))
        except ValueError:
            raise processor_errors.PermanentError(f"upload {upload_id!r} is not an upload id") from None
        upload = self._session.execute(
            sa.select(models.Upload.id, models.Upload.account_id, models.Upload.storage_key).where(
                models.Upload.id == wanted
            )
        ).first()
        self._session.rollback()  # end the read transaction; the values are plain now
        if upload is None or upload.account_id != self.account_id:
            raise processor_errors.PermanentError(f"upload {upload_id} does not exist (deleted?)")
        target = self.workdir / "uploads" / f"{upload.id}{pathlib.PurePath(upload.storage_key).suffix}"
        return self._fetch(upload.storage_key, target, f"the file of upload {upload_id}")

    def fetch_artifact(self, task_id: str, name: str) -> pathlib.Path:
        """Copy the file `name` a succeeded task of the account stored in its last attempt into
        the workdir and return its path."""
        try:
            wanted = uuid.UUID(str(task_id))
        except ValueError:
            raise processor_errors.PermanentError(f"{task_id!r} is not a task id") from None
        t, a = models.Task, models.Artifact
        row = self._session.execute(
            sa.select(a.storage_key)
            .join(t, t.id == a.task_id)
            .where(a.task_id == wanted, a.name == name, a.attempt == t.attempt)
            .where(t.account_id == self.account_id, t.status == "succeeded")
        ).first()
        self._session.rollback()
        if row is None:
            raise processor_errors.PermanentError(f"task {task_id} has no artifact {name!r} (not succeeded? deleted?)")
        return self._fetch(
            row.storage_key, self.workdir / "tasks" / str(wanted) / name, f"the file {name!r} of {task_id}"
        )

    def _fetch(self, key: str, target: pathlib.Path, what: str) -> pathlib.Path:
        """Copy a stored file into `target`; PermanentError naming `what` if it is gone."""
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._storage.fetch(key, target)
        except storage.errors.Missing:
            raise processor_errors.PermanentError(f"{what} is missing") from None
        return target

    def task_result(self, task_id: str) -> dict:
        """Return another task of the same account as `{type, status, result}`."""
        try:
            wanted = uuid.UUID(str(task_id))
        except ValueError:
            raise processor_errors.PermanentError(f"{task_id!r} is not a task id") from None
        t = models.Task
        row = self._session.execute(
            sa.select(t.type, t.status, t.result).where(t.id == wanted, t.account_id == self.account_id)
        ).first()
        self._session.rollback()
        if row is None:
            raise processor_errors.PermanentError(f"task {task_id} does not exist in this account")
        return {"type": row.type, "status": row.status, "result": row.result}

    def children_status(self) -> list[dict]:
        """Return this task's children, oldest first."""
        t = models.Task
        rows = self._session.execute(
            sa.select(t.id, t.type, t.idempotency_key, t.status, t.progress, t.error)
            .where(t.parent_id == self.id)
            .order_by(t.created_at, t.id)
        ).all()
        self._session.rollback()
        return [
            {
                "id": str(row.id),
                "type": row.type,
                "key": (row.idempotency_key or "").rpartition(":")[2],
                "status": row.status,
                "progress": row.progress,
                "error": row.error,
            }
            for row in rows
        ]

    def _record_child(self, type: str, params: dict, key: str) -> dict:
        if self._submit is None:
            raise processor_errors.PermanentError("this context cannot submit child tasks")
        child_id = self._submit(type, params, key)
        return {"id": str(child_id), "type": type, "key": key, "status": "queued", "progress": 0.0, "error": None}

    def _record_artifact(self, item: dict) -> dict:
        self.check()  # a stale or cancelled attempt stores nothing
        key = f"tasks/{self.id}/{self.attempt}/{item['name']}"
        self._storage.put_file(key, item["path"], mime=item["mime"])
        artifact = models.Artifact(
            id=uuid.uuid4(),
            task_id=self.id,
            attempt=self.attempt,
            kind=item["kind"],
            name=item["name"],
            storage_key=key,
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
