"""Retention: the sweeper deletes finished tasks once they are older than their keep time.

A keep time is set per final state (CONVEYOR_RETAIN_SUCCEEDED, _FAILED, _CANCELLED) and may be
set per type in its policy (`retain_succeeded` ...); "forever" keeps them. `rules` turns these
into one rule per state and type. A pass (`sweep`) takes the rules in turn and deletes the
tasks past their time, oldest first, `batch` a transaction: the task rows, their events and
artifact rows, then the artifact files after the commit. It stops after `max_batches`, so no
lock is held long and a backlog is worked off over a few passes. A task whose child tasks
remain is kept until they go (they end first, so they go first). Usage records stay (billing).
Tasks of a type no longer installed have no keep time here: `manage.py tasks purge` ends them.
"""

import dataclasses
import datetime
import logging
import uuid

import sqlalchemy as sa
from sqlalchemy import orm

from app import models
from app.queue import lifecycle, sql, totals
from processors import policy as policy_module

log = logging.getLogger("conveyor.retention")
SETTINGS = {status: f"CONVEYOR_RETAIN_{status.upper()}" for status in policy_module.RETAINED}


@dataclasses.dataclass(frozen=True)
class Rule:
    """Tasks of `type` that ended `status` are deleted `keep_seconds` after they ended."""

    status: str
    type: str
    keep_seconds: float


def rules(registry, settings: dict) -> list[Rule]:
    """Return the rule of every installed type and final state that is not kept forever."""
    found = []
    for status, setting in SETTINGS.items():
        for type_ in registry.types():
            keep = registry.policy(type_).retention(status, settings[setting])
            if keep is not None:
                found.append(Rule(status, type_, keep))
    return found


@dataclasses.dataclass
class Report:
    """What one pass deleted: tasks by final state, files it could not delete, and whether it
    stopped at its batch limit with more to do."""

    deleted: dict[str, int] = dataclasses.field(default_factory=dict)
    file_errors: int = 0
    more: bool = False

    def total(self) -> int:
        return sum(self.deleted.values())


def sweep(session_factory: orm.sessionmaker, storage, found: list[Rule], batch: int, max_batches: int) -> Report:
    """Delete what the rules say is past its time, at most `max_batches` batches of `batch`
    tasks (a rule that finds nothing costs one index probe, and no batch)."""
    report, batches, at = Report(), 0, lifecycle.now()
    for rule in found:
        before = at - datetime.timedelta(seconds=rule.keep_seconds)
        while gone := _delete_batch(session_factory, rule, before, batch):
            batches += 1
            report.deleted[rule.status] = report.deleted.get(rule.status, 0) + len(gone)
            report.file_errors += delete_files(storage, gone)
            if batches >= max_batches:
                report.more = True
                return report
            if len(gone) < batch:
                break
    return report


def _delete_batch(session_factory: orm.sessionmaker, rule: Rule, before: datetime.datetime, batch: int) -> list:
    still = sql.ended_before(rule.status, rule.type, before)
    with session_factory() as session:
        ids = session.scalars(sql.expired_tasks(still, batch)).all()
        gone = delete_tasks(session, ids, still)
        if gone:
            deltas = totals.Deltas()
            deltas.add("conveyor_tasks_deleted_total", {"status": rule.status}, len(gone))
            deltas.write(session)
        session.commit()
    return gone


def delete_tasks(session: orm.Session, ids: list, still: sa.ColumnElement) -> list[uuid.UUID]:
    """Delete the tasks `ids` that still match `still` (a retry meanwhile keeps a task), with
    their events and artifact rows; return the ids deleted. The caller commits, then deletes
    the files (`delete_files`): a failed commit leaves rows that still point at their files."""
    if not ids:
        return []
    task = models.Task
    gone = session.scalars(sa.delete(task).where(task.id.in_(ids), still).returning(task.id)).all()
    if gone:
        session.execute(sa.delete(models.Artifact).where(models.Artifact.task_id.in_(gone)))
        session.execute(sa.delete(models.TaskEvent).where(models.TaskEvent.task_id.in_(gone)))
    return list(gone)


def delete_files(storage, task_ids: list) -> int:
    """Delete the stored files of deleted tasks; return how many tasks' files could not be."""
    failed = 0
    for task_id in task_ids:
        try:
            storage.delete_prefix(f"tasks/{task_id}/")
        except Exception:
            failed += 1
            log.exception("the files of deleted task %s were not deleted", task_id)
    return failed


class Job:
    """Retention as the sweeper runs it: a pass every `every` seconds, and again the next
    round while a pass stopped at its batch limit with more to delete."""

    def __init__(self, session_factory, storage, found: list[Rule], batch: int, every: float, max_batches: int = 10):
        self.session_factory, self.storage, self.rules = session_factory, storage, found
        self.batch, self.every, self.max_batches = batch, every, max_batches
        self.next_at = 0.0

    def run(self, at: float) -> Report | None:
        """Run a pass if one is due at monotonic time `at`; return its report, or None."""
        if at < self.next_at:
            return None
        report = sweep(self.session_factory, self.storage, self.rules, self.batch, self.max_batches)
        self.next_at = at if report.more else at + self.every
        if report.total() or report.file_errors:
            log.info("retention deleted %s (files not deleted: %d)", _described(report), report.file_errors)
        return report


def _described(report: Report) -> str:
    return ", ".join(f"{count} {status}" for status, count in sorted(report.deleted.items()) if count) or "nothing"
