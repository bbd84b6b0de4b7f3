"""The S3 backend: objects in one bucket of AWS S3 or an S3-compatible store (MinIO, Ceph,
R2...) through boto3, so workers on several machines share artifacts and uploads.

Each `S3Storage` owns one boto3 client (clients are thread-safe; sessions are not), made from
one shared session so the S3 service model is loaded once per process. botocore's
errors become `errors.Missing` or an `errors.StorageError` that names the bucket and key.
"""

import contextlib
import functools
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

import boto3
import botocore.config
import botocore.exceptions
from boto3 import exceptions as boto3_exceptions

from app.storage import base, errors

PAGE_SIZE = 1000  # the most keys S3 lists per page and deletes per request
NOT_FOUND = ("404", "NoSuchKey", "NotFound")
REFUSED = ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken")
BOTO_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, boto3_exceptions.S3UploadFailedError)
_SESSION_LOCK = threading.Lock()  # boto3 sessions are not thread-safe; clients are


class S3Storage(base.Storage):
    """Objects in `bucket`. `page_size` caps keys per list page and per batch delete."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        page_size: int = PAGE_SIZE,
        max_attempts: int = 3,
    ):
        if bool(access_key_id) != bool(secret_access_key):
            raise errors.StorageError("set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.page_size = min(page_size, PAGE_SIZE)
        self._bucket_seen = False
        with _SESSION_LOCK:
            self._client = _session().client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                config=_client_config(endpoint_url, max_attempts),
            )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], **options: Any) -> "S3Storage":
        """Build the backend from the S3_* settings; boto3's credential chain if keys are unset."""
        return cls(
            settings["S3_BUCKET"],
            endpoint_url=settings.get("S3_ENDPOINT_URL"),
            region=settings.get("S3_REGION"),
            access_key_id=settings.get("S3_ACCESS_KEY_ID"),
            secret_access_key=settings.get("S3_SECRET_ACCESS_KEY"),
            **options,
        )

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r})"

    def put_file(self, key: str, path: str | os.PathLike, mime: str | None = None) -> int:
        """Upload the file at `path` under `key`; return its size."""
        base.check_key(key)
        size = os.path.getsize(path)
        with self._errors("upload", key):
            self._client.upload_file(os.fspath(path), self.bucket, key, ExtraArgs=_extra(mime))
        return size

    def put_stream(self, key: str, stream: BinaryIO, mime: str | None = None, max_bytes: int | None = None) -> int:
        """Upload `stream` under `key`; raise TooLarge past `max_bytes`; return the size."""
        base.check_key(key)
        counted = _Counted(key, stream, max_bytes)
        # A TooLarge raised while boto3 reads aborts the upload (multipart ones included), so
        # nothing is stored and an older object under the key stays.
        with self._errors("upload", key):
            self._client.upload_fileobj(counted, self.bucket, key, ExtraArgs=_extra(mime))
        return counted.size

    def size(self, key: str) -> int:
        """Return the size of the object under `key`."""
        base.check_key(key)
        with self._errors("head", key):
            return self._client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]

    def read_range(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = base.CHUNK_SIZE
    ) -> base.Chunks:
        """Return the bytes `start`..`end` (inclusive) of the object under `key`."""
        base.check_key(key)
        base.check_range(start, end)
        extra = {} if start == 0 and end is None else {"Range": f"bytes={start}-{'' if end is None else end}"}
        with self._errors("get", key):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=key, **extra)
            except botocore.exceptions.ClientError as exc:
                # 416: the range starts at or past the end (every range of an empty object does).
                if _code(exc) != "InvalidRange":
                    raise
                return base.Chunks(None, 0)
        return base.Chunks(_Body(self, key, response["Body"]), response["ContentLength"], chunk_size)

    def fetch(self, key: str, dest_path: str | os.PathLike) -> int:
        """Download the object under `key` to `dest_path`; return its size."""
        base.check_key(key)
        with self._errors("download", key):
            self._client.download_file(self.bucket, key, os.fspath(dest_path))
        return os.path.getsize(dest_path)

    def delete(self, key: str) -> None:
        """Delete the object under `key`, if any."""
        base.check_key(key)
        with self._errors("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=key)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under the folder `prefix`, a page at a time; return how many."""
        prefix = base.check_prefix(prefix)
        count = 0
        # S3 continues a listing after the last key returned, so deleting each page as it
        # comes does not skip any key.
        for page in self._pages(prefix):
            count += self._delete_batch(prefix, page)
        return count

    def exists(self, key: str) -> bool:
        """Tell whether an object is stored under `key`."""
        try:
            self.size(key)
        except errors.Missing:
            return False
        return True

    def _pages(self, prefix: str) -> Iterator[list[str]]:
        """Yield the keys under the folder `prefix`, one list per page."""
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket, Prefix=prefix + "/", PaginationConfig={"PageSize": self.page_size}
        )
        with self._errors("list", prefix + "/"):
            for page in pages:
                yield [item["Key"] for item in page.get("Contents", [])]

    def _delete_batch(self, prefix: str, keys: list[str]) -> int:
        if not keys:
            return 0
        with self._errors("delete", prefix + "/"):
            response = self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True}
            )
        failed = response.get("Errors", [])
        if failed:
            detail = ", ".join(f"{item.get('Key')}: {item.get('Code')}" for item in failed[:5])
            raise errors.StorageError(f"S3 could not delete {len(failed)} objects in s3://{self.bucket}/: {detail}")
        return len(keys)

    def _check_bucket(self) -> None:
        """Raise StorageError unless the bucket exists; check once per instance."""
        if self._bucket_seen:
            return
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except BOTO_ERRORS as exc:
            if _code(exc) in NOT_FOUND:
                raise errors.StorageError(f"S3 bucket {self.bucket!r} does not exist{self._where()}") from exc
            raise self._error(exc, "head", "") from exc
        self._bucket_seen = True

    @contextlib.contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        """Turn botocore's errors into Missing or a StorageError naming the bucket and key."""
        try:
            yield
        except BOTO_ERRORS as exc:
            if _code(exc) in NOT_FOUND:
                # A HEAD answers a bare 404 for a missing bucket too: ask which one is missing.
                self._check_bucket()
                raise errors.Missing(key) from exc
            raise self._error(exc, action, key) from exc

    def _error(self, exc: Exception, action: str, key: str) -> errors.StorageError:
        code, target = _code(exc), f"s3://{self.bucket}/{key}{self._where()}"
        if code == "NoSuchBucket":
            return errors.StorageError(f"S3 bucket {self.bucket!r} does not exist{self._where()}")
        if code in REFUSED:
            hint = "check S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY"
            return errors.StorageError(f"S3 refused to {action} {target} ({code}): {hint}")
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            hint = "set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY or configure boto3's credential chain"
            return errors.StorageError(f"no S3 credentials to {action} {target}: {hint}")
        return errors.StorageError(f"S3 could not {action} {target}: {exc}")

    def _where(self) -> str:
        return f" at {self.endpoint_url}" if self.endpoint_url else ""

    def list(self, prefix: str) -> list[str]:
        """Return the keys under the folder `prefix`, sorted."""
        prefix = base.check_prefix(prefix)
        return sorted(key for page in self._pages(prefix) for key in page)


