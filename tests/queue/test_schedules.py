"""Firing schedules (`app.queue.schedules`): each due fire time makes exactly one task, even
with two firers at once or a round repeated; misfires after an outage are caught up once or
skipped by the schedule's policy; refused fires record their error and move on; cron fire
times follow the timezone's wall clock across DST. Time is passed in (`at`), never slept."""

import datetime
import threading
import types

import pytest
import sqlalchemy as sa

from app import models, runtime
from app.extensions import db
from app.queue import schedules, timing
from app.services import schedules as schedule_service
from tests.conftest import wait_for

T0 = datetime.datetime(2027, 1, 4, 9, 0, tzinfo=datetime.UTC)
FIRING = schedules.Firing(grace_seconds=60, max_waiting=10000)


def _schedule(account, due=T0, **fields) -> models.Schedule:
    """A schedule of the account (every 10 s unless told), due at `due`."""
    values = {"name": "every ten", "type": "noop", "params": {"echo": 1}, "interval": 10, **fields}
    if "cron" in fields:
        values.pop("interval")
    schedule = schedule_service.create(values, account_id=account.id)
    schedule.next_fire_at = due
    db.session.commit()
    return schedule


def _fire(at: datetime.datetime, firing: schedules.Firing = FIRING) -> dict:
    conveyor = runtime.current()
    return schedules.fire_due(conveyor.sessions, conveyor.registry, firing, at=at)


def _tasks(account) -> list[models.Task]:
    db.session.rollback()
    query = sa.select(models.Task).where(models.Task.account_id == account.id).order_by(models.Task.idempotency_key)
    return list(db.session.scalars(query))


def _fresh(schedule: models.Schedule) -> models.Schedule:
    db.session.rollback()
    db.session.expire_all()
    return db.session.get(models.Schedule, schedule.id)


def _key(schedule, at) -> str:
    return schedules.idempotency_key(schedule.id, at)


@pytest.mark.embedded
def test_each_due_fire_time_makes_one_task_and_a_repeated_round_makes_none(backend, app, account):
    schedule = _schedule(account)
    at = T0 + datetime.timedelta(seconds=25)  # within the grace period: three fire times due

    assert _fire(at) == {"created": 3, "skipped": 0, "refused": 0}
    assert _fire(at) == {"created": 0, "skipped": 0, "refused": 0}

    tasks = _tasks(account)
    wanted = [_key(schedule, T0 + datetime.timedelta(seconds=s)) for s in (0, 10, 20)]
    assert [t.idempotency_key for t in tasks] == wanted
    assert all(t.type == "noop" and t.params == {"echo": 1} and t.status == "queued" for t in tasks)
    row = _fresh(schedule)
    assert row.next_fire_at == T0 + datetime.timedelta(seconds=30)
    assert row.last_fire_at == T0 + datetime.timedelta(seconds=20)
    assert row.last_task_id == tasks[-1].id and row.last_error is None


@pytest.mark.embedded
def test_a_fire_whose_advance_was_lost_gets_the_task_it_made_back(backend, app, account):
    # The idempotency key, not only the row lock: a fire time fired again gives its task.
    schedule = _schedule(account)
    _fire(T0)
    first = _fresh(schedule).last_task_id
    _fresh(schedule).next_fire_at = T0
    db.session.commit()

    assert _fire(T0) == {"created": 1, "skipped": 0, "refused": 0}
    assert [t.id for t in _tasks(account)] == [first]
    assert _fresh(schedule).last_task_id == first


@pytest.mark.embedded
def test_a_round_that_died_before_its_commit_leaves_the_fire_time_due(backend, app, account):
    schedule = _schedule(account)
    conveyor = runtime.current()
    with conveyor.sessions() as session:
        assert schedules.fire_one(session, conveyor.registry, schedule.id, FIRING, T0) == "created"
        session.rollback()  # the sweeper died here
    assert _tasks(account) == [] and _fresh(schedule).next_fire_at == T0

    assert _fire(T0) == {"created": 1, "skipped": 0, "refused": 0}
    assert [t.idempotency_key for t in _tasks(account)] == [_key(schedule, T0)]


@pytest.mark.embedded
def test_a_misfire_is_caught_up_once_or_skipped_by_policy(backend, app, account):
    catch_up = _schedule(account, name="catch up", interval=60, misfire="catch_up")
    skip = _schedule(account, name="skip", interval=60, misfire="skip")
    at = T0 + datetime.timedelta(hours=2, seconds=30)  # two hours down: 121 fire times missed

    assert _fire(at) == {"created": 1, "skipped": 1, "refused": 0}

    latest = T0 + datetime.timedelta(hours=2)
    assert [t.idempotency_key for t in _tasks(account)] == [_key(catch_up, latest)]
    for schedule in (catch_up, skip):
        assert _fresh(schedule).next_fire_at == latest + datetime.timedelta(minutes=1)
    assert _fresh(skip).last_task_id is None
    fires = db.session.execute(sa.select(models.MetricTotal.labels, models.MetricTotal.value)).all()
    assert sorted(fires) == [('{"outcome":"created"}', 1.0), ('{"outcome":"skipped"}', 1.0)]


