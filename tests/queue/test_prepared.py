"""The hot statements run prepared on PostgreSQL: the claim's plan still reads the partial
index of queued tasks, a connection the server dropped is replaced and prepares again, a
submit whose insert fails leaves nothing written and no transaction open, and
`CONVEYOR_PREPARED_STATEMENTS=0` prepares nothing. (PostgreSQL only: not marked embedded.)"""

import uuid

import pytest
import sqlalchemy as sa
from psycopg2 import extensions

from app import runtime
from app.queue import lifecycle, prepared, sql
from app.services import tasks as task_service
from tests.queue import helpers


def _prepared_names(connection: sa.Connection) -> set[str]:
    return set(connection.execute(sa.text("SELECT name FROM pg_prepared_statements")).scalars())


def test_the_prepared_claim_reads_the_partial_index_with_a_generic_plan(backend, app, account):
    conveyor = runtime.current()
    task_service.submit("noop", {}, account_id=account.id)
    with conveyor.autocommit_engine.connect() as connection:
        assert lifecycle.claim(connection, "cpu", 60, "test") is not None
        assert "conveyor_claim_cpu" in _prepared_names(connection)
        # A generic plan cannot see parameter values: the constants (status 'queued', the pool)
        # must be in the statement's text for the partial index to apply.
        connection.execute(sa.text("SET plan_cache_mode = force_generic_plan"))
        claim = prepared.of("conveyor_claim_cpu", sql.claim_with_event("cpu"))
        now = lifecycle.now()
        values = {"claim_now": now, "claim_lease_until": now, "claim_worker": "w", "event_data": {}, "event_at": now}
        explain = sa.text("EXPLAIN " + claim.call_sql).bindparams(*claim.binds)
        plan = "\n".join(connection.execute(explain, values).scalars())
        connection.execute(sa.text("RESET plan_cache_mode"))
    assert "ix_tasks_claim" in plan, plan
    assert "Seq Scan on tasks" not in plan, plan


def test_a_dropped_connection_is_replaced_and_prepares_again(backend, app, account):
    conveyor = runtime.current()
    first, second = (task_service.submit("noop", {"echo": n}, account_id=account.id)[0].id for n in (1, 2))
    runner = conveyor.make_runner()
    assert runner.run_next("cpu") == "succeeded"
    with conveyor.engine.connect() as admin:
        pid = runner._hot.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    with pytest.raises(sa.exc.OperationalError):
        runner.run_next("cpu")
    assert runner.run_next("cpu") == "succeeded"
    assert {helpers.task(first).status, helpers.task(second).status} == {"succeeded"}
    assert "conveyor_claim_cpu" in _prepared_names(runner._hot)


def test_a_failed_submit_round_trip_writes_nothing_and_leaves_the_connection_usable(backend, app, account):
    # The submit commits its insert, then counts and notifies, in one query string with an
    # explicit BEGIN and COMMIT. An insert that fails (here: no such account) must leave no
    # row and no open transaction behind on the pooled connection.
    conveyor = runtime.current()
    with conveyor.autocommit_engine.connect() as connection:
        with pytest.raises(sa.exc.IntegrityError):
            lifecycle.submit(
                connection, conveyor.registry, type="noop", params={}, account_id=uuid.uuid4(), count_ahead=True
            )
        assert connection.connection.dbapi_connection.get_transaction_status() == extensions.TRANSACTION_STATUS_IDLE
        task, created = lifecycle.submit(
            connection, conveyor.registry, type="noop", params={}, account_id=account.id, count_ahead=True
        )
        assert created and task.ahead_at_submit == 0
    with conveyor.engine.connect() as other:
        assert other.execute(sa.text("SELECT count(*) FROM tasks")).scalar_one() == 1
        assert other.execute(sa.text("SELECT count(*) FROM task_events")).scalar_one() == 1


def test_prepared_statements_can_be_turned_off(backend, settings, account):
    import app as app_package

    flask_app = app_package.create_app({**settings, "CONVEYOR_PREPARED_STATEMENTS": "0"})
    with flask_app.app_context():
        conveyor = runtime.current()
        task_service.submit("noop", {}, account_id=account.id)
        with conveyor.autocommit_engine.connect() as connection:
            assert lifecycle.claim(connection, "cpu", 60, "test") is not None
            assert _prepared_names(connection) == set()
        conveyor.engine.dispose()
        conveyor.autocommit_engine.dispose()
