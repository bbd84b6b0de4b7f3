"""The usage page: metered usage (tokens, characters of speech, images, seconds) and its cost
per UTC day over the last days, with the prices it is billed at. Operators see every
account's; others see their own account's (as `/api/usage`)."""

import datetime

import flask

from app.dashboard import session
from app.services import usage as usage_service

blueprint = flask.Blueprint("usage", __name__)
blueprint.before_request(session.require_caller)

# The page shows this many days up to today.
DAYS = 30


@blueprint.route("/usage")
def usage():
    """Render the usage page."""
    caller = session.caller()
    until = datetime.datetime.now(datetime.UTC).date()
    since = until - datetime.timedelta(days=DAYS - 1)
    report = usage_service.daily(None if caller.is_operator else caller.account_id, since, until)
    return flask.render_template(
        "dashboard/usage.html",
        report=report,
        scope="all accounts" if caller.is_operator else "your account",
        prices=[usage_service.describe_price(p) for p in usage_service.prices()],
    )
