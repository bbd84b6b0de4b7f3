"""The app factory: what it registers process-wide (Celery's signals and task list) must not
keep a dropped app alive, or every app a long-lived process builds stays in memory."""

import gc
import weakref

import app as app_package
from app.extensions import db
from tests import plugins


def _built_and_closed(tmp_path) -> weakref.ref:
    settings = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/conveyor.db",
        "BROKER_URL": "filesystem://",
        "CONVEYOR_VAR_DIR": str(tmp_path / "var"),
        "CONVEYOR_PROCESSORS": plugins.PATHS,
        "CONVEYOR_PLUGINS": "0",
    }
    flask_app = app_package.create_app(settings)
    with flask_app.app_context():
        db.session.remove()
        db.engine.dispose()
    flask_app.extensions["conveyor"].close()
    return weakref.ref(flask_app)


def test_a_dropped_app_is_freed(tmp_path):
    dropped = [_built_and_closed(tmp_path / str(n)) for n in range(2)]
    gc.collect()
    assert [ref() for ref in dropped] == [None, None]
