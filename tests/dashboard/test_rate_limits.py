"""The dashboard's New task form counts against the same submit rate as the API: past it, the
form comes back with a 429 and says so, and nothing is stored."""

import pytest

from app.services import tasks as task_service
from tests.dashboard.conftest import sign_in

pytestmark = pytest.mark.embedded


@pytest.fixture
def settings(settings) -> dict:
    """2 submits a minute per key, no burst beyond that."""
    return {**settings, "CONVEYOR_SUBMIT_RATE": "2/minute", "CONVEYOR_SUBMIT_BURST": "2"}


def test_the_form_is_rate_limited_like_the_api(backend, client, keys):
    token = sign_in(client, keys["a_member"])
    form = {"csrf_token": token, "seconds": "1"}
    assert [client.post("/dashboard/new/sleep", data=form).status_code for _ in range(2)] == [303, 303]
    refused = client.post("/dashboard/new/sleep", data=form)
    assert refused.status_code == 429 and "Too many submits" in refused.get_data(as_text=True)
    assert "Retry-After" in refused.headers
    assert len(task_service.find(None)) == 2
