"""Retries and error classification shared by every HTTP provider adapter.

The rule (one place for all of them): a rate limit (429), a server error (5xx), a dropped
connection or a timeout is tried again with exponential backoff and jitter, waiting the
server's `Retry-After` instead when it sends one; any other 4xx is a `PermanentError` carrying
the provider's own message. When the attempts run out the call raises `RetryableError` (with
`retry_after` from the last answer) so the task's policy can try again later.

The SDKs' own retries are switched off by the adapters (openai `max_retries=0`, ElevenLabs
`request_options={"max_retries": 0}`), so this module alone decides, and its waits go through
`ctx.sleep` so a cancel interrupts them.
"""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx
import openai
from elevenlabs.core import api_error as elevenlabs_errors

from processors import base, errors

T = TypeVar("T")

BACKOFF_BASE = 1.0  # seconds before the second attempt, doubled for each one after
BACKOFF_CAP = 30.0
# A longer Retry-After is not slept through in the worker: the call gives up at once with
# RetryableError(retry_after=...) and the task policy schedules the next attempt.
MAX_RETRY_AFTER = 60.0
DEFAULT_RETRIES = 3

_LOG = logging.getLogger("conveyor.providers")
# Tokens that look like credentials (sk-..., long opaque strings) are hidden from messages.
_SECRET = re.compile(r"\b(?:sk-|xi-)\S+|\b[A-Za-z0-9_\-*]{32,}\b")


@dataclasses.dataclass(frozen=True)
class Failure:
    """What a provider exception means for the caller."""

    retryable: bool
    message: str
    status: int | None = None
    retry_after: float | None = None

    def error(self) -> errors.ProcessorError:
        """Return the processor error to raise for this failure."""
        kind = errors.RetryableError if self.retryable else errors.PermanentError
        return kind(self.message, retry_after=self.retry_after)


def call(
    fn: Callable[[], T],
    settings: Mapping[str, Any] | None = None,
    *,
    what: str,
    ctx: base.Context | None = None,
    attempts: int | None = None,
) -> T:
    """Call `fn`, retrying temporary provider failures; return its result.

    settings: read for CONVEYOR_PROVIDER_RETRIES (retries after the first attempt).
    what: names the call in messages, e.g. "openai chat".
    ctx: when given, waits use `ctx.sleep` (a cancel raises `Cancelled`) and retries are logged
        to the task.
    attempts: overrides the number of attempts, the first included.
    Raises RetryableError when the attempts run out, PermanentError for a refused request;
    exceptions that are not provider failures pass through unchanged.
    """
    if attempts is None:
        attempts = int((settings or {}).get("CONVEYOR_PROVIDER_RETRIES", DEFAULT_RETRIES)) + 1
    attempt = 0
    while True:
        attempt += 1
        if ctx is not None:
            ctx.check()
        try:
            return fn()
        except Exception as exc:
            failure = classify(exc, what)
            if failure is None:
                raise
            if not failure.retryable or attempt >= attempts or _too_long(failure.retry_after):
                raise failure.error() from exc
        _wait(failure, attempt, attempts, what, ctx)


def classify(exc: BaseException, what: str) -> Failure | None:
    """Return what a provider SDK's exception means, or None if it is not one of theirs."""
    if isinstance(exc, openai.APIStatusError):
        return from_status(exc.status_code, exc.response.headers, _openai_message(exc), what, "OPENAI_API_KEY")
    if isinstance(exc, openai.APITimeoutError):
        return Failure(True, f"{what}: the request timed out")
    if isinstance(exc, openai.APIConnectionError):
        return Failure(True, f"{what}: could not connect ({_cause(exc)})")
    if isinstance(exc, elevenlabs_errors.ApiError):
        headers = exc.headers or {}
        return from_status(exc.status_code or 0, headers, _elevenlabs_message(exc.body), what, "ELEVENLABS_API_KEY")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return Failure(False, f"{what}: bad base URL ({exc})")
    if isinstance(exc, httpx.TimeoutException):
        return Failure(True, f"{what}: the request timed out")
    if isinstance(exc, httpx.TransportError):
        return Failure(True, f"{what}: could not connect ({exc})")
    return None


def from_status(status: int, headers: Mapping[str, str], message: str, what: str, key_setting: str) -> Failure:
    """Classify an HTTP error answer by its status code."""
    message = redact(message)
    # 408 and 409 too, as both SDKs' own retry rules do; 0 is an answer with no status at all.
    if status == 429 or status >= 500 or status in (408, 409) or status == 0:
        detail = "rate limited" if status == 429 else f"temporary failure (HTTP {status})"
        return Failure(True, f"{what}: {detail}: {message}", status, retry_after(headers))
    if status == 401:
        text = f"{what}: the API key was refused (HTTP 401); {key_setting} is missing or wrong: {message}"
        return Failure(False, text, status)
    return Failure(False, f"{what}: refused (HTTP {status}): {message}", status)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Return the wait in seconds a server asked for (`retry-after-ms` or `Retry-After`), if any."""
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(raw)  # the HTTP-date form
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def backoff(attempt: int) -> float:
    """Return the wait after failed attempt `attempt` (1-based): doubling, capped, with jitter."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
    return ceiling * random.uniform(0.5, 1.0)


def redact(text: str) -> str:
    """Hide anything in a provider's message that looks like a credential."""
    return _SECRET.sub("[redacted]", text)


def _wait(failure: Failure, attempt: int, attempts: int, what: str, ctx: base.Context | None) -> None:
    seconds = failure.retry_after if failure.retry_after is not None else backoff(attempt)
    note = f"{failure.message}; attempt {attempt + 1} of {attempts} in {seconds:.1f}s"
    if ctx is None:
        _LOG.info("%s", note)
        time.sleep(seconds)
    else:
        ctx.log(note, provider_call=what, status=failure.status)
        ctx.sleep(seconds)


def _too_long(seconds: float | None) -> bool:
    return seconds is not None and seconds > MAX_RETRY_AFTER


def _openai_message(exc: openai.APIStatusError) -> str:
    # The SDK puts the "error" object of OpenAI's error JSON in `body`.
    body = exc.body
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return exc.message


def _elevenlabs_message(body: Any) -> str:
    # ElevenLabs answers {"detail": {"status": ..., "message": ...}}, {"detail": "..."} or, for
    # a 422, {"detail": [{"loc": [...], "msg": ...}]}.
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, dict):
        status, message = detail.get("status"), detail.get("message")
        return f"{message} ({status})" if status and message else str(message or status or detail)
    if isinstance(detail, list):
        return "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail)
    return str(detail)[:500] if detail else "no details given"


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return f"{type(cause).__name__}: {cause}" if cause else str(exc)
