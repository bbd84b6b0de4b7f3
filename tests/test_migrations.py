"""The migrations, on PostgreSQL and SQLite: they build exactly the models' tables; 0006
(tenancy) makes the local account's admins operators, other accounts' admins stay account
admins, members stay members."""

import os
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

import app as app_package
from app import models
from app.extensions import db
from tests.conftest import PG_ADMIN_URL, ROOT


@pytest.fixture(params=["postgres", "embedded"])
def empty_database(request, tmp_path):
    """A database with no tables yet, dropped after the test."""
    if request.param == "embedded":
        yield f"sqlite:///{tmp_path}/migrate.db"
        return
    name = f"conveyor_test_{os.getpid()}_migrations"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_local_admins_become_operators_and_other_admins_stay(empty_database, tmp_path):
    settings = {"DATABASE_URL": empty_database, "CONVEYOR_VAR_DIR": str(tmp_path / "var"), "CONVEYOR_PLUGINS": "0"}
    flask_app = app_package.create_app(settings)
    with flask_app.app_context():
        upgrade(directory=str(ROOT / "migrations"), revision="0005")
        users = {}
        with db.engine.begin() as connection:
            for account, role in (("local", "admin"), ("local", "member"), ("acme", "admin")):
                account_id = connection.scalar(sa.text("SELECT id FROM accounts WHERE name = :n"), {"n": account})
                if account_id is None:
                    account_id = uuid.uuid4().hex if empty_database.startswith("sqlite") else uuid.uuid4()
                    connection.execute(
                        sa.text("INSERT INTO accounts (id, name, created_at) VALUES (:id, :n, CURRENT_TIMESTAMP)"),
                        {"id": account_id, "n": account},
                    )
                user_id = uuid.uuid4().hex if empty_database.startswith("sqlite") else uuid.uuid4()
                connection.execute(
                    sa.text(
                        "INSERT INTO users (id, account_id, name, role, created_at)"
                        " VALUES (:id, :a, :n, :r, CURRENT_TIMESTAMP)"
                    ),
                    {"id": user_id, "a": account_id, "n": f"{role}-user", "r": role},
                )
                users[(account, role)] = user_id
        upgrade(directory=str(ROOT / "migrations"), revision="0006")
        with db.engine.connect() as connection:
            roles = {
                key: connection.scalar(sa.text("SELECT role FROM users WHERE id = :id"), {"id": user_id})
                for key, user_id in users.items()
            }
        db.engine.dispose()
    assert roles == {("local", "admin"): "operator", ("local", "member"): "member", ("acme", "admin"): "admin"}


def test_the_migrations_build_exactly_the_models_tables(empty_database, tmp_path):
    # A column, index or constraint added to app/models.py without a migration (or the other
    # way round) shows here as a difference alembic would autogenerate.
    settings = {"DATABASE_URL": empty_database, "CONVEYOR_VAR_DIR": str(tmp_path / "var"), "CONVEYOR_PLUGINS": "0"}
    flask_app = app_package.create_app(settings)
    with flask_app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), models.Base.metadata)
        db.engine.dispose()

    assert differences == []