class _Counted:
    """A read-only view of a stream that counts bytes and raises TooLarge past a limit. It
    has no `seek`, so boto3 reads it once, in order."""

    def __init__(self, key: str, stream: BinaryIO, max_bytes: int | None):
        self.key, self.stream, self.max_bytes, self.size = key, stream, max_bytes, 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.size += len(data)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise errors.TooLarge(self.key, self.max_bytes)
        return data


class _Body:
    """A GetObject body whose read errors are StorageErrors naming the object."""

    def __init__(self, storage: S3Storage, key: str, body: Any):
        self.storage, self.key, self.body = storage, key, body

    def read(self, size: int) -> bytes:
        with self.storage._errors("read", self.key):
            return self.body.read(size)

    def close(self) -> None:
        self.body.close()


@functools.cache
def _session() -> boto3.session.Session:
    """Return the process's boto3 session; call it under _SESSION_LOCK."""
    return boto3.session.Session()


def _client_config(endpoint_url: str | None, max_attempts: int) -> botocore.config.Config:
    options: dict[str, Any] = {"retries": {"mode": "standard", "total_max_attempts": max_attempts}}
    if endpoint_url:
        # S3-compatible stores: their hosts rarely resolve per-bucket names, and many reject
        # the CRC checksums boto3 sends by default since 1.36.
        options.update(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
    return botocore.config.Config(**options)


def _extra(mime: str | None) -> dict[str, str]:
    return {"ContentType": mime} if mime else {}


def _code(exc: BaseException | None) -> str:
    """Return the S3 error code of a botocore error (or of the one behind boto3's wrapper)."""
    if isinstance(exc, boto3_exceptions.S3UploadFailedError):
        # boto3 raises it inside `except ClientError`, without `from`.
        exc = exc.__cause__ or exc.__context__
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""
