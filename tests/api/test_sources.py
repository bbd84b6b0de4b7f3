"""URL sources at submit: a URL whose host is (or resolves to) a private, loopback or
link-local address is refused with a 422 naming `source.url`, by the downloader's own rule,
unless CONVEYOR_ALLOW_PRIVATE_URLS allows it (as on the embedded default, and as the download
tests do for their servers on 127.0.0.1)."""

import pytest

from app import models
from app.extensions import db
from app.services import errors
from app.services import tasks as task_service
from processors.providers import download
from tests.api.conftest import bearer

pytestmark = pytest.mark.embedded

NOT_PUBLIC = [
    "http://127.0.0.1:9/talk.mp4",
    "http://localhost/talk.mp4",
    "http://10.1.2.3/talk.mp4",
    "http://192.168.0.10/talk.mp4",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/talk.mp4",
    "http://0.0.0.0/talk.mp4",
    "https://100.64.0.1/talk.mp4",
]


@pytest.fixture
def settings(settings):
    return {**settings, "CONVEYOR_ALLOW_PRIVATE_URLS": "0"}


def _count() -> int:
    db.session.rollback()
    return db.session.query(models.Task).count()


@pytest.mark.parametrize("path", ["/api/tasks", "/api/clips/generate"])
@pytest.mark.parametrize("url", NOT_PUBLIC)
def test_a_private_url_source_is_refused_at_submit(backend, client, keys, path, url):
    body = {"params": {"source": {"url": url}}}
    if path == "/api/tasks":
        body["type"] = "video_clip"
    response = client.post(path, json=body, headers=bearer(keys["a_member"]))
    assert response.status_code == 422, response.get_data(as_text=True)
    messages = response.get_json()["errors"]["params"]["source"]["url"]
    assert "private address" in messages[0] and "CONVEYOR_ALLOW_PRIVATE_URLS" in messages[0]
    assert _count() == 0


@pytest.mark.parametrize("url", ["http://93.184.215.14/talk.mp4", "http://no-such-host.invalid/talk.mp4"])
def test_a_public_or_unresolved_url_is_accepted_and_left_to_the_download(backend, client, keys, url):
    body = {"type": "video_clip", "params": {"source": {"url": url}}}
    response = client.post("/api/tasks", json=body, headers=bearer(keys["a_member"]))
    assert response.status_code == 202, response.get_data(as_text=True)


def test_the_dashboard_and_cli_path_refuses_the_same(backend, app, account):
    with pytest.raises(errors.Invalid) as refused:
        task_service.submit("video_clip", {"source": {"url": NOT_PUBLIC[0]}}, account_id=account.id)
    assert "url" in refused.value.errors["params"]["source"]
    assert _count() == 0


@pytest.mark.parametrize("url", NOT_PUBLIC)
def test_the_submit_rule_is_the_download_rule(url):
    why = download.submit_refusal(url)
    with pytest.raises(download.errors.PermanentError) as refused:
        download.check_url(url)
    assert why == str(refused.value)
    assert download.submit_refusal(url, allow_private=True) is None


class TestAllowed:
    @pytest.fixture
    def settings(self, settings):
        return {**settings, "CONVEYOR_ALLOW_PRIVATE_URLS": "1"}

    def test_a_loopback_url_is_accepted_when_private_urls_are_allowed(self, backend, client, keys):
        body = {"type": "video_clip", "params": {"source": {"url": NOT_PUBLIC[0]}}}
        response = client.post("/api/tasks", json=body, headers=bearer(keys["a_member"]))
        assert response.status_code == 202, response.get_data(as_text=True)
