"""Uploads: files a user sends to use as a task's source, checked by content and scoped to
the account.

The bytes go to the storage adapter under `uploads/<account>/<upload>/source.<ext>`, where the
extension is the one the content says, not the one the name claims. A task refers to an upload
by its id (`{"upload_id": ...}` in its params); the task's processor declares which params hold
upload ids, and `check_references` makes sure each one exists in the caller's account and is a
kind the field accepts, before the task is stored. `purge` deletes old uploads that no waiting
or running task refers to.
"""

import datetime
import hashlib
import logging
import pathlib
import re
import uuid
from typing import BinaryIO

import sqlalchemy as sa

from app import models, runtime
from app.extensions import db
from app.services import errors, sniff
from app.storage import errors as storage_errors
from processors import base
from processors import errors as processor_errors

log = logging.getLogger(__name__)
PURGE_BATCH = 500

_UNSAFE_NAME = re.compile(r"[^\w.\- ]+")


def create(stream: BinaryIO, filename: str, *, account_id: uuid.UUID, user_id: uuid.UUID | None) -> models.Upload:
    """Store an uploaded file and return its row. Raises UnsupportedMedia if its content is no
    kind we accept, TooLarge past `CONVEYOR_UPLOAD_MAX_BYTES`."""
    conveyor = runtime.current()
    head = stream.read(sniff.HEAD_BYTES)
    found = sniff.sniff(head)
    if found is None:
        raise errors.UnsupportedMedia(
            "the file is not a video, audio, image or subtitle file we accept",
            {
                "file": [
                    "content not recognised (accepted: mp4, mov, webm, mkv, avi, wav, mp3, ogg, flac, m4a, png, "
                    "jpeg, gif, webp, srt, vtt)"
                ]
            },
        )
    upload_id = uuid.uuid4()
    key = f"uploads/{account_id}/{upload_id}/source.{found.extension}"
    hashing = _HashingReader(stream, head)
    limit = conveyor.settings["CONVEYOR_UPLOAD_MAX_BYTES"]
    try:
        size = conveyor.storage.put_stream(key, hashing, mime=found.mime, max_bytes=limit)
    except storage_errors.TooLarge:
        raise errors.TooLarge(f"the file is larger than the limit of {limit} bytes", {"file": ["too large"]}) from None
    upload = models.Upload(
        id=upload_id,
        account_id=account_id,
        user_id=user_id,
        filename=safe_name(filename, found.extension),
        kind=found.kind,
        mime=found.mime,
        size=size,
        sha256=hashing.digest.hexdigest(),
        storage_key=key,
    )
    db.session.add(upload)
    try:
        db.session.commit()
    except BaseException:
        db.session.rollback()
        conveyor.storage.delete(key)  # no row, no file
        raise
    return upload


def get(upload_id: uuid.UUID | str, account_id: uuid.UUID | None) -> models.Upload:
    """Return an upload of the account (any account if None). Raises NotFound."""
    try:
        upload_id = uuid.UUID(str(upload_id))
    except ValueError:
        raise errors.NotFound("no such upload") from None
    upload = db.session.get(models.Upload, upload_id)
    if upload is None or (account_id is not None and upload.account_id != account_id):
        raise errors.NotFound("no such upload")
    return upload


def find(account_id: uuid.UUID, limit: int = 50, offset: int = 0) -> list[models.Upload]:
    """Return an account's uploads, newest first."""
    query = (
        sa.select(models.Upload)
        .where(models.Upload.account_id == account_id)
        .order_by(models.Upload.created_at.desc(), models.Upload.id)
        .limit(limit)
        .offset(offset)
    )
    return list(db.session.scalars(query))


def count(account_id: uuid.UUID) -> int:
    """Return how many uploads an account has."""
    query = sa.select(sa.func.count()).select_from(models.Upload).where(models.Upload.account_id == account_id)
    return db.session.scalar(query) or 0


def delete(upload_id: uuid.UUID | str, account_id: uuid.UUID) -> None:
    """Delete an upload's row and file. Tasks that already copied it keep running."""
    upload = get(upload_id, account_id)
    key = upload.storage_key
    db.session.delete(upload)
    db.session.commit()
    runtime.current().storage.delete(key)


