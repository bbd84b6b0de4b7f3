"""The dashboard's pages through Flask's test client: sign-in and its session, CSRF on every
action, the generated New task form and its field errors, account scoping and the admin role,
the admin actions, artifacts shown inline, and the live stream's fragments."""

import datetime
import html as html_lib
import io
import json
import re

import pytest
import sqlalchemy as sa

from app import models, runtime
from app.dashboard import chart, live, stats
from app.extensions import db
from app.queue import control
from app.queue import webhooks as fan_out
from app.services import accounts
from app.services import tasks as task_service
from app.services import usage as usage_service
from app.services import webhooks as webhook_service
from tests.api import test_usage
from tests.dashboard.conftest import csrf_of, sign_in

pytestmark = pytest.mark.embedded


def _caller(key: str) -> accounts.Caller:
    return accounts.authenticate(key)


def _status(task_id) -> str:
    db.session.expire_all()
    return db.session.get(models.Task, task_id).status


def _submit(key: str, type_: str = "sleep", params: dict | None = None) -> models.Task:
    caller = _caller(key)
    task, _ = task_service.submit(type_, params or {}, account_id=caller.account_id, user_id=caller.user_id)
    return task


def test_sign_in_checks_the_key_and_the_csrf_token(backend, client, keys):
    assert client.get("/dashboard/tasks").headers["Location"] == "/dashboard/signin?next=/dashboard/tasks"
    token = csrf_of(client.get("/dashboard/signin").get_data(as_text=True))
    assert client.post("/dashboard/signin", data={"api_key": keys["a_member"]}).status_code == 400
    refused = client.post("/dashboard/signin", data={"api_key": "cvk_nope_x", "csrf_token": token})
    assert refused.status_code == 401 and "unknown or revoked" in refused.get_data(as_text=True)
    answer = client.post(
        "/dashboard/signin", data={"api_key": keys["a_member"], "csrf_token": token, "next": "https://evil.example/"}
    )
    assert answer.status_code == 303 and answer.headers["Location"] == "/dashboard/"
    cookie = client.get_cookie("session", path="/dashboard")  # only the dashboard reads it
    assert cookie.http_only and cookie.same_site == "Lax" and keys["a_member"] not in cookie.value
    page = client.get("/dashboard/")
    assert page.status_code == 200 and "Overview" in page.get_data(as_text=True)
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert csrf_of(page.get_data(as_text=True)) != token  # a new session gets a new token


def test_a_revoked_key_ends_the_session(backend, client, keys):
    sign_in(client, keys["a_member"])
    assert client.get("/dashboard/tasks").status_code == 200
    accounts.revoke_key(keys["a_member"])
    assert client.get("/dashboard/tasks").headers["Location"].startswith("/dashboard/signin")


def test_actions_need_the_csrf_token(backend, client, keys):
    token = sign_in(client, keys["a_member"])
    task = _submit(keys["a_member"], params={"seconds": 30})
    refused = client.post(f"/dashboard/tasks/{task.id}/cancel", data={"csrf_token": "wrong"})
    assert refused.status_code == 400 and "security token" in refused.get_data(as_text=True)
    assert client.post(f"/dashboard/tasks/{task.id}/cancel").status_code == 400
    assert _status(task.id) == "queued"
    done = client.post(f"/dashboard/tasks/{task.id}/cancel", headers={"X-CSRF-Token": token})
    assert done.status_code == 303 and done.headers["Location"] == f"/dashboard/tasks/{task.id}"
    assert _status(task.id) == "cancelled"
    assert "Cancelled." in client.get(done.headers["Location"]).get_data(as_text=True)
    again = client.post(f"/dashboard/tasks/{task.id}/cancel", data={"csrf_token": token}, follow_redirects=True)
    assert re.search(r'<p class="flash error">[^<]*cancelled', again.get_data(as_text=True))
    assert client.post(f"/dashboard/tasks/{task.id}/retry", data={"csrf_token": token}).status_code == 303
    assert _status(task.id) == "queued"


