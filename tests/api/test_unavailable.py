"""Types that cannot run here are refused at submit (409 `unavailable`, naming the missing key
or program) on every path: the generic and typed endpoints and the CLI, with nothing stored;
params that need no key (a given script, a finished document) are accepted;
CONVEYOR_ACCEPT_UNAVAILABLE=1 accepts everything, for deployments where only workers hold keys."""

import pytest

from app import models
from app.extensions import db
from tests import commands
from tests.api.conftest import bearer

pytestmark = pytest.mark.embedded

SCRIPT = [{"narration": "Otters hold hands while they sleep.", "slide": "# Otters"}]
DOCUMENT = "# Otters\n\nOtters are mammals.\n\n## Sleep\n\nThey hold hands while they sleep.\n"


def _count() -> int:
    db.session.rollback()
    return db.session.query(models.Task).count()


def _refused(response, needs: str) -> dict:
    assert response.status_code == 409, response.get_data(as_text=True)
    body = response.get_json()
    assert body["code"] == "unavailable" and needs in body["message"], body
    assert "CONVEYOR_ACCEPT_UNAVAILABLE" in body["message"]
    return body


@pytest.mark.parametrize(
    "type, params",
    [
        ("story", {"prompt": "An otter learns to swim"}),
        ("quiz", {"source_text": "Otters hold hands while they sleep."}),
        ("image", {"prompt": "An otter"}),
        ("documentation", {"content": "Otters are mammals."}),
        ("explainer_video", {"prompt": "Explain otters"}),
        ("animated_lesson", {"prompt": "Teach Python loops"}),
        ("course_video", {"topic": "Otters"}),
    ],
)
def test_a_type_whose_key_is_not_set_is_refused_and_nothing_is_stored(backend, client, keys, type, params):
    before = _count()
    body = _refused(
        client.post("/api/tasks", json={"type": type, "params": params}, headers=bearer(keys["a_member"])),
        "OPENAI_API_KEY is not set",
    )
    assert body["providers"] == [{"name": "openai", "reason": "OPENAI_API_KEY is not set"}]
    assert _count() == before


def test_typed_endpoints_and_paid_voices_are_refused_the_same(backend, client, keys):
    member = bearer(keys["a_member"])
    _refused(
        client.post("/api/story/generate", json={"params": {"prompt": "An otter"}}, headers=member), "OPENAI_API_KEY"
    )
    voice = {"text": "Hello there.", "provider": "elevenlabs"}
    _refused(
        client.post("/api/voice-generation/generate", json={"params": voice}, headers=member),
        "ELEVENLABS_API_KEY is not set",
    )
    explainer = {"script": SCRIPT, "provider": "openai"}
    _refused(
        client.post("/api/video/generate", json={"params": explainer}, headers=member),
        "speaking with openai needs its key",
    )


def test_params_that_need_no_key_are_accepted(backend, client, keys):
    member = bearer(keys["a_member"])
    for type, params in [
        ("explainer_video", {"script": SCRIPT}),
        ("voice", {"text": "Hello there."}),
        ("documentation", {"content": DOCUMENT, "as_is": True}),
    ]:
        answer = client.post("/api/tasks", json={"type": type, "params": params}, headers=member)
        assert answer.status_code == 202, (type, answer.get_json())


def test_invalid_params_are_named_before_availability(backend, client, keys):
    answer = client.post("/api/tasks", json={"type": "story", "params": {}}, headers=bearer(keys["a_member"]))
    assert answer.status_code == 422 and "prompt" in answer.get_json()["errors"]["params"], answer.get_json()
    untitled = {"content": "no heading here", "as_is": True}
    answer = client.post(
        "/api/tasks", json={"type": "documentation", "params": untitled}, headers=bearer(keys["a_member"])
    )
    assert answer.status_code == 422 and "title" in answer.get_json()["errors"]["params"], answer.get_json()


def test_the_cli_refuses_the_same(backend, settings, app):
    refused = commands.in_process(app, "tasks", "submit", "story", "--param", "prompt=An otter")
    assert refused.returncode != 0 and "OPENAI_API_KEY is not set" in refused.stderr, refused.stderr
    assert _count() == 0


class TestAcceptUnavailable:
    @pytest.fixture
    def settings(self, settings):
        return {**settings, "CONVEYOR_ACCEPT_UNAVAILABLE": "1"}

    def test_the_api_accepts_what_only_the_workers_can_run(self, backend, client, keys):
        answer = client.post(
            "/api/tasks", json={"type": "story", "params": {"prompt": "An otter"}}, headers=bearer(keys["a_member"])
        )
        assert answer.status_code == 202, answer.get_json()
