"""Metered usage and cost: what a running attempt meters (through the queue's durable context)
is summed per task (the task's detail, `tasks show`) and per account and UTC day (`/api/usage`,
`manage.py usage`, the dashboard's usage page), priced from the prices table an operator sets
(`/api/usage/prices`, `manage.py prices`); unpriced lines stay null, never 0; each caller sees
only its own account's; usage outlives a purge of its task."""

import datetime
import uuid

import pytest

from app import models, runtime
from app.extensions import db
from app.queue import context as context_module
from tests import commands
from tests.api.conftest import bearer

pytestmark = pytest.mark.embedded

TODAY = datetime.datetime.now(datetime.UTC).date()
YESTERDAY = TODAY - datetime.timedelta(days=1)


def _submit(client, key: str, type: str = "noop") -> uuid.UUID:
    response = client.post("/api/tasks", json={"type": type}, headers=bearer(key))
    assert response.status_code == 202, response.get_json()
    return uuid.UUID(response.get_json()["task_id"])


def meter(task_id: uuid.UUID, attempt: int, *measures: tuple) -> context_module.DurableContext:
    """Meter `measures` ((measure, quantity, model), ...) as attempt `attempt` of the task would."""
    conveyor = runtime.current()
    db.session.rollback()
    task = db.session.get(models.Task, task_id)
    ctx = context_module.DurableContext(
        conveyor.sessions, task.id, attempt, conveyor.settings["CONVEYOR_VAR_DIR"], conveyor.storage,
        task.account_id, conveyor.settings, type=task.type,
    )  # fmt: skip
    try:
        for measure, quantity, model in measures:
            ctx.meter(measure, quantity, model)
    finally:
        ctx.close()
    return ctx


def _lines(body: dict) -> dict:
    return {(line["measure"], line["model"]): (line["quantity"], line["cost"]) for line in body}


def _set_price(client, keys, **body):
    response = client.put("/api/usage/prices", json=body, headers=bearer(keys["a_operator"]))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_task_shows_what_its_attempts_consumed_priced_where_a_price_is_set(app, client, keys):
    task_id = _submit(client, keys["a_member"])
    meter(task_id, 1, ("llm_input_tokens", 1200, "gpt-4o-mini"), ("llm_output_tokens", 300, "gpt-4o-mini"))
    meter(task_id, 2, ("llm_input_tokens", 800, "gpt-4o-mini"), ("speech_characters", 42, "espeak"))
    _set_price(client, keys, measure="llm_input_tokens", price="0.15", per=1_000_000)
    _set_price(client, keys, measure="llm_input_tokens", model="gpt-4o-mini", price="0.60", per=1_000_000)

    detail = client.get(f"/api/tasks/{task_id}", headers=bearer(keys["a_member"])).get_json()

    assert _lines(detail["usage"]) == {
        ("llm_input_tokens", "gpt-4o-mini"): (2000.0, 0.0012),  # the model's own price, not the general one
        ("llm_output_tokens", "gpt-4o-mini"): (300.0, None),
        ("speech_characters", "espeak"): (42.0, None),
    }
    assert {line["unit"] for line in detail["usage"]} == {"token", "character"}
    shown = commands.in_process(app, "tasks", "show", str(task_id))
    assert shown.returncode == 0 and '"quantity": 2000.0' in shown.stdout, shown.stdout


