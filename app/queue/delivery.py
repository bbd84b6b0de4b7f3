"""Sending webhook deliveries: a loop in its own thread of each sweeper process (never inside
the sweep round, so a slow receiver cannot delay lease rescues), which fans new task events
out (`webhooks.fan_out`), then claims due deliveries and POSTs them, a few at once.

A claim pushes the delivery's due time `LEASE_SECONDS` ahead before sending (SKIP LOCKED on
PostgreSQL), so two sweepers never send the same attempt at once, and one that dies mid-send
leaves the delivery due again. Each attempt is kept (time, status code or error, duration). A
2xx answer is delivered; anything else (an error, a timeout, a redirect: none is followed) is
retried after the next pause of CONVEYOR_WEBHOOK_RETRY_SECONDS, and failed after the last.
Delivery is at least once: a receiver dedupes by `webhook-id`, the delivery's id, the same on
every retry and replay.

Signing follows Standard Webhooks: `webhook-signature` is `v1,` + base64 of HMAC-SHA256 over
`{webhook-id}.{webhook-timestamp}.{body}`, keyed with the base64-decoded part of the
endpoint's secret after `whsec_`. The URL is checked again before every send (its DNS may
have changed since it was accepted), with the rule of URL sources (CONVEYOR_ALLOW_PRIVATE_URLS).
"""

import base64
import concurrent.futures
import dataclasses
import datetime
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable

import httpx
import sqlalchemy as sa
from sqlalchemy import orm

from app.queue import lifecycle, sql, totals, webhooks
from processors import errors as processor_errors
from processors.providers import download