@pytest.mark.embedded
def test_a_refused_fire_records_its_error_and_moves_on(backend, app, account):
    gone = _schedule(account, name="type gone")
    full = _schedule(account, name="quota full")
    db.session.execute(sa.update(models.Schedule).where(models.Schedule.id == gone.id).values(type="retired"))
    db.session.get(models.Account, account.id).max_waiting = 0
    db.session.commit()

    assert _fire(T0) == {"created": 0, "skipped": 0, "refused": 2}

    assert _tasks(account) == []
    assert _fresh(gone).last_error["type"] == "UnknownTaskType"
    assert _fresh(full).last_error["type"] == "QuotaExceeded"
    assert all(_fresh(s).next_fire_at == T0 + datetime.timedelta(seconds=10) for s in (gone, full))


def test_paused_schedules_do_not_fire_and_resume_goes_on_from_now(backend, app, account):
    schedule = _schedule(account)
    schedule_service.pause(schedule)
    assert _fire(T0 + datetime.timedelta(days=1)) == {"created": 0, "skipped": 0, "refused": 0}
    resumed = schedule_service.resume(_fresh(schedule))
    assert resumed.next_fire_at > models.utcnow()


def test_two_firers_at_once_make_one_task_per_fire_time(backend, app, account):
    made = [_schedule(account, name=f"s{n}") for n in range(20)]
    at = T0 + datetime.timedelta(seconds=15)  # two fire times due on each
    start, results, failures = threading.Barrier(2), [], []

    def firer():
        with app.app_context():
            start.wait()
            try:
                results.append(_fire(at))
            except Exception as exc:  # collected and asserted below
                failures.append(exc)

    threads = [threading.Thread(target=firer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    assert sum(result["created"] for result in results) == 40
    keys = [t.idempotency_key for t in _tasks(account)]
    assert sorted(keys) == sorted(_key(s, T0 + datetime.timedelta(seconds=x)) for s in made for x in (0, 10))
    assert all(_fresh(s).next_fire_at == T0 + datetime.timedelta(seconds=20) for s in made)


def _cron(cron: str, zone: str = "Europe/Berlin"):
    return types.SimpleNamespace(cron=cron, interval_seconds=None, timezone=zone)


def _utc(*parts) -> datetime.datetime:
    return datetime.datetime(*parts, tzinfo=datetime.UTC)


def test_a_daily_wall_time_fires_once_on_both_dst_days():
    daily = _cron("30 2 * * *")
    # Spring forward (2027-03-28: 02:00 CET -> 03:00 CEST): 02:30 does not exist; it fires at
    # 03:00 CEST, right after the change, then at 02:30 CEST again.
    spring = timing.upcoming(daily, _utc(2027, 3, 27, 12), 3)
    assert spring == [_utc(2027, 3, 28, 1, 0), _utc(2027, 3, 29, 0, 30), _utc(2027, 3, 30, 0, 30)]
    # Fall back (2027-10-31: 03:00 CEST -> 02:00 CET): 02:30 happens twice; it fires at the first.
    autumn = timing.upcoming(daily, _utc(2027, 10, 30, 12), 3)
    assert autumn == [_utc(2027, 10, 31, 0, 30), _utc(2027, 11, 1, 1, 30), _utc(2027, 11, 2, 1, 30)]


def test_an_hourly_schedule_fires_every_real_hour_across_fall_back():
    hourly = timing.upcoming(_cron("0 * * * *"), _utc(2027, 10, 30, 23, 30), 4)
    assert hourly == [_utc(2027, 10, 31, hour) for hour in range(4)]  # 02:00 CEST and 02:00 CET both


def test_a_cron_schedule_fires_on_the_dst_day_and_moves_to_the_next_day(backend, app, account):
    schedule = _schedule(account, due=_utc(2027, 3, 28, 1, 0), cron="30 2 * * *", timezone="Europe/Berlin")
    assert _fire(_utc(2027, 3, 28, 1, 0, 5))["created"] == 1
    assert _fresh(schedule).next_fire_at == _utc(2027, 3, 29, 0, 30)


@pytest.mark.embedded
def test_a_one_second_schedule_fires_tasks_a_real_worker_runs(backend, app, account, processes):
    processes.worker("cpu")
    processes.sweeper()
    schedule = schedule_service.create(
        {"name": "every second", "type": "noop", "params": {"echo": "tick"}, "interval": 1}, account_id=account.id
    )

    def succeeded():
        done = [t for t in _tasks(account) if t.status == "succeeded"]
        return done if len(done) >= 3 else None

    done = wait_for(succeeded, timeout=30, message="three scheduled tasks to succeed")
    keys = [t.idempotency_key for t in done]
    assert len(set(keys)) == len(keys) and all(k.startswith(f"schedule:{schedule.id}:") for k in keys)
    assert all(t.result == {"echo": "tick"} for t in done)
    assert _fresh(schedule).last_task_id in {t.id for t in _tasks(account)}
