"""Artifact storage: where task artifacts and uploaded sources live, behind one `Storage`
contract (`base`) with two backends, a local folder (`local`, the default, under `var/`) and
an S3 bucket (`s3`, for workers on several machines). It owns the bytes only: which task an
object belongs to, its MIME type for clients, and who may download it are the database's and
the API's business (artifacts are served only through the API).

`from_settings(settings)` builds the backend the CONVEYOR_STORAGE setting names.
"""

from collections.abc import Mapping
from typing import Any

from app.storage import base, errors, local, s3

# The contract, re-exported so callers can write `storage.Storage` in annotations.
Storage = base.Storage

__all__ = ["Storage", "base", "errors", "from_settings", "local", "s3"]


def from_settings(settings: Mapping[str, Any]) -> Storage:
    """Return the backend CONVEYOR_STORAGE names ("local" or "s3"), set up from `settings`."""
    kind = settings.get("CONVEYOR_STORAGE", "local")
    if kind == "local":
        return local.LocalStorage(settings["CONVEYOR_STORAGE_DIR"])
    if kind == "s3":
        return s3.S3Storage.from_settings(settings)
    raise ValueError(f"unknown CONVEYOR_STORAGE {kind!r}: use local or s3")
