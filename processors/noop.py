"""`noop`: does nothing and succeeds; for health checks and queue benchmarks."""

import marshmallow

from processors import base
from processors.policy import Policy


class Params(marshmallow.Schema):
    echo = marshmallow.fields.Raw(load_default=None, metadata={"description": "Returned as is."})


class NoopProcessor(base.Processor):
    """Succeed at once, returning `echo`."""

    type = "noop"
    description = "Does nothing and succeeds; for health checks and benchmarks."
    Params = Params
    policy = Policy(max_attempts=1, soft_timeout=10, hard_timeout=15, pool="cpu", estimate=0.01)

    def run(self, params: dict, ctx: base.Context) -> dict:
        return {"echo": params["echo"]}
