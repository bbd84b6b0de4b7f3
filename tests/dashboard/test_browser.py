"""The dashboard in a real browser (Debian's Chromium through pytest-playwright) against a
real server on 127.0.0.1 and a real worker: sign in, submit a `sleep` task from the form and
watch its bar reach 100% without a reload, cancel another, stop and start the queue, see an
image artifact inline; a member sees no admin page and no other account's task. Screenshots
of each page go to test-artifacts/dashboard/."""

import io
import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from app import models, runtime
from app.extensions import db
from app.services import accounts
from app.services import tasks as task_service
from tests.conftest import ROOT

SHOTS = ROOT / "test-artifacts" / "dashboard"
PHONE = {"width": 390, "height": 844}
TASK_URL = re.compile(r"/dashboard/tasks/[0-9a-f-]{36}$")


@pytest.fixture
def settings(settings) -> dict:
    # Served over plain http on 127.0.0.1: no `Secure` on the session cookie (the PostgreSQL
    # backend would turn it on by default).
    return {**settings, "CONVEYOR_SSE_POLL_SECONDS": "0.2", "CONVEYOR_SECURE_COOKIES": "0"}


class Watched:
    """A browser page whose script errors and console errors (CSP refusals too) are kept."""

    def __init__(self, browser, base_url: str, javascript: bool = True):
        self.context = browser.new_context(
            base_url=base_url, viewport={"width": 1280, "height": 900}, java_script_enabled=javascript
        )
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on("console", self._console)

    def _console(self, message) -> None:
        # A 4xx the test asked for on purpose is logged as a failed resource; not a problem.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.problems.append(f"console: {message.text}")

    def shot(self, name: str, full_page: bool = True) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)

    def close(self) -> None:
        self.context.close()


def sign_in(watched: Watched, key: str) -> None:
    """Sign in from the sign-in page, by keyboard only."""
    page = watched.page
    page.goto("/dashboard/")
    expect(page).to_have_url(re.compile(r"/dashboard/signin\?next=/dashboard/$"))
    page.keyboard.press("Tab")
    expect(page.locator("a.skip")).to_be_focused()
    page.get_by_label("API key").focus()
    page.keyboard.type(key)
    watched.shot("signin")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile("^Overview"))).to_be_visible()


def submit_sleep(page, seconds: float) -> str:
    """Submit a sleep task from the New task form; return its page's URL."""
    page.goto("/dashboard/new/sleep")
    page.get_by_label("Seconds").fill(str(seconds))
    page.get_by_role("button", name="Submit").click()
    expect(page).to_have_url(TASK_URL)
    return page.url


def status_badge(page):
    return page.locator("#task-status .badge")


def add_image_task(account_id) -> str:
    """A finished `image` task with a stored 64x48 PNG artifact, as the runner leaves it."""
    task = models.Task(type="image", pool="io", status="succeeded", account_id=account_id, progress=100.0)
    task.finished_at = models.utcnow()
    db.session.add(task)
    db.session.flush()
    png = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(png, format="PNG")
    key = f"tasks/{task.id}/1/picture.png"
    size = runtime.current().storage.put_stream(key, io.BytesIO(png.getvalue()), mime="image/png")
    meta = {"prompt": "a red rectangle"}
    db.session.add(
        models.Artifact(
            task_id=task.id,
            attempt=1,
            kind="image",
            name="picture.png",
            storage_key=key,
            mime="image/png",
            size=size,
            meta=meta,
        )
    )
    db.session.commit()
    return str(task.id)


