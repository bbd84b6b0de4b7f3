"""The dashboard's schedules page: create a schedule from the form (a bad field flashed by
name), see its next fire times, pause, resume and delete it; the page is in the nav, and
another account's schedule is out of reach."""

import re

import pytest

from app.services import accounts
from app.services import schedules as schedule_service
from tests.dashboard.conftest import sign_in

pytestmark = pytest.mark.embedded


def test_a_member_creates_pauses_resumes_and_deletes_a_schedule(client, keys):
    token = sign_in(client, keys["a_member"])
    form = {"csrf_token": token, "name": "nightly", "type": "noop", "params": '{"echo": 1}', "cron": "30 2 * * *"}
    created = client.post("/dashboard/schedules", data={**form, "timezone": "Europe/Berlin", "misfire": "skip"})
    assert created.status_code == 303

    page = client.get("/dashboard/schedules").get_data(as_text=True)
    assert 'href="/dashboard/schedules" aria-current="page"' in page
    assert "nightly" in page and "Europe/Berlin" in page and "misfire: skip" in page
    assert len(re.findall(r"<li>\d{4}-\d\d-\d\d \d\d:\d\d:00 UTC</li>", page)) == 5
    schedule_id = re.search(r'data-schedule="([0-9a-f-]+)"', page).group(1)

    client.post(f"/dashboard/schedules/{schedule_id}/pause", data={"csrf_token": token})
    assert "Resume nightly" in client.get("/dashboard/schedules").get_data(as_text=True)
    client.post(f"/dashboard/schedules/{schedule_id}/resume", data={"csrf_token": token})
    assert "Pause nightly" in client.get("/dashboard/schedules").get_data(as_text=True)

    bad = client.post("/dashboard/schedules", data={**form, "cron": "61 * * * *"}, follow_redirects=True)
    assert "Schedule not created" in bad.get_data(as_text=True) and "cron:" in bad.get_data(as_text=True)

    client.post(f"/dashboard/schedules/{schedule_id}/delete", data={"csrf_token": token})
    assert "No schedules yet." in client.get("/dashboard/schedules").get_data(as_text=True)


def test_another_accounts_schedule_is_out_of_reach(app, client, keys):
    other = accounts.get(accounts.authenticate(keys["b_admin"]).account_id)
    theirs = schedule_service.create({"name": "theirs", "type": "noop", "interval": 60}, account_id=other.id)
    token = sign_in(client, keys["a_admin"])
    assert "theirs" not in client.get("/dashboard/schedules").get_data(as_text=True)
    assert client.post(f"/dashboard/schedules/{theirs.id}/delete", data={"csrf_token": token}).status_code == 404
