"""Firing schedules, a job of each sweeper round: every unpaused schedule whose `next_fire_at`
has come submits its task and moves on to its next fire time, in one transaction per fire.

Exactly one task per fire time: the task is submitted through `lifecycle.submit` with the
idempotency key `schedule:<id>:<fire time, ISO 8601 UTC>` in the schedule's account, the
schedule's row is locked while it fires (`FOR UPDATE SKIP LOCKED` on PostgreSQL: a second
sweeper skips it), and the move to the next fire time is a compare-and-set on the fire time
read (`sql.advance_schedule`). A round that dies before its commit leaves the fire time due
for the next round; one that committed has moved it on. Two firers at once, a retried round
or a restarted sweeper: one task per fire time.

Misfires: a fire time more than `grace_seconds` late (the sweeper was down, the database was
away) is missed. Policy "catch_up" submits one task, for the latest fire time due, however many
were missed; "skip" submits none. Both then go on from the next fire time after now. Fire
times within the grace period each fire, in order (at most `MAX_FIRES` a round per schedule).

A fire the queue refuses (the waiting quota, a type no longer registered, params the type no
longer accepts, an unknown priority) stores nothing but `last_error` and moves on: that fire
time is spent, the next one tries again. Each fire counts into
`conveyor_schedule_fires_total{outcome="created"|"skipped"|"refused"}`.
"""

import dataclasses
import datetime
import logging
import uuid

from sqlalchemy import orm

from app.queue import errors, lifecycle, sql, timing, totals
from processors import errors as processor_errors
from processors import registry as registry_module

log = logging.getLogger("conveyor.schedules")
METRIC = "conveyor_schedule_fires_total"
OUTCOMES = ("created", "skipped", "refused")
# Fire times within the grace period a schedule fires in one round at most; the rest wait for
# the next round (an interval far below the sweep interval cannot flood a round).
MAX_FIRES = 100
# What a submit refuses for its input or the account's quota (anything else is a failure).
REFUSALS = (errors.UnknownTaskType, errors.QuotaExceeded, processor_errors.InvalidParams, ValueError)


@dataclasses.dataclass(frozen=True)
class Firing:
    """How the sweeper fires: the grace period, and the submit's platform defaults."""

    grace_seconds: float = 60.0
    max_waiting: int | None = None
    fair: bool = True
    batch: int = 500


def idempotency_key(schedule_id: uuid.UUID, fire_time: datetime.datetime) -> str:
    """Return the idempotency key of a schedule's task for one fire time."""
    return f"schedule:{schedule_id}:{fire_time.astimezone(datetime.UTC).isoformat()}"


def fire_due(
    session_factory: orm.sessionmaker,
    registry: registry_module.Registry,
    firing: Firing,
    at: datetime.datetime | None = None,
) -> dict[str, int]:
    """Fire every schedule due at `at` (now); return the fires by outcome."""
    at = at or lifecycle.now()
    counts = dict.fromkeys(OUTCOMES, 0)
    with session_factory() as session:
        due = session.scalars(sql.due_schedules(), {"now": at, "limit": firing.batch}).all()
    for schedule_id in due:
        try:
            outcomes = _fire_schedule(session_factory, registry, schedule_id, firing, at)
        except errors.DATABASE_AWAY:
            raise  # every other schedule would fail the same way: the round says so once
        except Exception:
            # One broken schedule (a processor's params hook raising, say) holds up no other.
            log.exception("schedule %s: firing failed; trying again next round", schedule_id)
            continue
        for outcome in outcomes:
            counts[outcome] += 1
    return counts


def _fire_schedule(session_factory, registry, schedule_id: uuid.UUID, firing: Firing, at) -> list[str]:
    """Fire one schedule's due fire times, one transaction each; return their outcomes."""
    outcomes = []
    for _ in range(MAX_FIRES):
        with session_factory() as session:
            outcome = fire_one(session, registry, schedule_id, firing, at)
            session.commit()
        if outcome is None:
            break
        outcomes.append(outcome)
    return outcomes


def fire_one(
    session: orm.Session, registry: registry_module.Registry, schedule_id: uuid.UUID, firing: Firing, at
) -> str | None:
    """Fire the schedule's next fire time if it is due at `at`; return the outcome, or None if
    it is not due (or another firer has it). The caller commits."""
    row = session.execute(sql.take_due_schedule(), {"schedule_id": schedule_id, "now": at}).first()
    if row is None:
        return None
    missed = (at - row.next_fire_at).total_seconds() > firing.grace_seconds
    fire_time = timing.latest_due(row, row.next_fire_at, at) if missed else row.next_fire_at
    # The move comes first: it is the compare-and-set, and on SQLite its write begins the
    # transaction (and takes the write lock) that the submit's savepoint then nests in.
    if not _advance(session, row, timing.following(row, fire_time)):
        return None
    if missed and row.misfire == "skip":
        return _count(session, "skipped")
    return _submit(session, registry, row, fire_time, firing)


def _submit(session: orm.Session, registry, row, fire_time, firing: Firing) -> str:
    try:
        task, _ = lifecycle.submit(
            session,
            registry,
            type=row.type,
            params=row.params,
            account_id=row.account_id,
            user_id=row.user_id,
            priority=row.priority,
            idempotency_key=idempotency_key(row.id, fire_time),
            fair=firing.fair,
            max_waiting=firing.max_waiting,
        )
    except REFUSALS as exc:
        log.warning("schedule %s: the fire at %s was refused: %s", row.id, fire_time.isoformat(), exc)
        session.execute(sql.record_fire(row.id, last_fire_at=fire_time, last_error=_refusal(exc, fire_time)))
        return _count(session, "refused")
    session.execute(sql.record_fire(row.id, last_fire_at=fire_time, last_task_id=task.id, last_error=None))
    return _count(session, "created")


def _refusal(exc: Exception, fire_time: datetime.datetime) -> dict:
    """Return the stored form of a refused fire."""
    message = str(exc) if not isinstance(exc, processor_errors.InvalidParams) else f"invalid params: {exc.errors}"
    return {"type": type(exc).__name__, "message": message[:1000], "fire_time": fire_time.isoformat()}


def _advance(session: orm.Session, row, next_fire_at: datetime.datetime) -> bool:
    """Move the schedule on to `next_fire_at`; False (and nothing written) if another firer
    moved it first."""
    moved = session.execute(
        sql.advance_schedule(row.id, row.next_fire_at, next_fire_at=next_fire_at, updated_at=lifecycle.now())
    )
    if moved.rowcount != 1:
        session.rollback()
        return False
    return True


def _count(session: orm.Session, outcome: str) -> str:
    """Count a fire into the metric's totals, in the fire's transaction; return its outcome."""
    deltas = totals.Deltas()
    deltas.add(METRIC, {"outcome": outcome})
    deltas.write(session)
    return outcome
