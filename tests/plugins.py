"""Processors that exist only for the tests: they misbehave on purpose (ignore the soft
timeout, ignore cancel) so the tests can check that the queue enforces its limits anyway.
Workers load them through the CONVEYOR_PROCESSORS setting, as a deployment would.
"""

import time

import marshmallow

from processors import base, errors
from processors.policy import Policy


class SoftAwareProcessor(base.Processor):
    """Sleeps; on the soft timeout it logs its cleanup and stops."""

    type = "soft_aware"
    policy = Policy(max_attempts=1, soft_timeout=1.0, hard_timeout=10.0, pool="cpu", estimate=1)

    def run(self, params, ctx):
        try:
            ctx.progress(0, "working")
            ctx.sleep(30)
        except errors.SoftTimeout:
            ctx.log("cleaning up after soft timeout")
            raise
        return {}


class StubbornProcessor(base.Processor):
    """Ignores the soft timeout and cancel: only a hard stop ends it."""

    type = "stubborn"
    policy = Policy(
        max_attempts=2, backoff_base=0.5, backoff_cap=1, soft_timeout=1.0, hard_timeout=2.5, pool="cpu", estimate=1
    )

    def run(self, params, ctx):
        ctx.progress(0, "ignoring everything")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                time.sleep(0.1)
            except errors.SoftTimeout:
                ctx.logs.append("ignored the soft timeout")
        return {}


class FanOutParams(marshmallow.Schema):
    count = marshmallow.fields.Integer(load_default=2)
    seconds = marshmallow.fields.Float(load_default=0.5)
    fail_once = marshmallow.fields.Boolean(load_default=False)


class FanOutProcessor(base.Processor):
    """Submits `count` sleep children, then waits for them, reporting their mean progress; fails
    on the first attempt after submitting when `fail_once` (so a retry must not add children)."""

    type = "fan_out"
    Params = FanOutParams
    policy = Policy(max_attempts=2, backoff_base=0.1, backoff_cap=0.2, soft_timeout=60, hard_timeout=70, pool="io")

    def run(self, params, ctx):
        count, seconds = params["count"], params["seconds"]
        for index in range(count):
            ctx.submit_child("sleep", {"seconds": seconds}, key=f"child-{index}")
        if params["fail_once"] and ctx.attempt == 1:
            raise errors.RetryableError("failing once after submitting the children")
        while True:
            children = ctx.children_status()
            ctx.progress(sum(c["progress"] for c in children) / len(children), "waiting for children")
            if all(c["status"] in ("succeeded", "failed", "cancelled") for c in children):
                return {"children": {c["key"]: c["status"] for c in children}}
            ctx.sleep(0.2)


PATHS = "tests.plugins:SoftAwareProcessor,tests.plugins:StubbornProcessor,tests.plugins:FanOutProcessor"
