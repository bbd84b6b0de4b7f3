"""`GET /metrics`: Prometheus metrics in the text format, outside the API's key authentication
(a bearer `CONVEYOR_METRICS_TOKEN` when set), and the hooks that time every HTTP request for
them (`app.services.metrics`)."""

import hmac
import re
import time

import flask
import prometheus_client

from app import runtime
from app.api import errors
from app.services import metrics

# A route's label is its template without converters: `/api/tasks/<task_id>`, not `<uuid:task_id>`.
CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")

blueprint = flask.Blueprint("metrics", __name__)


@blueprint.get("/metrics")
def scrape():
    token = runtime.current().settings["CONVEYOR_METRICS_TOKEN"]
    given = flask.request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if token and not hmac.compare_digest(given.encode(), token.encode()):
        response = errors.respond(401, "the metrics need Authorization: Bearer <CONVEYOR_METRICS_TOKEN>")
        response.headers["WWW-Authenticate"] = 'Bearer realm="conveyor-metrics"'
        return response
    return flask.Response(metrics.exposition(), content_type=prometheus_client.CONTENT_TYPE_LATEST)


def init_app(app: flask.Flask) -> None:
    """Register `/metrics` and time every request of `app` (API, dashboard, health)."""
    app.register_blueprint(blueprint)
    app.before_request(_start)
    app.after_request(_count)


def _start() -> None:
    flask.g.metrics_started = time.perf_counter()


def _count(response: flask.Response) -> flask.Response:
    started = flask.g.pop("metrics_started", None)
    if started is not None:
        rule = flask.request.url_rule
        route = CONVERTER.sub(r"<\1>", rule.rule) if rule is not None else "unmatched"
        metrics.METER.observe(route, flask.request.method, response.status_code, time.perf_counter() - started)
    return response
