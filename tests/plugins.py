"""Processors that exist only for the tests: they misbehave on purpose (ignore the soft
timeout, ignore cancel) so the tests can check that the queue enforces its limits anyway.
Workers load them through the CONVEYOR_PROCESSORS setting, as a deployment would.
"""

import time

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


PATHS = "tests.plugins:SoftAwareProcessor,tests.plugins:StubbornProcessor"
