"""Send a stored file (artifact or upload) from the storage adapter, with HTTP Range support
so a browser can seek in a video: `bytes=a-b`, `bytes=a-` and `bytes=-n`; one range per request
(a multi-range request gets the whole file, which RFC 9110 allows)."""

import flask
from werkzeug import exceptions

from app import storage

CHUNK = 256 * 1024


def send(store: storage.Storage, key: str, mime: str | None, name: str, etag: str) -> flask.Response:
    """Return a response streaming the stored object `key` (206 for a satisfiable Range)."""
    try:
        size = store.size(key)
    except storage.errors.Missing:
        raise exceptions.NotFound("the file is missing from storage") from None
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{etag}"',
        "Cache-Control": "private, no-cache",
        "Content-Disposition": _disposition(name),
    }
    start, end, status = 0, size - 1, 200
    span = _range(size, headers["ETag"])
    if span is not None:
        start, end, status = span[0], span[1], 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1 if size else 0)
    if flask.request.method == "HEAD" or size == 0:
        body = iter(())
    else:
        body = store.read_range(key, start, end, chunk_size=CHUNK)
    return flask.Response(body, status=status, mimetype=mime or "application/octet-stream", headers=headers)


def _range(size: int, etag: str) -> tuple[int, int] | None:
    """Return the (first, last) byte asked for, None for the whole file; 416 if unsatisfiable."""
    asked = flask.request.range
    # If-Range with another validator means "send the whole file"; we only compare ETags.
    if_range = flask.request.headers.get("If-Range")
    if asked is None or len(asked.ranges) != 1 or (if_range is not None and if_range.strip() != etag):
        return None
    span = asked.range_for_length(size)
    if span is None:
        raise _unsatisfiable(size)
    return span[0], span[1] - 1


def _unsatisfiable(size: int) -> exceptions.RequestedRangeNotSatisfiable:
    error = exceptions.RequestedRangeNotSatisfiable(length=size)
    error.description = f"the range asked for is outside the file ({size} bytes)"
    return error


def _disposition(name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f'inline; filename="{ascii_name}"'
