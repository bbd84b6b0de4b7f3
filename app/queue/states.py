"""The task state machine: the states, the moves between them, and what causes each move.

    queued --claim--> running --finish--> succeeded
      |                 |  |---fail (attempts left)----> queued (run_at = now + backoff)
      |                 |  |---fail (permanent / last)-> failed
      |                 |  '---cancel (seen by run)----> cancelled
      '--cancel--> cancelled
    failed, cancelled --retry (by a person)--> queued

A lease that expires (the worker died) counts as a failed attempt: queued or failed by
policy, or cancelled if a cancel was asked for.
"""

from app.models import Status

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.RUNNING, Status.CANCELLED}),
    Status.RUNNING: frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.QUEUED}),
    Status.SUCCEEDED: frozenset(),
    Status.FAILED: frozenset({Status.QUEUED}),
    Status.CANCELLED: frozenset({Status.QUEUED}),
}

TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})

# What a person (API, CLI) may ask for, and the states each request starts from. A running
# task is asked to cancel, not moved: its attempt ends itself at the next heartbeat.
REQUESTS: dict[str, frozenset[Status]] = {
    "cancel": frozenset({Status.QUEUED, Status.RUNNING}),
    "retry": frozenset({Status.FAILED, Status.CANCELLED}),
}


def can_move(source: str, target: str) -> bool:
    """Tell whether a task may go from state `source` to state `target`."""
    return Status(target) in TRANSITIONS[Status(source)]


def sources(target: Status) -> list[str]:
    """Return the states from which a task may move to `target`."""
    return [str(s) for s, targets in TRANSITIONS.items() if target in targets]
