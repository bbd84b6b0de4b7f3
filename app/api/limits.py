"""Submit rate limits per API key and per account (flask-limiter, moving window), on every
submit over HTTP: `POST /api/tasks`, the typed endpoints and the dashboard's form.

- per key: `CONVEYOR_SUBMIT_RATE` (default `50/second`);
- per account, across all its keys: the account's `submit_rate`, else
  `CONVEYOR_ACCOUNT_SUBMIT_RATE` (default: the same as per key).

Burst: a rate R per period is enforced as a moving window of k·R per k periods, where
k = ceil(CONVEYOR_SUBMIT_BURST / the key rate's R) (default 100 / 50 = 2: "100 per 2 seconds").
So a quiet key may send 100 at once, and a steady one gets 50 a second.

A refusal is 429 `rate_limit` with `Retry-After` (seconds) and `RateLimit-Limit`,
`RateLimit-Remaining`, `RateLimit-Reset` (Unix time); every submit answer carries the
`RateLimit-*` headers of its tightest limit. Storage: `CONVEYOR_RATE_LIMIT_STORAGE`, by
default the broker's Redis, or `memory://` (per process) on the embedded default. If the
storage is down, submits are let through and the error is logged: accepting work matters
more than counting it. A batch submit would pass `cost=` its number of tasks.
"""

import math

import flask
import flask_limiter
import limits as limits_notation
from flask_limiter import HeaderNames

from app import runtime
from app.api import errors
from app.services import accounts

EXTENSION_KEY_PREFIX = "conveyor-submits"
HEADERS = {
    HeaderNames.LIMIT: "RateLimit-Limit",
    HeaderNames.REMAINING: "RateLimit-Remaining",
    HeaderNames.RESET: "RateLimit-Reset",
    HeaderNames.RETRY_AFTER: "Retry-After",
}
# Who submits, and how many tasks, for the key functions of this request.
CALLER, COST = "conveyor_rate_caller", "conveyor_rate_cost"


def _key() -> str:
    return f"key:{flask.g.get(CALLER).key_id}"


def _account() -> str:
    return f"account:{flask.g.get(CALLER).account_id}"


def _cost() -> int:
    return flask.g.get(COST, 1)


limiter = flask_limiter.Limiter(
    key_func=_key,
    headers_enabled=True,
    header_name_mapping=HEADERS,
    strategy="moving-window",
    swallow_errors=True,
    retry_after="delta-seconds",
    key_prefix=EXTENSION_KEY_PREFIX,
)


def init_app(app: flask.Flask) -> None:
    """Bind the limiter to `app`, with its storage, and answer refusals in the API's shape."""
    app.config["RATELIMIT_STORAGE_URI"] = app.config["CONVEYOR_RATE_LIMIT_STORAGE"]
    app.after_request(_retry_after_on_refusals_only)  # runs after the limiter's own hook
    limiter.init_app(app)
    app.register_error_handler(flask_limiter.RateLimitExceeded, _refused)


def key_rate() -> str:
    """The per-key limit in force, burst included (a flask-limiter rate string)."""
    settings = runtime.current().settings
    return with_burst(settings["CONVEYOR_SUBMIT_RATE"])


def account_rate() -> str:
    """The per-account limit of this request's caller, burst included."""
    conveyor = runtime.current()
    caller = flask.g.get(CALLER)
    if caller is None:  # flask-limiter reads the limits early, before any view runs; unused then
        return with_burst(conveyor.settings["CONVEYOR_ACCOUNT_SUBMIT_RATE"])
    account_id = caller.account_id
    seconds = conveyor.settings["CONVEYOR_AUTH_CACHE_SECONDS"]
    own = conveyor.memo(("submit_rate", account_id), seconds, lambda: accounts.get(account_id).submit_rate)
    return with_burst(own or conveyor.settings["CONVEYOR_ACCOUNT_SUBMIT_RATE"])


def with_burst(rate: str) -> str:
    """Return `rate` as the moving window that allows the configured burst."""
    settings = runtime.current().settings
    base = limits_notation.parse(settings["CONVEYOR_SUBMIT_RATE"]).amount
    factor = max(1, math.ceil(settings["CONVEYOR_SUBMIT_BURST"] / base))
    item = limits_notation.parse(rate)
    return f"{item.amount * factor} per {item.multiples * factor} {item.GRANULARITY.name}"


_per_key = limiter.shared_limit(key_rate, scope="key", key_func=_key, cost=_cost)
_per_account = limiter.shared_limit(account_rate, scope="account", key_func=_account, cost=_cost)


@_per_key
@_per_account
def _count() -> None:
    """Count a submit against both limits (the decorators do; RateLimitExceeded if over)."""


def check_submit(caller: accounts.Caller, cost: int = 1) -> None:
    """Count `cost` submits of `caller` against its key's and its account's rates; raise
    flask_limiter.RateLimitExceeded (answered as 429 `rate_limit`) if either is spent."""
    setattr(flask.g, CALLER, caller)
    setattr(flask.g, COST, cost)
    _count()
    _headers_show_the_tightest()


def _headers_show_the_tightest() -> None:
    # flask-limiter's headers describe the first limit it checked; a client wants the one it
    # will run out of first.
    context = limiter.context
    if len(context.view_rate_limits) > 1:
        context.view_rate_limit = min(context.view_rate_limits, key=lambda limit: limit.remaining)


def _refused(exc: flask_limiter.RateLimitExceeded) -> flask.Response:
    message = f"too many submits: the limit is {exc.limit.limit}; retry after the Retry-After seconds"
    response = errors.respond(429, message, {}, "rate_limit")
    extra = {"limit": str(exc.limit.limit), "scope": exc.limit.scope}  # scope: "key" or "account"
    response.set_data(flask.json.dumps({**response.get_json(), **extra}))
    return response


def _retry_after_on_refusals_only(response: flask.Response) -> flask.Response:
    # flask-limiter writes Retry-After on every limited answer; it means something on a 429
    # only. An answer with a Retry-After of its own (a 503) keeps that one.
    if response.status_code != 429:
        response.headers.pop("Retry-After", None)
    own = getattr(response, errors.OWN_RETRY_AFTER, None)
    if own is not None:
        response.headers["Retry-After"] = own
    return response
