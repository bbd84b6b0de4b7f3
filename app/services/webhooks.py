"""Webhook endpoints and their deliveries: adding an account's endpoint (its signing secret
returned once), listing, removing, the deliveries with every attempt, and replays.

Who may do what is the caller's to decide (API, CLI, dashboard): these functions take the
account to act in, or None for every account (operators). A URL is checked with the rule of
URL sources (`providers.download.submit_refusal`): a host that resolves to a private, loopback
or link-local address is refused unless CONVEYOR_ALLOW_PRIVATE_URLS; the delivery loop checks
it again before every send. Sending is `app.queue.delivery`'s; the fan-out `app.queue.webhooks`'.
"""

import base64
import secrets
import uuid

import sqlalchemy as sa

from app import models, runtime
from app.extensions import db
from app.queue import lifecycle, sql
from app.queue import webhooks as fan_out
from app.services import errors, inputs
from processors.providers import download

EVENTS = fan_out.EVENTS
DEFAULT_EVENTS = fan_out.TERMINAL
MAX_ENDPOINTS = 20
MAX_URL = 2000
MAX_DESCRIPTION = 500
SECRET_BYTES = 32
DELIVERY_STATUSES = ("pending", "delivered", "failed")


def create(account_id: uuid.UUID, url: str, events: list[str] | None = None, description: str = "") -> tuple:
    """Add an endpoint to an account; return it and its secret (shown this once). Raises
    Invalid naming `url`, `events` or `description`, Conflict past MAX_ENDPOINTS."""
    problems = {**_url_problems(url), **_event_problems(events), **_description_problems(description)}
    if problems:
        raise errors.Invalid("invalid webhook: " + ", ".join(sorted(problems)), problems)
    if _count(account_id) >= MAX_ENDPOINTS:
        raise errors.Conflict(f"an account has at most {MAX_ENDPOINTS} webhooks", {"url": ["too many webhooks"]})
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()
    endpoint = models.WebhookEndpoint(
        account_id=account_id, url=url, events=list(events or DEFAULT_EVENTS), secret=secret, description=description
    )
    db.session.add(endpoint)
    db.session.commit()
    return endpoint, secret


def _url_problems(url: str) -> dict:
    if not isinstance(url, str) or not url or len(url) > MAX_URL or inputs.text_problem(url):
        return {"url": [f"an http or https URL of at most {MAX_URL} characters"]}
    allow = bool(runtime.current().settings["CONVEYOR_ALLOW_PRIVATE_URLS"])
    why = download.submit_refusal(url, allow_private=allow)
    return {"url": [why.replace("can be downloaded", "can receive webhooks")]} if why else {}


def _event_problems(events: list[str] | None) -> dict:
    if events is None:
        return {}
    if not isinstance(events, list) or not events or len(set(events)) != len(events):
        return {"events": ["a non-empty list of distinct event types"]}
    unknown = [event for event in events if event not in EVENTS]
    return {"events": [f"unknown event type(s) {unknown}; one of {', '.join(EVENTS)}"]} if unknown else {}


def _description_problems(description: str) -> dict:
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        return {"description": [f"at most {MAX_DESCRIPTION} characters"]}
    problem = inputs.text_problem(description)
    return {"description": [problem]} if problem else {}


def _count(account_id: uuid.UUID) -> int:
    w = models.WebhookEndpoint
    return db.session.scalar(sa.select(sa.func.count()).select_from(w).where(w.account_id == account_id))


def endpoints(account_id: uuid.UUID | None) -> list[models.WebhookEndpoint]:
    """Return an account's endpoints (None: every account's), oldest first."""
    w = models.WebhookEndpoint
    query = sa.select(w).order_by(w.created_at, w.id)
    if account_id is not None:
        query = query.where(w.account_id == account_id)
    return list(db.session.scalars(query))


def endpoint(endpoint_id: uuid.UUID, account_id: uuid.UUID | None) -> models.WebhookEndpoint:
    """Return one endpoint of the account (None: of any account); raise NotFound."""
    found = db.session.get(models.WebhookEndpoint, endpoint_id)
    if found is None or (account_id is not None and found.account_id != account_id):
        raise errors.NotFound("no such webhook", {"webhook_id": ["not found"]})
    return found


def delete(endpoint_id: uuid.UUID, account_id: uuid.UUID | None) -> None:
    """Remove an endpoint with its deliveries; raise NotFound."""
    db.session.delete(endpoint(endpoint_id, account_id))
    db.session.commit()


def deliveries(endpoint_id: uuid.UUID, account_id: uuid.UUID | None, status: str | None = None, limit: int = 50):
    """Return an endpoint's latest deliveries, newest first, each with its attempts."""
    endpoint(endpoint_id, account_id)
    d = models.WebhookDelivery
    query = sa.select(d).where(d.endpoint_id == endpoint_id).order_by(d.created_at.desc(), d.event_id.desc())
    if status is not None:
        query = query.where(d.status == status)
    found = list(db.session.scalars(query.limit(limit)))
    attempts = _attempts([delivery.id for delivery in found])
    return [describe_delivery(delivery, attempts.get(delivery.id, [])) for delivery in found]


def _attempts(delivery_ids: list[uuid.UUID]) -> dict:
    a = models.WebhookAttempt
    found: dict = {}
    if delivery_ids:
        query = sa.select(a).where(a.delivery_id.in_(delivery_ids)).order_by(a.delivery_id, a.number)
        for attempt in db.session.scalars(query):
            found.setdefault(attempt.delivery_id, []).append(attempt)
    return found


def replay(delivery_id: uuid.UUID, account_id: uuid.UUID | None) -> dict:
    """Make a delivery pending and due now (again, if it was delivered or failed), with the
    same `webhook-id`; return it. Raises NotFound."""
    delivery = db.session.get(models.WebhookDelivery, delivery_id)
    if delivery is None:
        raise errors.NotFound("no such delivery", {"delivery_id": ["not found"]})
    try:
        endpoint(delivery.endpoint_id, account_id)
    except errors.NotFound:
        raise errors.NotFound("no such delivery", {"delivery_id": ["not found"]}) from None
    db.session.execute(sql.replay_delivery(delivery_id, lifecycle.now()))
    db.session.commit()
    db.session.refresh(delivery)
    return describe_delivery(delivery, _attempts([delivery.id]).get(delivery.id, []))


def describe(endpoint: models.WebhookEndpoint) -> dict:
    """Return an endpoint as plain values, without its secret."""
    return {
        "id": endpoint.id,
        "account": db.session.get(models.Account, endpoint.account_id).name,
        "url": endpoint.url,
        "events": list(endpoint.events),
        "description": endpoint.description,
        "created_at": endpoint.created_at,
    }


def describe_delivery(delivery: models.WebhookDelivery, attempts: list) -> dict:
    """Return a delivery and its attempts as plain values."""
    return {
        "id": delivery.id,
        "webhook_id": delivery.endpoint_id,
        "task_id": delivery.task_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at if delivery.status == "pending" else None,
        "created_at": delivery.created_at,
        "finished_at": delivery.finished_at,
        "payload": delivery.payload,
        "tries": [_describe_attempt(attempt) for attempt in attempts],
    }


def _describe_attempt(attempt: models.WebhookAttempt) -> dict:
    return {
        "number": attempt.number,
        "at": attempt.at,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
    }