def test_the_form_follows_the_params_schema(backend, client, keys):
    sign_in(client, keys["a_member"])
    sleep = client.get("/dashboard/new/sleep").get_data(as_text=True)
    assert re.search(r'<input type="number" id="f-seconds" name="p.seconds"[^>]*value="1.0"', sleep)
    assert 'min="0.0"' in sleep and 'max="3600.0"' in sleep and 'step="any"' in sleep
    clip = client.get("/dashboard/new/video_clip").get_data(as_text=True)
    assert re.search(r'<fieldset class="group" id="f-source">\s*<legend>Source</legend>', clip)
    assert 'type="url" id="f-source-url" name="p.source.url"' in clip
    assert re.search(r'<select id="f-aspect" name="p.aspect">.*?<option value="9:16" selected>', clip, re.S)
    assert 'id="f-font_size" name="p.font_size"' in clip and 'step="1"' in clip
    assert 'type="checkbox" id="f-subtitles" name="p.subtitles" value="true" checked' in clip
    quiz = client.get("/dashboard/new/quiz").get_data(as_text=True)
    assert quiz.count('name="p.question_types"') == 4
    image = client.get("/dashboard/new/image").get_data(as_text=True)
    assert "This type is unavailable here" in image and "OPENAI_API_KEY" in image
    assert "<fieldset disabled>" in image
    assert "Unavailable:" in client.get("/dashboard/new").get_data(as_text=True)
    assert client.get("/dashboard/new/nope").status_code == 404