def test_usage_is_summed_per_account_and_day_with_each_days_cost(app, client, keys):
    first, second = _submit(client, keys["a_member"]), _submit(client, keys["a_admin"])
    other = _submit(client, keys["b_member"])
    meter(first, 1, ("images", 1, "dall-e-3"), ("media_seconds", 12.5, ""))
    meter(second, 1, ("images", 2, "dall-e-3"))
    meter(other, 1, ("images", 5, "dall-e-3"))
    account_a = db.session.get(models.Task, first).account_id
    db.session.add(
        models.UsageRecord(
            account_id=account_a, task_id=first, attempt=1, type="noop", measure="images",
            model="dall-e-3", quantity=4, day=YESTERDAY,
        )
    )  # fmt: skip
    db.session.commit()
    _set_price(client, keys, measure="images", price="0.04")

    report = client.get("/api/usage", headers=bearer(keys["a_member"])).get_json()

    assert report["currency"] == "USD" and report["until"] == TODAY.isoformat()
    assert report["since"] == (TODAY - datetime.timedelta(days=29)).isoformat()
    by_day = {day["day"]: day for day in report["days"]}
    assert list(by_day) == [YESTERDAY.isoformat(), TODAY.isoformat()], "oldest first, one account"
    today = by_day[TODAY.isoformat()]
    assert _lines(today["lines"]) == {("images", "dall-e-3"): (3.0, 0.12), ("media_seconds", ""): (12.5, None)}
    assert (today["cost"], today["priced"]) == (0.12, False)
    assert (by_day[YESTERDAY.isoformat()]["cost"], by_day[YESTERDAY.isoformat()]["priced"]) == (0.16, True)

    only_today = client.get(f"/api/usage?since={TODAY}", headers=bearer(keys["a_member"])).get_json()
    assert [day["day"] for day in only_today["days"]] == [TODAY.isoformat()]
    everyone = client.get(f"/api/usage?since={TODAY}", headers=bearer(keys["a_operator"])).get_json()
    assert sorted(_lines(day["lines"])[("images", "dall-e-3")][0] for day in everyone["days"]) == [3.0, 5.0]


def test_callers_see_only_their_own_accounts_usage(app, client, keys):
    meter(_submit(client, keys["a_member"]), 1, ("images", 1, "m"))
    b_task = _submit(client, keys["b_member"])
    meter(b_task, 1, ("images", 7, "m"))
    b_name = _account_name(b_task)

    mine = client.get("/api/usage", headers=bearer(keys["a_member"])).get_json()
    asked_for_b = client.get(f"/api/usage?account={b_name}", headers=bearer(keys["a_admin"])).get_json()
    operator_b = client.get(f"/api/usage?account={b_name}", headers=bearer(keys["a_operator"])).get_json()

    assert [_lines(day["lines"])[("images", "m")][0] for day in mine["days"]] == [1.0]
    assert asked_for_b["days"] == [], "another account's name shows nothing, as if it had no usage"
    assert [day["account"] for day in operator_b["days"]] == [b_name]
    unknown = client.get("/api/usage?account=nobody-here", headers=bearer(keys["a_operator"]))
    assert unknown.status_code == 404


def _account_name(task_id: uuid.UUID) -> str:
    return db.session.get(models.Account, db.session.get(models.Task, task_id).account_id).name


def test_usage_outlives_a_purge_of_its_task(app, client, keys):
    task_id = _submit(client, keys["a_member"])
    meter(task_id, 1, ("transcribed_seconds", 95.0, "whisper-1"))
    ended = models.utcnow() - datetime.timedelta(days=2)
    db.session.query(models.Task).filter_by(id=task_id).update({"status": "succeeded", "finished_at": ended})
    db.session.commit()

    purged = commands.in_process(app, "tasks", "purge", "--older-than", "1")

    assert purged.returncode == 0, purged.stdout + purged.stderr
    db.session.rollback()
    assert db.session.get(models.Task, task_id) is None
    report = client.get("/api/usage", headers=bearer(keys["a_member"])).get_json()
    assert _lines(report["days"][0]["lines"]) == {("transcribed_seconds", "whisper-1"): (95.0, None)}


def test_nothing_or_no_figure_meters_nothing_and_an_unknown_measure_is_a_bug(app, client, keys):
    task_id = _submit(client, keys["a_member"])
    ctx = meter(task_id, 1, ("llm_input_tokens", None, "local"), ("images", 0, "m"), ("images", float("nan"), "m"))
    assert ctx.usage == []
    assert db.session.query(models.UsageRecord).count() == 0
    with pytest.raises(ValueError, match="unknown measure 'tokens'"):
        meter(task_id, 1, ("tokens", 5, ""))


