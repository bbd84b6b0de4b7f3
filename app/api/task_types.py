"""`/api/task-types`, and the typed submit endpoints, one per registered type:
`POST /api/<endpoint>/generate`, each with its own request schema in the spec."""

import dataclasses

import flask
import marshmallow as ma

from app import runtime
from app.api import auth, parsing, schemas
from app.api import tasks as tasks_api
from processors import providers

blueprint = parsing.Blueprint("task_types", __name__, url_prefix="/api", description="Task types")
blueprint.before_request(auth.authenticate)


def endpoint_name(cls) -> str:
    """Return the typed endpoint's path segment of a processor class."""
    return cls.endpoint or cls.type.replace("_", "-")


def describe(registry, settings: dict, converter) -> list[dict]:
    """Return each type with its params JSON Schema, policy and provider availability."""
    described = []
    for name in registry.types():
        cls = registry.processor_class(name)
        reasons = providers.availability(cls.providers, settings)
        optional = providers.availability(cls.optional_providers, settings)
        described.append(
            {
                "type": name,
                "description": cls.description or (cls.__doc__ or "").strip().split("\n")[0],
                "endpoint": f"/api/{endpoint_name(cls)}/generate",
                "params_schema": converter.schema2jsonschema(cls.Params),
                "policy": dataclasses.asdict(registry.policy(name)),
                "available": all(reason is None for reason in reasons.values()),
                "providers": [
                    {"name": provider, "configured": reason is None, "required": True, "reason": reason}
                    for provider, reason in reasons.items()
                ]
                + [
                    {"name": provider, "configured": reason is None, "required": False, "reason": reason}
                    for provider, reason in optional.items()
                ],
            }
        )
    return described


@blueprint.route("/task-types", methods=["GET"])
@blueprint.response(200, schemas.TaskType(many=True))
def list_types():
    """Every task type: its params schema, policy, and whether its providers are configured"""
    conveyor = runtime.current()
    converter = flask.current_app.extensions["conveyor_api"].ma_plugin.converter
    return describe(conveyor.registry, conveyor.settings, converter)


def typed_blueprint(registry) -> parsing.Blueprint:
    """Return a new blueprint with `POST /api/<endpoint>/generate` for every registered type
    (one per app: the registry differs between apps)."""
    typed = parsing.Blueprint("typed", __name__, url_prefix="/api", description="One submit endpoint per task type")
    typed.before_request(auth.authenticate)
    seen: dict[str, str] = {}
    for name in registry.types():
        cls = registry.processor_class(name)
        segment = endpoint_name(cls)
        if segment in seen:
            raise RuntimeError(f"types {seen[segment]!r} and {name!r} both want /api/{segment}/generate")
        seen[segment] = name
        typed.route(f"/{segment}/generate", methods=["POST"], endpoint=f"generate_{name}")(_typed_view(typed, cls))
    return typed


def _typed_view(typed: parsing.Blueprint, cls):
    camel = "".join(part.capitalize() for part in cls.type.split("_"))
    params = type(f"{camel}Params", (cls.Params,), {})
    body = type(
        f"{camel}Submit",
        (schemas.SubmitOptions,),
        {"params": ma.fields.Nested(params, load_default=dict, metadata={"description": f"params of `{cls.type}`"})},
    )

    # A type whose params all have defaults may be submitted with no body at all.
    @typed.arguments(body(), required=_needs_params(cls.Params))
    @typed.arguments(schemas.IdempotencyHeader(), location="headers")
    @typed.response(202, schemas.Submitted)
    @tasks_api.submit_refusals(typed)
    def view(payload: dict | None, headers: dict):
        # The schema above validated the body; the service validates the raw params again, as
        # it does for every submit, and stores their dumped form.
        raw_params = (flask.request.get_json(silent=True) or {}).get("params")
        return tasks_api.submit_for_caller(cls.type, raw_params, payload or {}, headers)

    view.__name__ = f"generate_{cls.type}"
    view.__doc__ = f"Submit a `{cls.type}` task\n\n{cls.description or ''}"
    return view


def _needs_params(params_class) -> bool:
    """Whether a type's params have a required field (its typed endpoint then needs a body)."""
    return any(field.required for field in params_class().fields.values())
