"""`/api/webhooks`: an account's signed webhook endpoints, their deliveries with every attempt,
and replays. Any caller reads its own account's; an account admin adds, removes and replays
its own account's; an operator does all of it for any account (`account`)."""

import uuid

import flask

from app.api import auth, parsing, schemas
from app.api.errors import ErrorSchema
from app.services import accounts, errors
from app.services import webhooks as webhook_service

blueprint = parsing.Blueprint(
    "webhooks", __name__, url_prefix="/api/webhooks", description="Signed webhooks of task events (Standard Webhooks)"
)
# Views that change an account's webhooks: its admins, and operators.
ADMIN_VIEWS = ("webhooks.create", "webhooks.delete", "webhooks.replay")


@blueprint.before_request
def _authorize():
    if flask.request.endpoint in ADMIN_VIEWS:
        return auth.authenticate_admin()
    return auth.authenticate()


def _scope() -> uuid.UUID | None:
    """The account the caller acts in: its own, or None (every account) for an operator."""
    caller = auth.caller()
    return None if caller.is_operator else caller.account_id


@blueprint.route("", methods=["POST"])
@blueprint.arguments(schemas.WebhookCreate())
@blueprint.response(201, schemas.WebhookCreated)
@blueprint.alt_response(403, schema=ErrorSchema, description="a member, or another account (not an operator)")
@blueprint.alt_response(404, schema=ErrorSchema, description="no such account (`account`, operators)")
@blueprint.alt_response(409, schema=ErrorSchema, description="the account has the most webhooks it may have")
@blueprint.alt_response(422, schema=ErrorSchema, description="a bad or private URL, an unknown event type")
def create(body: dict):
    """Add a webhook (admin role): task events POSTed to `url`, signed per Standard Webhooks
    with the secret in this answer, which is never shown again"""
    endpoint, secret = webhook_service.create(
        _target_account(body.get("account")), body["url"], body.get("events"), body["description"]
    )
    return {**webhook_service.describe(endpoint), "secret": secret}


def _target_account(name: str | None) -> uuid.UUID:
    caller = auth.caller()
    if name is None:
        return caller.account_id
    if caller.is_operator:
        return accounts.account(name).id
    if name != accounts.get(caller.account_id).name:
        raise errors.Forbidden("only operators manage another account's webhooks", {"account": ["not yours"]})
    return caller.account_id


@blueprint.route("", methods=["GET"])
@blueprint.arguments(schemas.WebhookListQuery(), location="query")
@blueprint.response(200, schemas.WebhookList)
@blueprint.alt_response(404, schema=ErrorSchema, description="no such account (`account`, operators)")
def list_webhooks(query: dict):
    """Your account's webhooks (an operator's: every account's, or one's with `?account=`)"""
    caller, name = auth.caller(), query.get("account")
    if caller.is_operator:
        scope = accounts.account(name).id if name else None
    elif name not in (None, accounts.get(caller.account_id).name):
        return {"items": []}  # another account's name: nothing, as if it had none
    else:
        scope = caller.account_id
    return {"items": [webhook_service.describe(e) for e in webhook_service.endpoints(scope)]}


@blueprint.route("/<uuid:webhook_id>", methods=["GET"])
@blueprint.response(200, schemas.Webhook)
@blueprint.alt_response(404, schema=ErrorSchema, description="no such webhook in your account")
def get(webhook_id: uuid.UUID):
    """One webhook (without its secret)"""
    return webhook_service.describe(webhook_service.endpoint(webhook_id, _scope()))


@blueprint.route("/<uuid:webhook_id>", methods=["DELETE"])
@blueprint.response(204, description="removed, with its deliveries")
@blueprint.alt_response(403, schema=ErrorSchema, description="a member")
@blueprint.alt_response(404, schema=ErrorSchema, description="no such webhook in your account")
def delete(webhook_id: uuid.UUID):
    """Remove a webhook and its deliveries (admin role); nothing more is sent to it"""
    webhook_service.delete(webhook_id, _scope())
    return None


@blueprint.route("/<uuid:webhook_id>/deliveries", methods=["GET"])
@blueprint.arguments(schemas.WebhookDeliveryQuery(), location="query")
@blueprint.response(200, schemas.WebhookDeliveryList)
@blueprint.alt_response(404, schema=ErrorSchema, description="no such webhook in your account")
def deliveries(query: dict, webhook_id: uuid.UUID):
    """A webhook's latest deliveries, newest first, each with every attempt (time, status
    code or error, duration)"""
    found = webhook_service.deliveries(webhook_id, _scope(), query.get("status"), query["limit"])
    return {"items": found}


@blueprint.route("/deliveries/<uuid:delivery_id>/replay", methods=["POST"])
@blueprint.response(200, schemas.WebhookDelivery)
@blueprint.alt_response(403, schema=ErrorSchema, description="a member")
@blueprint.alt_response(404, schema=ErrorSchema, description="no such delivery in your account")
def replay(delivery_id: uuid.UUID):
    """Send a delivery again now (admin role), whatever its state, with the same `webhook-id`

    One more attempt; it is retried only while the delivery has retries of its schedule left.
    """
    return webhook_service.replay(delivery_id, _scope())
