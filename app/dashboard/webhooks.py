"""The webhooks page: the account's endpoints (every account's for operators), a form that
adds one and shows its signing secret this once, each endpoint's deliveries with every
attempt's time, status code or error, and a replay button. Members read; account admins and
operators add, remove and replay (as `/api/webhooks`)."""

import uuid

import flask

from app.dashboard import pages, session
from app.services import errors
from app.services import webhooks as webhook_service

blueprint = flask.Blueprint("webhooks", __name__)
blueprint.before_request(session.require_caller)


def _scope() -> uuid.UUID | None:
    caller = session.caller()
    return None if caller.is_operator else caller.account_id


def _require_admin() -> None:
    if not session.caller().is_admin:
        raise errors.Forbidden("adding, removing and replaying webhooks needs the admin role")


@blueprint.route("/webhooks")
def webhooks():
    """Render the endpoints and the form that adds one."""
    return _page()


def _page(created=None, secret=None, problems=None, status=200):
    found = [webhook_service.describe(e) for e in webhook_service.endpoints(_scope())]
    page = flask.render_template(
        "dashboard/webhooks.html",
        endpoints=found,
        events=webhook_service.EVENTS,
        defaults=webhook_service.DEFAULT_EVENTS,
        created=created,
        secret=secret,
        problems=problems or {},
    )
    return page, status


@blueprint.route("/webhooks", methods=["POST"])
def create():
    """Add an endpoint to the caller's account; show its secret on the page answered."""
    _require_admin()
    form = flask.request.form
    try:
        endpoint, secret = webhook_service.create(
            session.caller().account_id, form.get("url", "").strip(), form.getlist("events") or None,
            form.get("description", "").strip(),
        )  # fmt: skip
    except errors.ServiceError as exc:
        return _page(problems=exc.errors or {"url": [exc.message]}, status=exc.status)
    return _page(created=webhook_service.describe(endpoint), secret=secret, status=201)


@blueprint.route("/webhooks/<uuid:webhook_id>")
def deliveries(webhook_id: uuid.UUID):
    """Render one endpoint's latest deliveries with their attempts."""
    endpoint = webhook_service.endpoint(webhook_id, _scope())
    return flask.render_template(
        "dashboard/webhook.html",
        endpoint=webhook_service.describe(endpoint),
        deliveries=webhook_service.deliveries(webhook_id, _scope(), limit=100),
    )


@blueprint.route("/webhooks/<uuid:webhook_id>/delete", methods=["POST"])
def delete(webhook_id: uuid.UUID):
    """Remove an endpoint and its deliveries."""
    _require_admin()
    webhook_service.delete(webhook_id, _scope())
    return pages.done("Removed the webhook.", ".webhooks")


@blueprint.route("/webhooks/deliveries/<uuid:delivery_id>/replay", methods=["POST"])
def replay(delivery_id: uuid.UUID):
    """Send a delivery again now."""
    _require_admin()
    delivery = webhook_service.replay(delivery_id, _scope())
    return pages.done("The delivery is due again now.", ".deliveries", webhook_id=delivery["webhook_id"])