def test_submit_shows_the_services_errors_next_to_their_fields(backend, client, keys):
    token = sign_in(client, keys["a_member"])
    bad = client.post("/dashboard/new/sleep", data={"csrf_token": token, "p.seconds": "5000", "priority": "soon"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert re.search(r'id="f-seconds-error">Must be greater than or equal to 0 and less than or equal to 3600', html)
    assert 'aria-describedby="f-seconds-hint f-seconds-error" aria-invalid="true"' in html
    assert 'value="5000"' in html  # what was typed stays
    nested = client.post(
        "/dashboard/new/video_clip", data={"csrf_token": token, "p.source.url": "not a url", "p.max_clips": "x"}
    )
    assert nested.status_code == 422
    assert 'id="f-max_clips-error">must be a number' in nested.get_data(as_text=True)
    nested = client.post("/dashboard/new/video_clip", data={"csrf_token": token, "p.source.url": "not a url"})
    assert re.search(r'id="f-source-url-error">[^<]*URL', nested.get_data(as_text=True))
    assert db.session.query(models.Task).count() == 0

    good = client.post("/dashboard/new/sleep", data={"csrf_token": token, "p.seconds": "0.5", "priority": "high"})
    assert good.status_code == 303
    task = db.session.query(models.Task).one()
    assert good.headers["Location"] == f"/dashboard/tasks/{task.id}"
    assert task.params == {"seconds": 0.5} and task.priority == models.Priority.HIGH
    assert task.user_id == _caller(keys["a_member"]).user_id


def test_submit_of_a_type_that_cannot_run_here_says_which_key_is_missing(backend, client, keys):
    token = sign_in(client, keys["a_member"])
    refused = client.post("/dashboard/new/story", data={"csrf_token": token, "p.prompt": "An otter learns to swim"})
    assert refused.status_code == 409
    assert "OPENAI_API_KEY is not set" in html_lib.unescape(refused.get_data(as_text=True))
    assert "An otter learns to swim" in refused.get_data(as_text=True), "what was typed stays"
    assert db.session.query(models.Task).count() == 0


def test_a_member_sees_only_their_account_and_no_admin_page(backend, client, keys):
    theirs = _submit(keys["a_admin"])
    mine = _submit(keys["b_member"])
    token = sign_in(client, keys["b_member"])
    listed = client.get("/dashboard/tasks").get_data(as_text=True)
    assert str(mine.id) in listed and str(theirs.id) not in listed
    assert client.get(f"/dashboard/tasks/{theirs.id}").status_code == 404
    assert client.get(f"/dashboard/tasks/{theirs.id}/live").status_code == 404
    assert client.post(f"/dashboard/tasks/{theirs.id}/cancel", data={"csrf_token": token}).status_code == 404
    assert client.get("/dashboard/admin").status_code == 403
    assert client.post("/dashboard/admin/stop", data={"csrf_token": token}).status_code == 403
    assert control.paused(db.session) == []
    overview = client.get("/dashboard/").get_data(as_text=True)
    assert "your account" in overview and 'href="/dashboard/admin"' not in overview
    assert re.search(r'data-status="queued">1<', overview)  # one of the two queued tasks is theirs
    assert f'href="/dashboard/tasks/{mine.id}"' in overview  # their oldest waiting task
    polled = client.get("/dashboard/overview/live", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert polled.lstrip().startswith('<div id="overview-live"') and 'hx-trigger="every 5s"' in polled
    missing = client.get("/dashboard/no/such/page")
    assert missing.status_code == 404 and missing.content_type.startswith("text/html")
    assert "There is no such dashboard page." in missing.get_data(as_text=True)
    with client.get("/dashboard/static/dashboard.css") as static:
        assert static.status_code == 200, "the catch-all must not hide files"


def test_the_task_list_filters_and_pages(backend, client, keys):
    sign_in(client, keys["a_member"])
    for seconds in range(3):
        _submit(keys["a_member"], params={"seconds": seconds})
    _submit(keys["a_member"], "noop")
    assert client.get("/dashboard/tasks?type=noop").get_data(as_text=True).count("<tr>") == 2  # head + 1
    paged = client.get("/dashboard/tasks?type=sleep&page_size=2&page=2").get_data(as_text=True)
    assert "page 2 of 2" in paged and paged.count("<tr>") == 2 and 'rel="prev"' in paged
    odd = client.get("/dashboard/tasks?status=lost").get_data(as_text=True)
    assert "Some filters were ignored" in odd and odd.count("<tr>") == 5
    rows = client.get("/dashboard/tasks", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert rows.lstrip().startswith("<tbody")
    assert 'hx-trigger="every 3s"' in rows  # waiting tasks: the rows keep refreshing


def test_admin_stops_starts_limits_and_cleans_up(backend, client, keys):
    token = sign_in(client, keys["a_operator"])
    stopped = client.post("/dashboard/admin/stop", data={"csrf_token": token, "scope": "type:sleep"})
    assert stopped.status_code == 303
    assert control.paused(db.session) == [{"scope": "type", "name": "sleep"}]
    assert "Stopped type sleep." in client.get("/dashboard/admin").get_data(as_text=True)
    partial = client.post(
        "/dashboard/admin/start", data={"scope": "type:sleep"}, headers={"X-CSRF-Token": token, "HX-Request": "true"}
    )
    html = partial.get_data(as_text=True)
    assert html.startswith('<div id="admin-controls">') and "Started type sleep." in html
    assert control.paused(db.session) == []
    client.post("/dashboard/admin/limit", data={"csrf_token": token, "type": "sleep", "limit": "2"})
    assert control.limits(db.session) == {"sleep": 2}
    bad = client.post("/dashboard/admin/limit", data={"csrf_token": token, "type": "sleep", "limit": "0"})
    assert "Limit not set" in client.get(bad.headers["Location"]).get_data(as_text=True)
    client.post("/dashboard/admin/limit", data={"csrf_token": token, "type": "sleep", "limit": ""})
    assert control.limits(db.session) == {}
    report = client.post("/dashboard/admin/cleanup", data={"csrf_token": token}).get_data(as_text=True)
    assert "Cleanup report" in report and "Nothing to clean up" in report
    overview = client.get("/dashboard/").get_data(as_text=True)
    assert "No worker has touched a task in the last 10 minutes." in overview
    idle = "Idle now, waiting for work: none." in " ".join(overview.split())  # on PostgreSQL only
    assert idle is (backend["name"] == "postgres")


def _finished_with(task: models.Task, name: str, mime: str, kind: str, content: bytes) -> models.Artifact:
    task = db.session.get(models.Task, task.id)  # on PostgreSQL, submit made it outside this session
    task.status, task.finished_at, task.result = "succeeded", models.utcnow(), {"ok": True}
    key = f"tasks/{task.id}/1/{name}"
    runtime.current().storage.put_stream(key, io.BytesIO(content), mime=mime)
    artifact = models.Artifact(
        task_id=task.id, attempt=1, kind=kind, name=name, storage_key=key, mime=mime, size=len(content), meta={}
    )
    db.session.add(artifact)
    db.session.commit()
    return artifact


def test_artifacts_show_inline_and_are_sandboxed(backend, client, keys):
    sign_in(client, keys["a_member"])
    task = _submit(keys["a_member"], "noop")
    question = {"number": 1, "type": "true_false", "question": "Is the Nile long?", "answer": True, "points": 1}
    quiz = {"title": "Rivers", "count": 1, "total_points": 1, "questions": [{**question, "options": ["true", "false"]}]}
    _finished_with(task, "quiz.json", "application/json", "quiz", json.dumps(quiz).encode())
    _finished_with(task, "data.json", "application/json", "metadata", b'{"b":[1,2]}')
    doc = _finished_with(task, "doc.html", "text/html", "document", b"<h1>Doc</h1><script>alert(1)</script>")
    _finished_with(task, "clip.mp4", "video/mp4", "video", b"\0" * 64)
    _finished_with(task, "talk.mp3", "audio/mpeg", "audio", b"\0" * 64)
    html = client.get(f"/dashboard/tasks/{task.id}").get_data(as_text=True)
    assert "<h4>Rivers</h4>" in html and "Is the Nile long?" in html and "<strong>true</strong>" in html
    assert "{\n  &#34;b&#34;: [\n    1,\n    2\n  ]\n}" in html
    assert re.search(rf'<iframe src="/dashboard/tasks/{task.id}/artifacts/{doc.id}" sandbox=""', html)
    assert "<video controls" in html and "<audio controls" in html
    assert "Delete" in html and "&#34;ok&#34;: true" in html  # ended, with its result
    served = client.get(f"/dashboard/tasks/{task.id}/artifacts/{doc.id}")
    assert served.data.startswith(b"<h1>Doc</h1>") and served.mimetype == "text/html"
    assert served.headers["Content-Security-Policy"].startswith("sandbox;")
    part = client.get(f"/dashboard/tasks/{task.id}/artifacts/{doc.id}", headers={"Range": "bytes=0-3"})
    assert part.status_code == 206 and part.data == b"<h1>"


def test_the_live_stream_sends_html_fragments(backend, client, keys):
    sign_in(client, keys["a_member"])
    task = _submit(keys["a_member"], params={"seconds": 5})
    task_service.cancel(task.id, task.account_id)
    with client.get(f"/dashboard/tasks/{task.id}/live") as answer:
        body = answer.get_data(as_text=True)
    assert answer.mimetype == "text/event-stream" and answer.headers["Cache-Control"] == "no-cache"
    messages = [live.parse(chunk) for chunk in body.split("\n\n") if chunk.strip()]
    named = [(m.get("event"), m.get("id")) for m in messages if m.get("event")]
    assert named[0][0] == "timeline" and named[0][1] is not None
    assert [name for name, _ in named].count("timeline") == 2 and named[-1] == ("close", None)
    assert "cancelled" in body and '<progress max="100" value="0.0"' in body
    with client.get(f"/dashboard/tasks/{task.id}/live", headers={"Last-Event-ID": named[0][1]}) as resumed:
        again = resumed.get_data(as_text=True)
    assert again.count("event: timeline") == 1 and f"id: {named[0][1]}\n" not in again


def test_without_a_secret_key_one_is_made_once_and_shared(backend, settings, tmp_path):
    import os
    import pathlib

    import app as app_package

    bare = {
        **{k: v for k, v in settings.items() if k != "CONVEYOR_SECRET_KEY"},
        "CONVEYOR_VAR_DIR": str(tmp_path / "v"),
    }
    first, second = app_package.create_app(bare), app_package.create_app(bare)
    stored = pathlib.Path(tmp_path / "v" / "secret-key")
    assert stored.is_file() and os.stat(stored).st_mode & 0o777 == 0o600
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == stored.read_text().strip()
    assert len(first.config["SECRET_KEY"]) >= 32
    with first.app_context():
        assert first.test_client().get("/dashboard/signin").status_code == 200
        db.session.remove()
        db.engine.dispose()
    with second.app_context():
        db.engine.dispose()


def test_the_chart_counts_the_last_hour_in_slices(backend, app, keys):
    caller = _caller(keys["a_member"])
    now = models.utcnow()
    for minutes_ago, status in ((2, "succeeded"), (3, "succeeded"), (7, "failed"), (58, "succeeded"), (75, "failed")):
        task = models.Task(type="noop", pool="cpu", status=status, account_id=caller.account_id)
        task.finished_at = now - datetime.timedelta(minutes=minutes_ago)
        db.session.add(task)
    db.session.commit()
    buckets = stats.finished(caller.account_id, now)
    assert len(buckets) == 12 and buckets[-1]["start"] == now - datetime.timedelta(minutes=5)
    assert [(b["succeeded"], b["failed"]) for b in buckets] == [(1, 0)] + [(0, 0)] * 9 + [(0, 1), (2, 0)]
    assert stats.finished(_caller(keys["b_member"]).account_id, now) == [
        {**b, "succeeded": 0, "failed": 0} for b in buckets
    ]
    drawn = chart.bars(buckets)
    assert drawn["peak"] == 2 and drawn["total_succeeded"] == 3 and drawn["total_failed"] == 1
    last = drawn["bars"][-1]
    assert last["ok_height"] == chart.HEIGHT - chart.BOTTOM - chart.TOP and last["ok_y"] == chart.TOP


def test_a_waiting_task_shows_the_priority_aging_raised_it_to(backend, client, keys):
    from app.queue import sweeper
    from app.services import queue as queue_service

    queue_service.stop()  # the task stays waiting
    sign_in(client, keys["a_member"])
    caller = _caller(keys["a_member"])
    task, _ = task_service.submit("sleep", {}, account_id=caller.account_id, priority="low")
    assert "(waits at" not in client.get(f"/dashboard/tasks/{task.id}").get_data(as_text=True)
    sweeper.keep_order(db.session, aging_seconds=0.001)  # long past one period: up to urgent
    db.session.commit()
    page = client.get(f"/dashboard/tasks/{task.id}").get_data(as_text=True)
    assert "low (waits at urgent after aging)" in page


def test_an_account_admin_has_no_admin_page_but_sees_its_quotas(backend, client, keys):
    caller = _caller(keys["a_admin"])
    accounts.configure(accounts.get(caller.account_id).name, max_waiting=1)
    _submit(keys["a_admin"])
    token = sign_in(client, keys["a_admin"])
    assert client.get("/dashboard/admin").status_code == 403
    assert client.post("/dashboard/admin/stop", data={"csrf_token": token}).status_code == 403
    assert control.paused(db.session) == []
    overview = client.get("/dashboard/").get_data(as_text=True)
    assert "your account" in overview and 'href="/dashboard/admin"' not in overview
    assert re.search(r'data-usage="waiting">1 of at most 1<', overview)
    refused = client.post("/dashboard/new/sleep", data={"csrf_token": token, "seconds": "1"})
    assert refused.status_code == 429 and "max_waiting" in refused.get_data(as_text=True)


def test_a_member_may_not_submit_urgent_from_the_form(backend, client, keys):
    token = sign_in(client, keys["a_member"])
    refused = client.post("/dashboard/new/sleep", data={"csrf_token": token, "seconds": "1", "priority": "urgent"})
    assert refused.status_code == 403 and "urgent needs an account admin" in refused.get_data(as_text=True)
    assert task_service.find(None) == []


def test_the_usage_page_shows_the_accounts_days_and_a_task_its_own_usage(backend, client, keys):
    mine, theirs = _submit(keys["b_member"]), _submit(keys["a_member"])
    test_usage.meter(mine.id, 1, ("llm_input_tokens", 1500, "gpt-4o-mini"), ("images", 2, "dall-e-3"))
    test_usage.meter(theirs.id, 1, ("images", 9, "secret-model"))
    usage_service.set_price("images", "0.04")
    sign_in(client, keys["b_member"])

    page = client.get("/dashboard/usage").get_data(as_text=True)
    task_page = client.get(f"/dashboard/tasks/{mine.id}").get_data(as_text=True)

    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    assert "your account" in page and f"{today} · " in page and "0.080000 USD + unpriced" in page
    assert "gpt-4o-mini" in page and "1500 tokens" in page and "unpriced" in page
    assert "secret-model" not in page, "another account's usage"
    assert "every other model" in page and "0.04" in page  # the prices table
    assert 'id="usage-h"' in task_page and "2 images" in task_page and "0.080000" in task_page
    assert 'href="/dashboard/usage" aria-current="page"' in page


def test_the_overview_charts_throughput_and_queue_wait_per_pool_from_the_counted_events(backend, client, keys):
    from app.queue import counting

    caller = _caller(keys["a_member"])
    now = models.utcnow()
    started = now - datetime.timedelta(minutes=10)
    # (pool, queue wait in seconds, outcome), written as the lifecycle writes them.
    cases = [("cpu", 0.3, "succeeded"), ("cpu", 0.3, "succeeded"), ("cpu", 4.0, "failed"), ("io", 0.02, "succeeded")]
    for pool, waited, outcome in cases:
        created = started - datetime.timedelta(seconds=waited)
        task = models.Task(type="noop", pool=pool, status=outcome, account_id=caller.account_id, attempt=1)
        task.created_at, task.run_at, task.started_at, task.finished_at = created, created, started, started
        db.session.add(task)
        db.session.flush()
        db.session.add(models.TaskEvent(task_id=task.id, attempt=1, kind="status", data={"status": "running"}))
        db.session.add(models.TaskEvent(task_id=task.id, attempt=1, kind="status", data={"status": outcome}))
        db.session.flush()
        for event in db.session.query(models.TaskEvent).filter_by(task_id=task.id):
            event.created_at = started
    db.session.commit()
    assert counting.count_batch(db.session(), lag_seconds=0) == 8
    db.session.commit()

    found = stats.counted(now, *stats.WINDOWS["hour"])
    assert sum(b["succeeded"] for b in found["throughput"]) == 3 and sum(b["failed"] for b in found["throughput"]) == 1
    cpu = [s for s in found["waits"]["cpu"] if s["count"]]
    assert len(cpu) == 1 and cpu[0]["count"] == 3
    # Two waits in (0.25, 0.5], one in (2.5, 5]: p50 interpolates in the first, p95 in the second.
    assert cpu[0]["p50"] == pytest.approx(0.25 + 0.25 * 1.5 / 2)
    assert cpu[0]["p95"] == pytest.approx(2.5 + 2.5 * (2.85 - 2) / 1)
    assert [s["p50"] for s in found["waits"]["io"] if s["count"]] == [pytest.approx(0.01 + 0.015 * 0.5)]
    assert stats.quantile({}, 0.5) is None and stats.quantile({float("inf"): 3}, 0.5) == 1800.0

    sign_in(client, keys["a_operator"])
    page = client.get("/dashboard/").get_data(as_text=True)
    assert "Queue wait of the cpu pool" in page and "Queue wait of the io pool" in page
    assert "<td>438 ms</td>" in page and "3 succeeded and 1 failed in the last hour" in page
    day = client.get("/dashboard/?window=day").get_data(as_text=True)
    assert "per 60 minutes over the last day" in day and "3 succeeded and 1 failed in the last day" in day
    live_day = client.get("/dashboard/overview/live?window=day").get_data(as_text=True)
    assert "over the last day" in live_day and "window=day" in live_day

    member = client.application.test_client()
    sign_in(member, keys["b_member"])  # another account: its own throughput, no platform waits
    other = member.get("/dashboard/?window=day").get_data(as_text=True)
    assert "0 succeeded and 0 failed in the last day" in other and "Queue wait of" not in other


def test_the_webhooks_page_adds_one_shows_its_secret_once_and_replays(backend, client, keys):
    token = sign_in(client, keys["a_admin"])
    added = client.post(
        "/dashboard/webhooks",
        data={"csrf_token": token, "url": "https://hooks.example.com/x", "events": ["task.cancelled"]},
    )
    page = added.get_data(as_text=True)
    assert added.status_code == 201 and 'id="webhook-secret">whsec_' in page
    again = client.get("/dashboard/webhooks").get_data(as_text=True)
    assert "https://hooks.example.com/x" in again and "whsec_" not in again, "the secret is shown once"
    refused = client.post("/dashboard/webhooks", data={"csrf_token": token, "url": "ftp://x", "events": []})
    assert refused.status_code == 422 and "url:" in refused.get_data(as_text=True)

    [endpoint] = webhook_service.endpoints(None)
    later = models.utcnow() + datetime.timedelta(hours=1)
    task = task_service.submit("noop", {}, account_id=endpoint.account_id, run_at=later)[0]
    task_service.cancel(task.id, account_id=endpoint.account_id)
    with runtime.current().sessions() as session:
        fan_out.fan_out_batch(session, 5.0, lag_seconds=0.0)
        session.commit()
    delivery = db.session.scalars(sa.select(models.WebhookDelivery)).one()
    shown = client.get(f"/dashboard/webhooks/{endpoint.id}").get_data(as_text=True)
    assert str(delivery.id) in shown and "Not sent yet." in shown and "Replay" in shown
    replayed = client.post(f"/dashboard/webhooks/deliveries/{delivery.id}/replay", data={"csrf_token": token})
    assert replayed.status_code == 303

    member = client.application.test_client()
    member_token = sign_in(member, keys["a_member"])
    assert "Add a webhook" not in member.get("/dashboard/webhooks").get_data(as_text=True)
    denied = member.post(f"/dashboard/webhooks/{endpoint.id}/delete", data={"csrf_token": member_token})
    assert denied.status_code == 403
    removed = client.post(f"/dashboard/webhooks/{endpoint.id}/delete", data={"csrf_token": token})
    assert removed.status_code == 303 and webhook_service.endpoints(None) == []