def references(registry, type: str, params: dict | None) -> dict[str, tuple[str, frozenset[str]]]:
    """The uploads a task of `type` with `params` refers to, as its processor's `uploads`
    declares them (field path -> (upload id, accepted kinds)); {} for a type that takes none
    or is unknown. Raises the processor's `InvalidParams` for params it cannot load."""
    if not _takes_uploads(registry, type):
        return {}
    cls = registry.processor_class(type)
    return cls.uploads(cls.load_params(params))


def _takes_uploads(registry, type: str) -> bool:
    """Whether the type's processor declares upload params (overrides `Processor.uploads`)."""
    return type in registry and registry.processor_class(type).uploads.__func__ is not base.Processor.uploads.__func__


def purge(before: datetime.datetime, registry, *, dry_run: bool = False) -> dict:
    """Delete uploads made before `before` (rows, then files, `PURGE_BATCH` per transaction),
    except those a waiting or running task refers to. A failed or cancelled task that is
    retried later and needs a purged upload fails with "no such upload", as does a task that
    refers to one and is submitted while the purge runs. With `dry_run`, only count them."""
    in_use = _in_use(registry)
    old = sa.select(models.Upload.id, models.Upload.storage_key, models.Upload.size).where(
        models.Upload.created_at < before
    )
    made_before = db.session.execute(old.order_by(models.Upload.created_at)).all()
    rows = [row for row in made_before if row.id not in in_use]
    report = {"before": before, "kept_in_use": len(made_before) - len(rows)}
    if dry_run:
        return {**report, "matching": len(rows), "bytes": sum(row.size for row in rows)}
    storage, file_errors = runtime.current().storage, 0
    for start in range(0, len(rows), PURGE_BATCH):
        batch = rows[start : start + PURGE_BATCH]
        db.session.execute(sa.delete(models.Upload).where(models.Upload.id.in_([row.id for row in batch])))
        db.session.commit()
        for row in batch:  # files after the commit, as in `delete`
            try:
                storage.delete(row.storage_key)
            except Exception:
                file_errors += 1
                log.exception("purge: the file of upload %s was not deleted", row.id)
    return {**report, "deleted": len(rows), "bytes": sum(row.size for row in rows), "file_errors": file_errors}


def _in_use(registry) -> set[uuid.UUID]:
    """The ids of the uploads waiting and running tasks refer to (only the types that take
    uploads are read)."""
    types = [type for type in registry.types() if _takes_uploads(registry, type)]
    waiting = sa.select(models.Task.type, models.Task.params).where(
        models.Task.status.in_([models.Status.QUEUED, models.Status.RUNNING]), models.Task.type.in_(types)
    )
    found: set[uuid.UUID] = set()
    for task in db.session.execute(waiting):
        try:
            referred = references(registry, task.type, task.params)
        except processor_errors.InvalidParams:
            continue  # params that no longer load: the task fails at its start whatever we keep
        for upload_id, _kinds in referred.values():
            try:
                found.add(uuid.UUID(str(upload_id)))
            except ValueError:
                continue
    return found


def check_references(references: dict[str, tuple[str, frozenset[str]]], account_id: uuid.UUID) -> None:
    """Make sure each referenced upload exists in the account and is of a kind its field takes.

    references: field path -> (upload id, accepted kinds), as a processor's `uploads` declares.
    Raises Invalid naming every bad field.
    """
    problems: dict[str, list[str]] = {}
    for field, (upload_id, kinds) in references.items():
        try:
            upload = get(upload_id, account_id)
        except errors.NotFound:
            problems[field] = ["no such upload in this account"]
            continue
        if upload.kind not in kinds:
            problems[field] = [f"the upload is {upload.kind}; this field takes {', '.join(sorted(kinds))}"]
    if problems:
        raise errors.Invalid("invalid params", {"params": errors.nested(problems)})


def safe_name(filename: str, extension: str) -> str:
    """Return a display name without path parts or odd characters, ending in the sniffed extension."""
    stem = pathlib.PurePath((filename or "").replace("\\", "/")).stem
    stem = _UNSAFE_NAME.sub("_", stem).strip(" ._")[:200] or "upload"
    return f"{stem}.{extension}"


class _HashingReader:
    """A binary stream that yields `head` and then the rest of `stream`, hashing what it gives."""

    def __init__(self, stream: BinaryIO, head: bytes):
        self._stream = stream
        self._head = head
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        if self._head:
            chunk, self._head = (
                (self._head, b"")
                if size < 0 or size >= len(self._head)
                else (
                    self._head[:size],
                    self._head[size:],
                )
            )
        else:
            chunk = self._stream.read(size)
        self.digest.update(chunk)
        return chunk
