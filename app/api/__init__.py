"""HTTP entry points: the API's blueprints, schemas, bearer-key auth, one JSON error shape,
SSE, and the OpenAPI spec with its docs pages (assets served from `static/vendor`)."""

import flask
import flask_smorest

from app.api import (
    account,
    admin,
    auth,
    batches,
    errors,
    health,
    limits,
    media,
    metrics,
    parsing,
    schedules,
    task_types,
    tasks,
    usage,
)
from app.api import webhooks as webhooks_api

SPEC = {
    "API_TITLE": "Conveyor",
    "API_VERSION": "1",
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": "/api/static/vendor/swagger-ui/",
    "OPENAPI_REDOC_PATH": "redoc",
    "OPENAPI_REDOC_URL": "/api/static/vendor/redoc/redoc.standalone.js",
    "API_SPEC_OPTIONS": {
        "info": {"description": "Typed, prioritized tasks run by pluggable processors. See README.md."},
        "security": [{"bearerAuth": []}],
        "components": {"securitySchemes": {"bearerAuth": auth.SCHEME}},
    },
}


class Api(flask_smorest.Api):
    """flask-smorest's Api with Conveyor's error shape in the spec."""

    ERROR_SCHEMA = errors.ErrorSchema


def init_app(app: flask.Flask, registry) -> Api:
    """Register the health checks, the API blueprints (typed endpoints from `registry`), the
    spec and docs pages, the vendored assets and the error handlers on `app`."""
    for key, value in SPEC.items():
        app.config.setdefault(key, value)
    app.request_class = parsing.Request  # the dashboard's forms are held to the body limit too
    app.register_blueprint(health.blueprint)
    metrics.init_app(app)
    app.register_blueprint(
        flask.Blueprint("api_static", __name__, static_folder="static", static_url_path="/api/static")
    )
    limits.init_app(app)
    api = Api(app)
    api.register_blueprint(account.blueprint)
    api.register_blueprint(admin.blueprint)
    api.register_blueprint(tasks.blueprint)
    api.register_blueprint(batches.blueprint)
    api.register_blueprint(task_types.blueprint)
    api.register_blueprint(task_types.typed_blueprint(registry))
    api.register_blueprint(media.blueprint)
    api.register_blueprint(usage.blueprint)
    api.register_blueprint(webhooks_api.blueprint)
    api.register_blueprint(schedules.blueprint)
    app.extensions["conveyor_api"] = api
    errors.register(app)
    return api
