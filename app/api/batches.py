"""`POST /api/tasks/batch`: submit up to 1000 tasks in one request, stored all or none
(`services.batches`). Each task counts against the submit rate limits and the waiting quota."""

from app.api import auth, limits, parsing, schemas
from app.api.tasks import submit_refusals
from app.services import batches

blueprint = parsing.Blueprint(
    "batches", __name__, url_prefix="/api/tasks/batch", description="Many tasks in one request"
)
blueprint.before_request(auth.authenticate)


@blueprint.route("", methods=["POST"])
@blueprint.arguments(schemas.BatchSubmit())
@blueprint.arguments(schemas.BatchIdempotencyHeader(), location="headers")
@blueprint.response(202, schemas.BatchSubmitted)
@submit_refusals(blueprint)
def submit_batch(body: dict, headers: dict):
    """Submit many tasks at once

    Up to 1000 tasks, each as `POST /api/tasks` takes it, stored in one transaction: a 202
    means every one is stored and will run; any refusal stores none. A 422 names every bad
    task's fields under `tasks.<index>`. Each task counts against the submit rate limits and
    the waiting quota. With an `Idempotency-Key` header, a repeat in the same account returns
    the first batch's tasks (`created: false`).
    """
    caller = auth.caller()
    items = body["tasks"]
    limits.check_submit(caller, cost=len(items))
    found, created = batches.submit(
        items,
        account_id=caller.account_id,
        user_id=caller.user_id,
        idempotency_key=headers.get("idempotency_key"),
        role=caller.role,
    )
    return {"created": created, "count": len(found), "tasks": found}, 202