log = logging.getLogger("conveyor.webhooks")
# A claimed delivery is due again after this long if its sender never reports back: more than
# the longest timeout, so a live send always ends first.
LEASE_SECONDS = 90.0
MAX_BACKOFF_SECONDS = 10.0
SECRET_PREFIX = "whsec_"
USER_AGENT = "Conveyor-Webhooks/1"


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the loop needs from the platform's settings."""

    retry_seconds: tuple[float, ...]
    timeout: float
    parallel: int
    progress_seconds: float
    allow_private: bool
    poll_seconds: float

    @classmethod
    def of(cls, settings: dict) -> "Settings":
        """Read them from the platform's settings."""
        return cls(
            retry_seconds=tuple(settings["CONVEYOR_WEBHOOK_RETRY_SECONDS"]),
            timeout=float(settings["CONVEYOR_WEBHOOK_TIMEOUT_SECONDS"]),
            parallel=int(settings["CONVEYOR_WEBHOOK_PARALLEL"]),
            progress_seconds=float(settings["CONVEYOR_WEBHOOK_PROGRESS_SECONDS"]),
            allow_private=bool(settings["CONVEYOR_ALLOW_PRIVATE_URLS"]),
            poll_seconds=min(1.0, float(settings["CONVEYOR_SWEEP_SECONDS"])),
        )


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one attempt got: a status code, or an error; when it began and how long it took."""

    at: datetime.datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """Return the `webhook-signature` header of a body (Standard Webhooks, v1)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(secret: str, message_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Return the headers of one signed POST."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


def start(session_factory: orm.sessionmaker, settings: dict, should_stop: Callable[[], bool]) -> threading.Thread:
    """Start the delivery loop in a daemon thread; it ends soon after `should_stop()`."""
    thread = threading.Thread(
        target=loop, args=(session_factory, Settings.of(settings), should_stop), name="webhooks", daemon=True
    )
    thread.start()
    return thread


def loop(session_factory: orm.sessionmaker, settings: Settings, should_stop: Callable[[], bool]) -> None:
    """Fan out and send until `should_stop()`; a failed round (the database away) is logged
    and tried again with backoff, up to MAX_BACKOFF_SECONDS."""
    failures = 0
    with concurrent.futures.ThreadPoolExecutor(settings.parallel, thread_name_prefix="webhook-send") as pool:
        while not should_stop():
            try:
                sent, failures = run_once(session_factory, settings, pool), 0
            except Exception as exc:
                failures += 1
                _log_failure(failures, exc)
                sent = 0
            if not sent:
                _sleep(min(MAX_BACKOFF_SECONDS, settings.poll_seconds * 2 ** min(failures, 10)), should_stop)


def _log_failure(failures: int, exc: Exception) -> None:
    if failures == 1:
        log.exception("webhook round failed; trying again with backoff")
    else:
        log.warning("webhook round failed (%d in a row): %s", failures, f"{type(exc).__name__}: {exc}"[:300])


def run_once(session_factory: orm.sessionmaker, settings: Settings, pool: concurrent.futures.Executor) -> int:
    """Fan out new events, then send one claim of due deliveries; return how many were sent."""
    webhooks.fan_out(session_factory, settings.progress_seconds)
    claimed = claim(session_factory, settings.parallel)
    if not claimed:
        return 0
    outcomes = list(pool.map(lambda item: send(item, settings), claimed))
    record(session_factory, claimed, outcomes, settings.retry_seconds)
    return len(claimed)


@dataclasses.dataclass(frozen=True)
class Claimed:
    """A delivery taken for one attempt, with where to send it and the key to sign with."""

    id: uuid.UUID
    attempts: int
    payload: dict
    url: str
    secret: str


def claim(session_factory: orm.sessionmaker, limit: int) -> list[Claimed]:
    """Take up to `limit` due deliveries for one attempt each."""
    at = lifecycle.now()
    lease = {"now": at, "limit": limit, "lease_until": at + _seconds(LEASE_SECONDS)}
    with session_factory() as session:
        rows = session.execute(sql.claim_deliveries(), lease).all()
        endpoints = _endpoints(session, {row.endpoint_id for row in rows})
        session.commit()
    return [_claimed(row, endpoints[row.endpoint_id]) for row in rows if row.endpoint_id in endpoints]


def _endpoints(session: orm.Session, ids: set) -> dict:
    if not ids:
        return {}
    w = sql.webhook_endpoints
    query = sa.select(w.c.id, w.c.url, w.c.secret).where(w.c.id.in_(ids))
    return {row.id: row for row in session.execute(query)}


def _claimed(row: sa.Row, endpoint: sa.Row) -> Claimed:
    return Claimed(row.id, row.attempts, row.payload, endpoint.url, endpoint.secret)


def send(item: Claimed, settings: Settings) -> Outcome:
    """POST one delivery, signed; return what the receiver answered (never raises)."""
    at, started = lifecycle.now(), time.monotonic()
    try:
        download.check_url(item.url, allow_private=settings.allow_private)
        body = json.dumps(item.payload, separators=(",", ":"), ensure_ascii=False).encode()
        sent = headers(item.secret, str(item.id), body)
        response = httpx.post(item.url, content=body, headers=sent, timeout=settings.timeout, follow_redirects=False)
        return Outcome(at, response.status_code, _status_error(response), _elapsed(started))
    except (httpx.HTTPError, processor_errors.ProcessorError, OSError) as exc:
        problem = str(exc).replace("refusing to download from", "refusing to send to")
        return Outcome(at, None, f"{type(exc).__name__}: {problem}"[:500], _elapsed(started))


def _status_error(response: httpx.Response) -> str | None:
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"


def record(
    session_factory: orm.sessionmaker, claimed: list[Claimed], outcomes: list[Outcome], retry_seconds: tuple
) -> None:
    """Keep each attempt and move its delivery on (delivered, due again, or failed), and count
    the outcomes into the metrics' totals, in one transaction."""
    deltas = totals.Deltas()
    at = lifecycle.now()
    with session_factory() as session:
        for item, outcome in zip(claimed, outcomes, strict=True):
            result = _next_state(item, outcome, retry_seconds, at)
            if _end_attempt(session, item, result, at):
                _add_attempt(session, item, outcome)
                deltas.add("conveyor_webhook_deliveries_total", {"outcome": result[0]})
        deltas.write(session)
        session.commit()


def _next_state(item: Claimed, outcome: Outcome, retry_seconds: tuple, at) -> tuple[str, object]:
    # (metric outcome, next due time); the delivery's own status follows from the outcome.
    if outcome.ok:
        return "delivered", None
    if item.attempts >= len(retry_seconds):
        return "failed", None
    return "retried", at + _seconds(retry_seconds[item.attempts])


def _end_attempt(session: orm.Session, item: Claimed, result: tuple, at) -> bool:
    outcome, next_at = result
    values = {
        "delivery_id": item.id,
        "claimed_attempts": item.attempts,
        "new_status": "pending" if outcome == "retried" else outcome,
        "next_at": next_at,
        "ended_at": None if outcome == "retried" else at,
    }
    return session.execute(sql.end_delivery_attempt(), values).first() is not None


def _add_attempt(session: orm.Session, item: Claimed, outcome: Outcome) -> None:
    row = {
        "delivery_id": item.id,
        "number": item.attempts + 1,
        "at": outcome.at,
        "status_code": outcome.status_code,
        "error": outcome.error,
        "duration_ms": outcome.duration_ms,
    }
    session.execute(sql.add_webhook_attempt(), [row])


def _seconds(value: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=value)


def _elapsed(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _sleep(seconds: float, should_stop: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not should_stop() and time.monotonic() < deadline:
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
