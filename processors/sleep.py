"""`sleep`: sleeps `seconds`, reporting progress and honouring cancel; for demos and tests."""

import math

import marshmallow
from marshmallow import validate

from processors import base
from processors.policy import Policy


class Params(marshmallow.Schema):
    seconds = marshmallow.fields.Float(
        load_default=1.0,
        validate=validate.Range(min=0, max=3600),
        metadata={"description": "How long to sleep, 0-3600 s."},
    )


class SleepProcessor(base.Processor):
    """Sleep in small steps, reporting progress after each."""

    type = "sleep"
    description = "Sleeps for `seconds`, reporting progress; honours cancel."
    Params = Params
    policy = Policy(max_attempts=3, soft_timeout=3700, hard_timeout=3720, pool="cpu", estimate=5)

    def run(self, params: dict, ctx: base.Context) -> dict:
        seconds = params["seconds"]
        steps = min(100, max(1, math.ceil(seconds * 4)))
        ctx.progress(0, "sleeping")
        for step in range(1, steps + 1):
            ctx.sleep(seconds / steps)
            ctx.progress(100 * step / steps, "sleeping", f"{seconds * step / steps:.2f}s of {seconds:g}s")
        return {"slept": seconds}
