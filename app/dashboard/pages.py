"""Helpers every dashboard page uses: the error page, telling htmx requests apart, the
post-redirect-get answer of an action, and the templates' formatting helpers."""

import datetime
import json

import flask

from app import models
from app.dashboard import forms


def error(status: int, message: str) -> tuple[str, int]:
    """Render the dashboard's error page with `status`."""
    return flask.render_template("dashboard/error.html", status=status, message=message), status


def is_htmx() -> bool:
    """Tell whether htmx made this request (it wants a fragment, not a page)."""
    return flask.request.headers.get("HX-Request") == "true"


def done(message: str, endpoint: str, category: str = "info", **values) -> flask.Response:
    """Flash `message` and redirect to `endpoint` (303: the browser follows with a GET)."""
    flask.flash(message, category)
    return flask.redirect(flask.url_for(endpoint, **values), code=303)


def helpers() -> dict:
    """Formatting helpers every dashboard template may use."""
    return {
        "when": when,
        "duration": duration,
        "wait_time": wait_time,
        "pretty": pretty,
        "label_of": forms.label_of,
        "priority_name": priority_name,
    }


def priority_name(priority: int) -> str:
    """Return a priority's name (`normal`) from its number."""
    return models.Priority(priority).name.lower()


def when(moment: datetime.datetime | None) -> str:
    """Return a time as `YYYY-MM-DD HH:MM:SS UTC` ("—" for none)."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def duration(seconds: float | None) -> str:
    """Return a duration in words a person reads at a glance ("—" for none)."""
    if seconds is None:
        return "—"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def wait_time(seconds: float | None) -> str:
    """Return a queue wait, to the millisecond under a second ("—" for none)."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s" if seconds < 60 else duration(seconds)


def pretty(value) -> str:
    """Return a value as indented JSON."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
