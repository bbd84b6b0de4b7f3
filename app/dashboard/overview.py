"""The overview page: counts by status, type and priority, the last hour's or day's
(`?window=day`) throughput and failures, workers seen recently, what is paused, and the oldest
waiting task. Operators see the whole queue (`queue.status()`, as `/api/tasks/queue/status`),
with throughput and queue wait p50/p95 per pool from the metrics' per-minute counts; account
admins and members see their account's throughput. Everyone sees their account's quotas and
usage (as `/api/account`)."""

import flask

from app.dashboard import chart, session, stats
from app.extensions import db
from app.models import Priority
from app.queue import control, lifecycle
from app.services import accounts
from app.services import queue as queue_service

blueprint = flask.Blueprint("overview", __name__)
blueprint.before_request(session.require_caller)

# The live part of the page reloads itself this often (htmx polling).
POLL_SECONDS = 5


@blueprint.route("/")
def overview():
    """Render the overview page."""
    return flask.render_template("dashboard/overview.html", poll_seconds=POLL_SECONDS, **figures(_window()))


@blueprint.route("/overview/live")
def live():
    """Render the overview's live part alone (htmx polls it)."""
    return flask.render_template("dashboard/_overview_live.html", poll_seconds=POLL_SECONDS, **figures(_window()))


def _window() -> str:
    # An unknown window is the default one, not an error: the page is reached by links.
    window = flask.request.args.get("window", "hour")
    return window if window in stats.WINDOWS else "hour"


def figures(window: str = "hour") -> dict:
    """Return what the overview shows to the signed-in caller."""
    caller = session.caller()
    if caller.is_operator:
        status = queue_service.status()
    else:
        status = {**stats.counts(caller.account_id), "paused": control.paused(db.session), "workers": None}
    oldest = stats.oldest_waiting(caller.account_id)
    waited = (lifecycle.now() - oldest.created_at).total_seconds() if oldest else None
    return {
        "scope": "all accounts" if caller.is_operator else "your account",
        "account": accounts.describe(accounts.get(caller.account_id)),
        "status": status,
        "priorities": [p.name.lower() for p in Priority],
        **_charts(caller, window),
        "oldest": oldest,
        "oldest_seconds": waited,
    }


def _charts(caller, window: str) -> dict:
    """The throughput chart (the caller's account, or everything for operators) and, for
    operators, each pool's queue wait chart."""
    size = stats.WINDOWS[window][1]
    span = {"window": window, "windows": list(stats.WINDOWS), "slice_minutes": int(size.total_seconds() // 60)}
    if not caller.is_operator:
        return {**span, "chart": chart.bars(stats.throughput(caller.account_id, window)), "waits": {}}
    found = stats.platform(window)
    waits = {pool: chart.lines(slices) for pool, slices in found["waits"].items()}
    return {**span, "chart": chart.bars(found["throughput"]), "waits": waits}
