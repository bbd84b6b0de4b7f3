"""`flaky`: fails its first `times` attempts with a chosen error kind, then succeeds."""

import marshmallow
from marshmallow import validate

from processors import base, errors
from processors.policy import Policy


class Params(marshmallow.Schema):
    times = marshmallow.fields.Integer(
        load_default=1,
        validate=validate.Range(min=0, max=100),
        metadata={"description": "How many attempts fail before one succeeds."},
    )
    error = marshmallow.fields.String(
        load_default="retryable",
        validate=validate.OneOf(["retryable", "permanent"]),
        metadata={"description": "The kind of error the failing attempts raise."},
    )


class FlakyProcessor(base.Processor):
    """Raise on attempts 1..times, succeed after."""

    type = "flaky"
    description = "Fails `times` attempts with a retryable or permanent error, then succeeds."
    Params = Params
    policy = Policy(
        max_attempts=5, backoff_base=1, backoff_cap=30, soft_timeout=10, hard_timeout=15, pool="io", estimate=0.1
    )

    def run(self, params: dict, ctx: base.Context) -> dict:
        ctx.progress(50, "deciding")
        if ctx.attempt <= params["times"]:
            kind = errors.RetryableError if params["error"] == "retryable" else errors.PermanentError
            raise kind(f"flaky failure {ctx.attempt} of {params['times']} ({params['error']})")
        return {"succeeded_on_attempt": ctx.attempt}
