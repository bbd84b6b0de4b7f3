"""Retention: finished tasks past their keep time are deleted by the sweeper, in batches, with
their events, artifact rows and files; younger ones, running ones, parents whose children
remain and usage records stay. Keep times come from the settings and each type's policy."""

import datetime
import pathlib
import uuid

import pytest
import sqlalchemy as sa

import processors
from app import config, models, runtime
from app.extensions import db
from app.queue import retention, totals
from app.services import metrics
from app.services import tasks as task_service
from processors import policy as policy_module
from processors import registry as registry_module
from processors.errors import RegistryError
from tests import plugins
from tests.conftest import wait_for
from tests.queue import helpers

DAY = datetime.timedelta(days=1)


def test_retention_times_parse_and_refuse_nonsense():
    assert policy_module.parse_retention("7d") == 7 * 86400
    assert policy_module.parse_retention("36h") == 36 * 3600
    assert policy_module.parse_retention("90m") == 5400
    assert policy_module.parse_retention("3600") == 3600
    assert policy_module.parse_retention("forever") is None
    for bad in ("", "7x", "-1d", "0", "nan", "1e20d"):
        with pytest.raises(ValueError):
            policy_module.parse_retention(bad)
    with pytest.raises(config.ConfigError, match="CONVEYOR_RETAIN_FAILED='a week'"):
        config.load({"CONVEYOR_RETAIN_FAILED": "a week"})
    with pytest.raises(RegistryError, match="retain_succeeded: 'soon' is not a retention time"):
        _registry({"noop": {"retain_succeeded": "soon"}})


def test_rules_come_from_the_settings_and_each_types_policy():
    settings = config.load({"CONVEYOR_RETAIN_SUCCEEDED": "2d", "CONVEYOR_RETAIN_FAILED": "forever"})
    registry = _registry({"noop": {"retain_succeeded": "1h", "retain_cancelled": "forever"}})
    found = {(rule.status, rule.type): rule.keep_seconds for rule in retention.rules(registry, settings)}
    assert found[("succeeded", "noop")] == 3600
    assert found[("succeeded", "sleep")] == 2 * 86400
    assert found[("cancelled", "sleep")] == 7 * 86400  # the default
    assert ("cancelled", "noop") not in found  # kept forever by its policy
    assert not any(status == "failed" for status, _ in found)  # kept forever by the setting


def test_a_pass_deletes_what_is_past_its_time_in_batches_and_keeps_the_rest(backend, app, account, tmp_path):
    storage = runtime.current().storage
    made = tmp_path / "out.txt"
    made.write_text("made by a task")

    def task(status: str, age: datetime.timedelta, parent=None, type_: str = "noop") -> uuid.UUID:
        row = db.session.get(models.Task, task_service.submit(type_, {}, account_id=account.id, parent_id=parent)[0].id)
        row.status = status
        row.finished_at = models.utcnow() - age if status in ("succeeded", "failed", "cancelled") else None
        key = f"tasks/{row.id}/1/out.txt"
        storage.put_file(key, made)
        artifact = {"attempt": 1, "kind": "text", "name": "out.txt", "storage_key": key, "size": 14}
        db.session.add(models.Artifact(task_id=row.id, **artifact))
        usage = {"measure": "images", "quantity": 1, "attempt": 1, "type": type_, "day": datetime.date.today()}
        db.session.add(models.UsageRecord(task_id=row.id, account_id=account.id, **usage))
        db.session.commit()
        return row.id

    old_ok = [task("succeeded", 8 * DAY) for _ in range(5)]
    old_cancelled, young_failed = task("cancelled", 8 * DAY), task("failed", 8 * DAY)
    young_ok, running = task("succeeded", 6 * DAY), task("running", 0 * DAY)
    parent = task("succeeded", 9 * DAY)
    waiting_child = task("queued", 0 * DAY, parent=parent)
    kept_by_policy = task("succeeded", 8 * DAY, type_="sleep")

    settings = config.load({})  # 7 d succeeded and cancelled, 30 d failed
    registry = _registry({"sleep": {"retain_succeeded": "forever"}})
    rules = retention.rules(registry, settings)
    first = retention.sweep(app.extensions["conveyor"].sessions, storage, rules, batch=2, max_batches=2)
    assert first.more and first.deleted == {"succeeded": 4}, first
    second = retention.sweep(app.extensions["conveyor"].sessions, storage, rules, batch=2, max_batches=10)
    assert not second.more and second.file_errors == 0, second
    assert second.deleted.get("succeeded") == 1 and second.deleted.get("cancelled") == 1, second

    gone = [*old_ok, old_cancelled]
    kept = [young_failed, young_ok, running, parent, waiting_child, kept_by_policy]
    db.session.rollback()
    assert _count(models.Task, models.Task.id.in_(gone)) == 0
    assert _count(models.TaskEvent, models.TaskEvent.task_id.in_(gone)) == 0
    assert _count(models.Artifact, models.Artifact.task_id.in_(gone)) == 0
    assert not any((storage_dir(app) / "tasks" / str(task_id)).exists() for task_id in gone)
    assert _count(models.Task, models.Task.id.in_(kept)) == len(kept)
    assert all((storage_dir(app) / "tasks" / str(task_id)).exists() for task_id in kept)
    assert _count(models.UsageRecord, models.UsageRecord.task_id.in_(gone)) == len(gone)  # billing stays
    deleted = {labels["status"]: value for name, labels, value in _totals() if name == "conveyor_tasks_deleted_total"}
    assert deleted == {"succeeded": 5.0, "cancelled": 1.0}
    assert "conveyor_tasks_deleted_total{" in metrics.exposition().decode()


def test_the_sweeper_deletes_finished_tasks_once_their_time_is_past(backend, retained_settings, app, processes):
    processes.worker("cpu")
    processes.sweeper()
    account = _local_or_new_account()
    task_id = task_service.submit("noop", {}, account_id=account)[0].id
    helpers.wait_status(task_id, "succeeded")
    waiting = task_service.submit("noop", {}, account_id=account, run_at=models.utcnow() + DAY)[0].id
    wait_for(lambda: helpers.task(task_id) is None, timeout=20, message="the succeeded task to be deleted")
    assert helpers.task(waiting).status == "queued"
    log = next(p for p in processes.started if p.log_path.name.startswith("sweeper")).log_path
    wait_for(lambda: "retention deleted 1 succeeded" in log.read_text(), timeout=5, message="the sweeper's report")


@pytest.fixture
def retained_settings(settings):
    settings.update(CONVEYOR_RETAIN_SUCCEEDED="1s", CONVEYOR_RETENTION_SECONDS="0.5")
    return settings


def _registry(overrides: dict) -> registry_module.Registry:
    return registry_module.load(processors.BUILTIN, plugins.PATHS.split(","), overrides, plugins=False)


def _local_or_new_account() -> uuid.UUID:
    row = models.Account(id=uuid.uuid4(), name=f"retention-{uuid.uuid4().hex[:8]}")
    db.session.add(row)
    db.session.commit()
    return row.id


def storage_dir(app) -> pathlib.Path:
    return pathlib.Path(app.config["CONVEYOR_STORAGE_DIR"])


def _count(model, where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(where))


def _totals() -> list:
    db.session.rollback()
    rows = db.session.execute(sa.select(models.MetricTotal.name, models.MetricTotal.labels, models.MetricTotal.value))
    return [(name, totals.decode(labels), value) for name, labels, value in rows]
