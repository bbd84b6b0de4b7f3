"""Reading task state from the database in tests, as the API would see it."""

import sqlalchemy as sa

from app import models
from app.extensions import db
from tests.conftest import wait_for


def task(task_id) -> models.Task:
    """Return a fresh copy of the task row."""
    db.session.rollback()
    db.session.expire_all()
    return db.session.get(models.Task, task_id)


def events(task_id, kind: str | None = None) -> list[models.TaskEvent]:
    """Return the task's events in order."""
    db.session.rollback()
    query = sa.select(models.TaskEvent).where(models.TaskEvent.task_id == task_id).order_by(models.TaskEvent.id)
    if kind:
        query = query.where(models.TaskEvent.kind == kind)
    return list(db.session.scalars(query))


def statuses(task_id) -> list[str]:
    """Return the statuses the task went through, in order."""
    return [e.data["status"] for e in events(task_id, "status")]


def wait_status(task_id, wanted: str | tuple, timeout: float = 30) -> models.Task:
    """Wait until the task reaches one of the `wanted` statuses; return it."""
    wanted = (wanted,) if isinstance(wanted, str) else wanted
    return wait_for(
        lambda: (row := task(task_id)).status in wanted and row, timeout, message=f"task {task_id} to reach {wanted}"
    )


def wait_all(task_ids, wanted: str = "succeeded", timeout: float = 60) -> None:
    """Wait until every task reaches `wanted`."""

    def done():
        db.session.rollback()
        count = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(models.Task)
            .where(models.Task.id.in_(task_ids), models.Task.status == wanted)
        )
        return count == len(task_ids)

    wait_for(done, timeout, interval=0.2, message=f"{len(task_ids)} tasks to reach {wanted}")
