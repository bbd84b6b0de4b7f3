"""`/api/usage`: metered usage and its cost per account and UTC day, and the prices it is
billed at. Any caller reads its own account's usage; an operator reads every account's (or
one's, with `?account=`) and sets prices."""

import datetime

import flask

from app.api import auth, parsing, schemas
from app.api.errors import ErrorSchema
from app.services import accounts
from app.services import usage as usage_service

blueprint = parsing.Blueprint(
    "usage", __name__, url_prefix="/api/usage", description="Metered usage and cost per account and day"
)
# Views that change prices: operators only.
OPERATOR_VIEWS = ("usage.set_price", "usage.delete_price")
# A report without `since` covers this many days up to `until`.
DEFAULT_DAYS = 30


@blueprint.before_request
def _authorize():
    if flask.request.endpoint in OPERATOR_VIEWS:
        return auth.authenticate_operator()
    return auth.authenticate()


@blueprint.route("", methods=["GET"])
@blueprint.arguments(schemas.UsageQuery(), location="query")
@blueprint.response(200, schemas.UsageReport)
@blueprint.alt_response(404, schema=ErrorSchema, description="no such account (`account`, operators)")
@blueprint.alt_response(422, schema=ErrorSchema, description="a range backwards or over 366 days")
def report(query: dict):
    """Usage per account and UTC day: tokens, characters of speech, images and seconds, each
    line with its cost (null where no price is set) and each day's total

    Your own account's; an operator sees every account's, or one's with `?account=`.
    """
    until = query.get("until") or datetime.datetime.now(datetime.UTC).date()
    since = query.get("since") or max(until - datetime.timedelta(days=DEFAULT_DAYS - 1), datetime.date(2000, 1, 1))
    caller, name = auth.caller(), query.get("account")
    if caller.is_operator:
        return usage_service.daily(accounts.account(name).id if name else None, since, until)
    if name not in (None, accounts.get(caller.account_id).name):
        # Another account's name: nothing, as if it had no usage (no 403 or 404 that would
        # confirm the account exists).
        return {**usage_service.daily(caller.account_id, since, until), "days": []}
    return usage_service.daily(caller.account_id, since, until)


@blueprint.route("/prices", methods=["GET"])
@blueprint.response(200, schemas.PriceList)
def list_prices():
    """The prices usage is billed at, each for `per` units of a measure and one model (an
    empty model: every model without a price of its own)"""
    return _price_list()


@blueprint.route("/prices", methods=["PUT"])
@blueprint.arguments(schemas.PriceSet())
@blueprint.response(200, schemas.PriceList)
def set_price(body: dict):
    """Set a price (operator role); answers every price"""
    usage_service.set_price(body["measure"], body["price"], body["per"], body["model"])
    return _price_list()


@blueprint.route("/prices", methods=["DELETE"])
@blueprint.arguments(schemas.PriceKey(), location="query")
@blueprint.response(200, schemas.PriceList)
@blueprint.alt_response(404, schema=ErrorSchema, description="no such price")
def delete_price(key: dict):
    """Remove a price (operator role); usage it priced shows as unpriced again"""
    usage_service.delete_price(key["measure"], key["model"])
    return _price_list()


def _price_list() -> dict:
    return {
        "currency": usage_service.currency(),
        "items": [usage_service.describe_price(p) for p in usage_service.prices()],
    }
