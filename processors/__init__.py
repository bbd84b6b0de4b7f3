"""Processors: the plugin package. One module per task type, the contract in `base`, the
registry in `registry`, outside services behind `providers/`. Imports no Flask, SQLAlchemy or
Celery: a processor sees the world only through its context.
"""

# The built-in task types, in the order `processors list` shows them.
BUILTIN = [
    "processors.noop:NoopProcessor",
    "processors.sleep:SleepProcessor",
    "processors.flaky:FlakyProcessor",
]
