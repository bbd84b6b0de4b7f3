"""Dashboard test fixtures: the app with a secret key, keys for two accounts (an admin and a
member each, made through the same service `manage.py keys create` uses), and signing in."""

import re
import threading
import uuid

import pytest
from werkzeug import serving

from tests.api import conftest as api_fixtures

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def settings(settings) -> dict:
    """The shared settings plus the secret key that signs the dashboard's session cookie."""
    return {**settings, "CONVEYOR_SECRET_KEY": "dashboard-tests-" + uuid.uuid4().hex}


# The API's fixtures: a test client, and keys by caller (`a_admin`, `a_member`, `a_operator`, `b_admin`,
# `b_member`).
client = api_fixtures.client
keys = api_fixtures.keys


def csrf_of(html: str) -> str:
    """Return the CSRF token a rendered page carries in its forms."""
    return CSRF.search(html).group(1)


def sign_in(client, key: str) -> str:
    """Sign `client` in with `key`; return the session's CSRF token."""
    token = csrf_of(client.get("/dashboard/signin").get_data(as_text=True))
    answer = client.post("/dashboard/signin", data={"api_key": key, "csrf_token": token})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return csrf_of(client.get("/dashboard/tasks").get_data(as_text=True))


CHROMIUM = "/usr/bin/chromium"
LAUNCH_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args) -> dict:
    """pytest-playwright's launch options, on Debian's Chromium (no `playwright install`)."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": LAUNCH_FLAGS}


@pytest.fixture
def server(app):
    """The app served by werkzeug in a thread on 127.0.0.1; stopped after the test."""
    served = serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{served.server_port}"
    served.shutdown()
    served.server_close()
    thread.join(timeout=10)