@pytest.mark.parametrize(
    "body, field",
    [
        ({"measure": "tokens", "price": "1"}, "measure"),
        ({"measure": "images", "price": "-1"}, "price"),
        ({"measure": "images", "price": "NaN"}, "price"),
        ({"measure": "images", "price": "1e12"}, "price"),
        ({"measure": "images", "price": "1", "per": 0}, "per"),
        ({"measure": "images", "price": "1", "model": "a\u0000b"}, "model"),
        ({"measure": "images"}, "price"),
    ],
)
def test_a_bad_price_is_a_422_naming_the_field_and_nothing_is_stored(app, client, keys, body, field):
    response = client.put("/api/usage/prices", json=body, headers=bearer(keys["a_operator"]))

    assert response.status_code == 422, response.get_json()
    assert field in str(response.get_json()["errors"]), response.get_json()
    assert db.session.query(models.Price).count() == 0


def test_only_operators_set_prices_and_everyone_reads_them(app, client, keys):
    body = {"measure": "images", "price": "0.04"}
    assert client.put("/api/usage/prices", json=body, headers=bearer(keys["a_admin"])).status_code == 403
    _set_price(client, keys, **body)

    listed = client.get("/api/usage/prices", headers=bearer(keys["b_member"])).get_json()

    assert listed["currency"] == "USD"
    assert [(p["measure"], p["model"], p["price"], p["per"], p["unit"]) for p in listed["items"]] == [
        ("images", "", "0.04", 1, "image")
    ]
    removed = client.delete("/api/usage/prices?measure=images", headers=bearer(keys["a_operator"]))
    assert removed.status_code == 200 and removed.get_json()["items"] == []
    again = client.delete("/api/usage/prices?measure=images", headers=bearer(keys["a_operator"]))
    assert again.status_code == 404


@pytest.mark.parametrize(
    "query, field",
    [
        (f"since={TODAY}&until={YESTERDAY}", "until"),
        (f"since={TODAY - datetime.timedelta(days=400)}&until={TODAY}", "until"),
        ("since=0001-01-01", "since"),
        ("until=yesterday", "until"),
        ("account=a%00b", "account"),
    ],
)
def test_a_bad_range_is_a_422_naming_the_field(app, client, keys, query, field):
    response = client.get(f"/api/usage?{query}", headers=bearer(keys["a_member"]))

    assert response.status_code == 422, response.get_json()
    assert field in str(response.get_json()["errors"])


def test_the_cli_sets_prices_and_prints_the_daily_report(app, client, keys):
    task_id = _submit(client, keys["a_member"])
    meter(task_id, 1, ("speech_characters", 2500, "elevenlabs:eleven_multilingual_v2"))
    name = _account_name(task_id)

    priced = commands.in_process(app, "prices", "set", "speech_characters", "30", "--per", "100000")
    listed = commands.in_process(app, "prices", "list")
    report = commands.in_process(app, "usage", "--account", name)
    refused = commands.in_process(app, "prices", "set", "speech_characters", "cheap")

    assert priced.returncode == 0, priced.stdout + priced.stderr
    assert "speech_characters" in listed.stdout and "30 USD per 100000 character" in listed.stdout
    assert report.returncode == 0, report.stdout + report.stderr
    assert f"{TODAY}  {name}  0.750000 USD" in report.stdout, report.stdout
    assert "elevenlabs:eleven_multilingual_v2" in report.stdout and "0.750000" in report.stdout
    assert refused.returncode == 2 and "price" in refused.stderr
    deleted = commands.in_process(app, "prices", "delete", "speech_characters")
    assert deleted.returncode == 0 and commands.in_process(app, "prices", "list").stdout == ""