def test_admin_submits_watches_cancels_and_controls_the_queue(backend, app, server, processes, keys, browser):
    processes.worker("cpu")
    admin = Watched(browser, server)
    page = admin.page
    sign_in(admin, keys["a_operator"])
    admin.shot("overview")
    overview = admin.context.new_page()  # left open: its figures must update by themselves
    overview.goto("/dashboard/")
    overview.evaluate("window.notReloaded = true")
    expect(overview.locator('.count[data-status="succeeded"]')).to_have_text("0")

    # Submit from the form, then watch the bar move and reach 100% on the same page.
    page.goto("/dashboard/new/sleep")
    admin.shot("new-sleep")
    url = submit_sleep(page, 3)
    page.evaluate("window.notReloaded = true")
    page.wait_for_function(
        "() => { const p = document.querySelector('#bar progress'); return p.value > 0 && p.value < 100 }"
    )
    expect(page.locator("#bar progress")).to_have_attribute("value", "100.0", timeout=30_000)
    expect(status_badge(page)).to_have_text("succeeded", timeout=10_000)
    expect(page.locator("#timeline li.status").last).to_contain_text("succeeded")
    expect(page.locator("#task-panel")).to_contain_text('"slept": 3.0')
    assert page.evaluate("window.notReloaded") is True
    assert page.url == url
    admin.shot("task-succeeded")

    # Cancel a running task.
    submit_sleep(page, 60)
    expect(status_badge(page)).to_have_text("running", timeout=15_000)
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".flash")).to_contain_text("Cancel requested")
    expect(status_badge(page)).to_have_text("cancelled", timeout=15_000)
    expect(page.get_by_role("button", name="Retry")).to_be_visible()
    admin.shot("task-cancelled")

    # Stop the queue: a new task waits; start it: the task runs.
    page.goto("/dashboard/admin")
    page.get_by_label("What to stop or start").select_option("queue")
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.locator("#paused-now")).to_contain_text("the whole queue")
    admin.shot("admin-stopped")
    waiting = submit_sleep(page, 0.2)
    page.wait_for_timeout(1500)
    expect(status_badge(page)).to_have_text("queued")
    page.goto("/dashboard/")
    expect(page.locator("#paused")).to_be_visible()
    expect(page.locator(".paused-list")).to_contain_text("the whole queue")
    page.goto("/dashboard/admin")
    page.get_by_role("button", name="Start the whole queue").click()
    expect(page.locator("#paused-now")).to_have_text("Nothing is paused.")
    page.goto(waiting)
    expect(status_badge(page)).to_have_text("succeeded", timeout=20_000)

    # An image artifact shows inline, loaded through the dashboard.
    image_task = add_image_task(accounts.authenticate(keys["a_admin"]).account_id)
    page.goto(f"/dashboard/tasks/{image_task}")
    image = page.get_by_role("img", name="a red rectangle")
    expect(image).to_be_visible()
    page.wait_for_function("() => document.querySelector('.artifact img').naturalWidth === 64")
    admin.shot("task-image")

    expect(overview.locator('.count[data-status="succeeded"]')).to_have_text("3", timeout=10_000)
    expect(overview.locator('.count[data-status="cancelled"]')).to_have_text("1")
    assert overview.evaluate("window.notReloaded") is True
    overview.close()

    page.goto("/dashboard/tasks")
    expect(page.locator("#task-rows tr")).to_have_count(4)
    admin.shot("tasks")
    page.goto("/dashboard/new")
    admin.shot("new")
    page.set_viewport_size(PHONE)
    page.goto("/dashboard/tasks")
    admin.shot("tasks-phone")
    page.goto("/dashboard/")
    admin.shot("overview-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert admin.problems == []
    admin.close()


def test_member_without_javascript_sees_no_admin_page_and_no_other_account(backend, app, server, keys, browser):
    other = accounts.authenticate(keys["a_admin"])
    theirs, _ = task_service.submit("sleep", {"seconds": 1}, account_id=other.account_id, user_id=other.user_id)
    member = Watched(browser, server, javascript=False)  # every page and form works without it
    page = member.page
    sign_in(member, keys["b_member"])
    expect(page.get_by_role("navigation", name="Main").get_by_role("link")).to_have_text(
        ["Overview", "Tasks", "New task", "Usage", "Webhooks", "Schedules"]
    )
    member.shot("overview-member")
    mine = submit_sleep(page, 1)
    expect(status_badge(page)).to_have_text("queued")  # no worker runs in this test
    expect(page.locator("#timeline li")).to_have_count(1)
    member.shot("task-member-nojs")

    answer = page.goto("/dashboard/admin")
    assert answer.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    member.shot("admin-refused")

    page.goto("/dashboard/tasks")
    rows = page.locator("#task-rows tr")
    expect(rows).to_have_count(1)
    expect(rows.first.get_by_role("link")).to_have_attribute("href", mine.removeprefix(server))
    assert str(theirs.id) not in page.content()
    answer = page.goto(f"/dashboard/tasks/{theirs.id}")
    assert answer.status == 404
    member.shot("other-task-refused")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.goto("/dashboard/tasks").url.endswith("/dashboard/signin?next=/dashboard/tasks")
    assert member.problems == []
    member.close()
