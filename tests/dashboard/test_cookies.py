"""The dashboard's session cookie: `Path=/dashboard` always, and `Secure` as
CONVEYOR_SECURE_COOKIES says (on by default on PostgreSQL, off on the embedded SQLite
default, which serves plain http on 127.0.0.1)."""

import pytest

import app as app_package
from app import config
from tests.dashboard.conftest import csrf_of

pytestmark = pytest.mark.embedded


def _session_cookie(settings: dict, **overrides) -> str:
    flask_app = app_package.create_app({**settings, **overrides})
    with flask_app.app_context():
        client = flask_app.test_client()
        page = client.get("/dashboard/signin")
    cookies = [value for value in page.headers.getlist("Set-Cookie") if value.startswith("session=")]
    assert len(cookies) == 1, page.headers
    return cookies[0]


def _attributes(cookie: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}


@pytest.mark.parametrize(("setting", "secure"), [("1", True), ("0", False)])
def test_secure_follows_the_setting_and_the_path_is_the_dashboard(backend, settings, setting, secure):
    cookie = _session_cookie(settings, CONVEYOR_SECURE_COOKIES=setting)
    assert "Path=/dashboard" in cookie.split("; ")
    assert ("secure" in _attributes(cookie)) is secure
    assert "httponly" in _attributes(cookie)


def test_secure_by_default_on_servers_only(backend, settings):
    cookie = _session_cookie(settings)
    assert ("secure" in _attributes(cookie)) is (backend["name"] == "postgres")


def test_the_default_follows_the_database():
    assert config.load({"DATABASE_URL": "postgresql://db/conveyor"})["SESSION_COOKIE_SECURE"] is True
    assert config.load({"DATABASE_URL": "sqlite:////tmp/conveyor.db"})["SESSION_COOKIE_SECURE"] is False
    with pytest.raises(config.ConfigError, match="CONVEYOR_SECURE_COOKIES"):
        config.load({}, {"CONVEYOR_SECURE_COOKIES": "yes"})


def test_sign_in_works_with_secure_cookies_on(backend, settings, keys):
    flask_app = app_package.create_app({**settings, "CONVEYOR_SECURE_COOKIES": "1"})
    with flask_app.app_context():
        client = flask_app.test_client()
        token = csrf_of(client.get("/dashboard/signin").get_data(as_text=True))
        answer = client.post("/dashboard/signin", data={"api_key": keys["a_member"], "csrf_token": token})
        assert answer.status_code == 303
        assert client.get("/dashboard/tasks").status_code == 200
        assert client.get_cookie("session", path="/dashboard") is not None
