"""Marshmallow schemas of the API's requests and responses (they are the OpenAPI spec too).

Request bodies and query strings refuse unknown fields (a typo is a 422 naming it); headers
ignore what they do not know. Inputs are read with `fields` (text, datetimes and JSON objects
with the limits every input needs).
"""

import marshmallow as ma

from app.api import fields
from app.models import Priority, Status
from processors.base import MEASURES

PRIORITIES = [p.name.lower() for p in Priority]
STATUSES = [str(s) for s in Status]
ROLES = ["operator", "admin", "member"]


class Body(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class Query(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class Headers(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE


class SubmitOptions(Body):
    """What every submit may say besides the type and its params."""

    priority = fields.Text(
        validate=ma.validate.OneOf(PRIORITIES), metadata={"description": "default: the type's policy"}
    )
    run_at = fields.UtcDateTime(metadata={"description": "start no earlier than this (ISO 8601 with zone)"})
    parent_id = ma.fields.UUID(metadata={"description": "a task of the same account this one belongs to"})


class TaskSubmit(SubmitOptions):
    type = fields.Text(required=True, validate=ma.validate.Length(min=1, max=64))
    params = fields.JsonObject(load_default=dict, metadata={"description": "the type's params; see /api/task-types"})


class IdempotencyHeader(Headers):
    idempotency_key = fields.Text(
        data_key="Idempotency-Key",
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "repeat a submit safely: the same key in the account returns the first task"},
    )


class Submitted(ma.Schema):
    task_id = ma.fields.UUID(required=True)
    status = ma.fields.String(required=True, metadata={"enum": STATUSES})
    created = ma.fields.Boolean(required=True, metadata={"description": "false when the idempotency key was seen"})
    position = ma.fields.Integer(
        allow_none=True, metadata={"description": "place in its pool, 1 = next; 101 = at least that far back"}
    )
    eta_seconds = ma.fields.Float(allow_none=True, metadata={"description": "estimated seconds until it finishes"})


class BatchSubmit(Body):
    tasks = ma.fields.List(
        ma.fields.Nested(TaskSubmit),
        required=True,
        validate=ma.validate.Length(min=1, max=1000),
        metadata={"description": "1 to 1000 tasks, each as `POST /api/tasks` takes it; stored all or none"},
    )


class BatchIdempotencyHeader(Headers):
    idempotency_key = fields.Text(
        data_key="Idempotency-Key",
        validate=ma.validate.Length(min=1, max=190),
        metadata={
            "description": "repeat a batch safely: the same key in the account returns the first batch's tasks "
            "(task n gets the key `<key>#n`)"
        },
    )


class BatchTask(ma.Schema):
    task_id = ma.fields.UUID(required=True, attribute="id")
    type = ma.fields.String(required=True)
    pool = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"enum": STATUSES})
    priority = ma.fields.Function(
        lambda task: Priority(task.priority).name.lower(), required=True, metadata={"enum": PRIORITIES}
    )
    run_at = ma.fields.DateTime(required=True)


class BatchSubmitted(ma.Schema):
    created = ma.fields.Boolean(required=True, metadata={"description": "false when the idempotency key was seen"})
    count = ma.fields.Integer(required=True)
    tasks = ma.fields.List(ma.fields.Nested(BatchTask), required=True, metadata={"description": "in the batch's order"})


class TaskFilter(Query):
    type = fields.Text(validate=ma.validate.Length(max=64))
    status = fields.Text(validate=ma.validate.OneOf(STATUSES))
    priority = fields.Text(validate=ma.validate.OneOf(PRIORITIES))
    created_after = fields.UtcDateTime()
    created_before = fields.UtcDateTime()
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100000))
    page_size = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=500))


class TaskSummary(ma.Schema):
    id = ma.fields.UUID(required=True)
    type = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"enum": STATUSES})
    priority = ma.fields.Function(lambda task: Priority(task.priority).name.lower(), metadata={"enum": PRIORITIES})
    progress = ma.fields.Float(required=True)
    stage = ma.fields.String(allow_none=True)
    message = ma.fields.String(allow_none=True)
    attempt = ma.fields.Integer(required=True)
    max_attempts = ma.fields.Integer(required=True)
    parent_id = ma.fields.UUID(allow_none=True)
    created_at = ma.fields.AwareDateTime(required=True)
    started_at = ma.fields.AwareDateTime(allow_none=True)
    finished_at = ma.fields.AwareDateTime(allow_none=True)


class PageMeta(ma.Schema):
    page = ma.fields.Integer(required=True)
    page_size = ma.fields.Integer(required=True)
    total = ma.fields.Integer(required=True)
    pages = ma.fields.Integer(required=True)


class TaskPage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(TaskSummary), required=True)
    meta = ma.fields.Nested(PageMeta, required=True)


class Attempt(ma.Schema):
    attempt = ma.fields.Integer(required=True)
    started_at = ma.fields.AwareDateTime(allow_none=True)
    ended_at = ma.fields.AwareDateTime(allow_none=True)
    worker = ma.fields.String(allow_none=True)
    outcome = ma.fields.String(allow_none=True, metadata={"description": "succeeded, failed, cancelled or retrying"})
    error = ma.fields.Dict(allow_none=True)


class Artifact(ma.Schema):
    id = ma.fields.UUID(required=True)
    attempt = ma.fields.Integer(required=True)
    kind = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    mime = ma.fields.String(allow_none=True)
    size = ma.fields.Integer(required=True)
    metadata = ma.fields.Dict(attribute="meta")
    created_at = ma.fields.AwareDateTime(required=True)
    url = ma.fields.Function(lambda a: f"/api/tasks/{a.task_id}/artifacts/{a.id}")


class TaskDetail(TaskSummary):
    effective_priority = ma.fields.Function(
        lambda task: Priority(task.effective_priority).name.lower(),
        metadata={
            "enum": PRIORITIES,
            "description": "the priority the task waits at: its own, raised one level per aging period due",
        },
    )
    params = ma.fields.Dict(required=True)
    result = ma.fields.Dict(allow_none=True)
    error = ma.fields.Dict(allow_none=True)
    run_at = ma.fields.AwareDateTime(required=True)
    cancel_requested_at = ma.fields.AwareDateTime(allow_none=True)
    worker = ma.fields.String(allow_none=True)
    attempts = ma.fields.List(ma.fields.Nested(Attempt), required=True)
    artifacts = ma.fields.List(ma.fields.Nested(Artifact), required=True)
    position = ma.fields.Integer(allow_none=True)
    eta_seconds = ma.fields.Float(allow_none=True)
    usage = ma.fields.List(
        ma.fields.Nested(lambda: UsageLine()),
        required=True,
        metadata={"description": "what the task consumed over all its attempts, with its cost"},
    )


class CancelResult(ma.Schema):
    task_id = ma.fields.UUID(required=True)
    outcome = ma.fields.String(required=True, metadata={"enum": ["cancelled", "cancel_requested"]})


class EventQuery(Query):
    format = fields.Text(validate=ma.validate.OneOf(["sse", "json"]), load_default="sse")
    after = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0, max=fields.MAX_ID))
    limit = ma.fields.Integer(load_default=500, validate=ma.validate.Range(min=1, max=5000))


class Event(ma.Schema):
    id = ma.fields.Integer(required=True, metadata={"description": "the sequence id; the SSE event id"})
    task_id = ma.fields.UUID(required=True)
    attempt = ma.fields.Integer(required=True)
    kind = ma.fields.String(required=True, metadata={"enum": ["status", "progress", "artifact", "log"]})
    data = ma.fields.Dict(required=True)
    created_at = ma.fields.AwareDateTime(required=True)


class EventPage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(Event), required=True)
    status = ma.fields.String(required=True, metadata={"enum": STATUSES})
    done = ma.fields.Boolean(required=True, metadata={"description": "the task ended and every event is listed"})
    next_after = ma.fields.Integer(required=True, metadata={"description": "pass as `after` to poll for more"})


class Provider(ma.Schema):
    name = ma.fields.String(required=True)
    configured = ma.fields.Boolean(required=True)
    required = ma.fields.Boolean(
        required=True, metadata={"description": "false: only some params need it (e.g. an LLM for a prompt)"}
    )
    reason = ma.fields.String(allow_none=True)


class TaskType(ma.Schema):
    type = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    endpoint = ma.fields.String(required=True, metadata={"description": "its typed submit endpoint"})
    params_schema = ma.fields.Dict(required=True, metadata={"description": "JSON Schema of its params"})
    policy = ma.fields.Dict(required=True)
    available = ma.fields.Boolean(required=True)
    providers = ma.fields.List(ma.fields.Nested(Provider), required=True)


class Scope(Query):
    pool = fields.Text(validate=ma.validate.Length(max=64))
    type = fields.Text(validate=ma.validate.Length(max=64))


class Limit(Body):
    type = fields.Text(required=True, validate=ma.validate.Length(min=1, max=64))
    limit = ma.fields.Integer(
        required=True,
        allow_none=True,
        validate=ma.validate.Range(min=1, max=10000),
        metadata={"description": "null: none"},
    )


STUCK_AFTER_MAX = 366 * 86400.0


class CleanupRequest(Body):
    stuck_after = ma.fields.Float(
        allow_none=True,
        validate=ma.validate.Range(min=1, max=STUCK_AFTER_MAX),
        metadata={"description": "also end tasks silent this long (s), at most a year"},
    )


class RunningTask(ma.Schema):
    id = ma.fields.UUID(required=True)
    type = ma.fields.String(required=True)
    attempt = ma.fields.Integer(required=True)
    progress = ma.fields.Float(required=True)
    stage = ma.fields.String(allow_none=True)
    worker = ma.fields.String(allow_none=True)
    started_at = ma.fields.AwareDateTime(allow_none=True)


class WorkerSeen(ma.Schema):
    worker = ma.fields.String(required=True)
    pool = ma.fields.String(required=True)
    last_seen = ma.fields.AwareDateTime(required=True)


class SupervisedChild(ma.Schema):
    name = ma.fields.String(required=True, metadata={"description": "e.g. `worker --pool cpu`, `sweeper`"})
    pid = ma.fields.Integer(allow_none=True, required=True, metadata={"description": "null while it restarts"})
    state = ma.fields.String(required=True, metadata={"enum": ["running", "restarting"]})
    restarts = ma.fields.Integer(required=True)
    last_exit = ma.fields.Integer(
        allow_none=True, required=True, metadata={"description": "its last exit code (negative: killed by that signal)"}
    )


class ProcessHealth(ma.Schema):
    role = ma.fields.String(required=True, metadata={"description": "`worker-<pool>`, `sweeper` or `run`"})
    hostname = ma.fields.String(required=True)
    pid = ma.fields.Integer(required=True)
    state = ma.fields.String(
        metadata={"description": "worker: `consuming`; sweeper: `active`, `standby` or `retrying`; run: `supervising`"}
    )
    healthy = ma.fields.Boolean(required=True, metadata={"description": "alive with a fresh heartbeat"})
    age_seconds = ma.fields.Float(required=True, metadata={"description": "since its last heartbeat"})
    problem = ma.fields.String(metadata={"description": "the last error of a sweeper retrying"})
    children = ma.fields.List(
        ma.fields.Nested(SupervisedChild), metadata={"description": "`run` only: its workers and sweeper"}
    )


class ScopeName(ma.Schema):
    scope = ma.fields.String(required=True, metadata={"enum": ["queue", "pool", "type"]})
    name = ma.fields.String(required=True)


class QueueStatus(ma.Schema):
    by_status = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)
    by_type = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer()),
        required=True,
    )
    waiting_by_priority = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)
    oldest_waiting_seconds = ma.fields.Float(allow_none=True, required=True)
    running = ma.fields.List(ma.fields.Nested(RunningTask), required=True)
    workers = ma.fields.List(ma.fields.Nested(WorkerSeen), required=True)
    idle_workers = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        allow_none=True,
        required=True,
        metadata={
            "description": "per pool, worker processes idle and waiting on PostgreSQL for its work now; "
            "null where workers do not wait so (SQLite, CONVEYOR_LINGER_SECONDS=0)"
        },
    )
    durations = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Float()),
        required=True,
        metadata={"description": "per type: count, mean, p50, p95, max seconds of recent successful runs"},
    )
    paused = ma.fields.List(ma.fields.Nested(ScopeName), required=True)
    limits = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)
    processes = ma.fields.List(
        ma.fields.Nested(ProcessHealth),
        required=True,
        metadata={"description": "processes with a heartbeat in the var folder (`manage.py worker --check`)"},
    )


class Switched(ma.Schema):
    scope = ma.fields.String(required=True, metadata={"enum": ["queue", "pool", "type"]})
    name = ma.fields.String(required=True)
    paused = ma.fields.Boolean(required=True)
    woken = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.Integer(), metadata={"description": "wake-ups sent"}
    )


class LimitSet(ma.Schema):
    type = ma.fields.String(required=True)
    limit = ma.fields.Integer(allow_none=True, required=True)


class Handled(ma.Schema):
    task_id = ma.fields.String(required=True)
    type = ma.fields.String(required=True)
    attempt = ma.fields.Integer(required=True)
    action = ma.fields.String(required=True, metadata={"description": "requeued, failed or cancelled"})
    reason = ma.fields.String(required=True)
    run_at = ma.fields.String(metadata={"description": "when a requeued task may start again"})


class CleanupReport(ma.Schema):
    handled = ma.fields.Integer(required=True)
    tasks = ma.fields.List(ma.fields.Nested(Handled), required=True)


class Font(ma.Schema):
    name = ma.fields.String(required=True, metadata={"description": "use it as `font_family` in params"})
    family = ma.fields.String(required=True)
    license = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    url = ma.fields.Function(lambda f: f"/api/fonts/{f.name}", metadata={"description": "the font file"})


class Voice(ma.Schema):
    id = ma.fields.String(required=True, metadata={"description": "use it as `voice` in params"})
    name = ma.fields.String(required=True)
    provider = ma.fields.String(
        required=True, metadata={"description": "espeak, openai or elevenlabs: use it as `provider` in params"}
    )
    language = ma.fields.String(allow_none=True)
    gender = ma.fields.String(allow_none=True)


class VoiceList(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(Voice), required=True)
    problems = ma.fields.List(
        ma.fields.String(),
        required=True,
        metadata={"description": "each provider whose voices could not be listed, with why"},
    )


class UploadForm(ma.Schema):
    file = ma.fields.Raw(
        required=True,
        metadata={"type": "string", "format": "binary", "description": "the file; its content decides its kind"},
    )


class Upload(ma.Schema):
    id = ma.fields.UUID(required=True)
    filename = ma.fields.String(required=True)
    kind = ma.fields.String(required=True, metadata={"description": "video, audio, image or subtitles"})
    mime = ma.fields.String(required=True)
    size = ma.fields.Integer(required=True)
    sha256 = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    source = ma.fields.Function(
        lambda u: {"upload_id": str(u.id)},
        metadata={"description": "use it as a task's `source` param", "type": "object"},
    )
    url = ma.fields.Function(lambda u: f"/api/uploads/{u.id}/file")


class UploadPage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(Upload), required=True)
    meta = ma.fields.Nested(PageMeta, required=True)


class PageQuery(Query):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100000))
    page_size = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=500))


class QueueTaskFilter(TaskFilter):
    account = ma.fields.String(
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "an account's name (operators only; an account admin sees its own)"},
    )


class InForce(ma.Schema):
    value = ma.fields.Raw(allow_none=True, metadata={"description": "the value in force; null: no limit"})
    default = ma.fields.Boolean(required=True, metadata={"description": "true: the platform default"})


class Quotas(ma.Schema):
    max_waiting = ma.fields.Nested(InForce, required=True)
    max_running = ma.fields.Nested(InForce, required=True)
    submit_rate = ma.fields.Nested(InForce, required=True, metadata={"description": "per account, all keys"})
    key_submit_rate = ma.fields.Nested(InForce, required=True, metadata={"description": "per key"})


class Usage(ma.Schema):
    waiting = ma.fields.Integer(required=True)
    running = ma.fields.Integer(required=True)


class AccountInfo(ma.Schema):
    id = ma.fields.UUID(required=True)
    name = ma.fields.String(required=True)
    weight = ma.fields.Float(required=True, metadata={"description": "fair-share weight"})
    allow_urgent = ma.fields.Boolean(required=True, metadata={"description": "members may submit urgent"})
    quotas = ma.fields.Nested(Quotas, required=True)
    usage = ma.fields.Nested(Usage, required=True)
    role = ma.fields.String(required=True, metadata={"description": "the caller's role", "enum": ROLES})


class UsageLine(ma.Schema):
    measure = ma.fields.String(required=True, metadata={"enum": list(MEASURES)})
    model = ma.fields.String(required=True, metadata={"description": "the provider's model or engine; empty if none"})
    unit = ma.fields.String(required=True)
    quantity = ma.fields.Float(required=True)
    cost = ma.fields.Float(allow_none=True, metadata={"description": "null: no price is set for it"})


class UsageDay(ma.Schema):
    day = ma.fields.Date(required=True, metadata={"description": "a UTC day"})
    account = ma.fields.String(required=True)
    cost = ma.fields.Float(required=True, metadata={"description": "the sum of the priced lines"})
    priced = ma.fields.Boolean(required=True, metadata={"description": "false: some line has no price"})
    lines = ma.fields.List(ma.fields.Nested(UsageLine), required=True)


class UsageReport(ma.Schema):
    currency = ma.fields.String(required=True)
    since = ma.fields.Date(required=True)
    until = ma.fields.Date(required=True)
    days = ma.fields.List(ma.fields.Nested(UsageDay), required=True)


class UsageQuery(Query):
    since = ma.fields.Date(
        validate=ma.validate.Range(min=fields.EARLIEST_DAY),
        metadata={"description": "first UTC day (default: 29 days before until)"},
    )
    until = ma.fields.Date(
        validate=ma.validate.Range(min=fields.EARLIEST_DAY),
        metadata={"description": "last UTC day, included (default: today)"},
    )
    account = fields.Text(
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "an account's name (operators; others see their own account)"},
    )


class Price(ma.Schema):
    measure = ma.fields.String(required=True, metadata={"enum": list(MEASURES)})
    model = ma.fields.String(required=True, metadata={"description": "empty: every model without its own price"})
    unit = ma.fields.String(required=True)
    price = ma.fields.String(required=True, metadata={"description": "the price of `per` units, a decimal string"})
    per = ma.fields.Integer(required=True)
    updated_at = ma.fields.AwareDateTime(required=True)


class PriceList(ma.Schema):
    currency = ma.fields.String(required=True)
    items = ma.fields.List(ma.fields.Nested(Price), required=True)


class PriceSet(Body):
    measure = ma.fields.String(required=True, validate=ma.validate.OneOf(list(MEASURES)))
    model = fields.Text(load_default="", validate=ma.validate.Length(max=200))
    price = ma.fields.Decimal(
        required=True,
        as_string=True,
        places=10,
        # Bounds checked by the service: a Range of Decimals would put strings in the spec.
        metadata={
            "description": "the price of `per` units, from 0 to under 10^10, e.g. 0.15 per 1000000 tokens",
        },
    )
    per = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=10**12))


class PriceKey(Query):
    measure = ma.fields.String(required=True, validate=ma.validate.OneOf(list(MEASURES)))
    model = fields.Text(load_default="", validate=ma.validate.Length(max=200))


# --- webhooks ----------------------------------------------------------------------------------

WEBHOOK_EVENTS = ["task.succeeded", "task.failed", "task.cancelled", "task.started", "task.progress"]


class WebhookCreate(Body):
    url = fields.Text(
        required=True,
        validate=ma.validate.Length(min=1, max=2000),
        metadata={"description": "an http(s) URL on a public address (private ones need CONVEYOR_ALLOW_PRIVATE_URLS)"},
    )
    events = ma.fields.List(
        fields.Text(validate=ma.validate.OneOf(WEBHOOK_EVENTS)),
        validate=ma.validate.Length(min=1, max=len(WEBHOOK_EVENTS)),
        metadata={"description": "event types to send (default: task.succeeded, task.failed, task.cancelled)"},
    )
    description = fields.Text(load_default="", validate=ma.validate.Length(max=500))
    account = fields.Text(
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "an account's name (operators; others add to their own account)"},
    )


class Webhook(ma.Schema):
    id = ma.fields.UUID(required=True)
    account = ma.fields.String(required=True)
    url = ma.fields.String(required=True)
    events = ma.fields.List(ma.fields.String(metadata={"enum": WEBHOOK_EVENTS}), required=True)
    description = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)


class WebhookCreated(Webhook):
    secret = ma.fields.String(
        required=True,
        metadata={"description": "the signing secret (`whsec_...`), shown only in this answer; keep it"},
    )


class WebhookList(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(Webhook), required=True)


class WebhookListQuery(Query):
    account = fields.Text(
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "an account's name (operators: default every account)"},
    )


class WebhookAttempt(ma.Schema):
    number = ma.fields.Integer(required=True)
    at = ma.fields.AwareDateTime(required=True)
    status_code = ma.fields.Integer(allow_none=True, metadata={"description": "null: no answer (see error)"})
    error = ma.fields.String(allow_none=True)
    duration_ms = ma.fields.Integer(required=True)


class WebhookDelivery(ma.Schema):
    id = ma.fields.UUID(required=True, metadata={"description": "the `webhook-id` header, the same on retries"})
    webhook_id = ma.fields.UUID(required=True)
    task_id = ma.fields.UUID(required=True)
    event_type = ma.fields.String(required=True, metadata={"enum": WEBHOOK_EVENTS})
    status = ma.fields.String(required=True, metadata={"enum": ["pending", "delivered", "failed"]})
    attempts = ma.fields.Integer(required=True)
    next_attempt_at = ma.fields.AwareDateTime(allow_none=True)
    created_at = ma.fields.AwareDateTime(required=True)
    finished_at = ma.fields.AwareDateTime(allow_none=True)
    payload = ma.fields.Dict(required=True, metadata={"description": "the body sent: type, timestamp, data"})
    tries = ma.fields.List(ma.fields.Nested(WebhookAttempt), required=True, metadata={"description": "each attempt"})


class WebhookDeliveryList(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(WebhookDelivery), required=True)


class WebhookDeliveryQuery(Query):
    status = fields.Text(validate=ma.validate.OneOf(["pending", "delivered", "failed"]))
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=200))


MISFIRES = ["catch_up", "skip"]
MAX_INTERVAL_SECONDS = 366 * 86400


class ScheduleChange(Body):
    """The fields of a schedule a PATCH may set; each is optional there."""

    name = fields.Text(validate=ma.validate.Length(min=1, max=200))
    type = fields.Text(validate=ma.validate.Length(min=1, max=64), metadata={"description": "a task type"})
    params = fields.JsonObject(metadata={"description": "the type's params; see /api/task-types"})
    priority = fields.Text(
        allow_none=True,
        validate=ma.validate.OneOf(PRIORITIES),
        metadata={"description": "null: the type's default priority"},
    )
    cron = fields.Text(
        allow_none=True,
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "five fields (minute hour day month weekday) or @hourly, @daily, ...; or interval"},
    )
    interval = ma.fields.Integer(
        allow_none=True,
        strict=True,
        validate=ma.validate.Range(min=1, max=MAX_INTERVAL_SECONDS),
        metadata={"description": "seconds between fire times; or cron"},
    )
    timezone = fields.Text(
        validate=ma.validate.Length(min=1, max=64),
        metadata={"description": "the IANA timezone the cron expression is read in (Europe/Berlin)"},
    )
    paused = ma.fields.Boolean(metadata={"description": "a paused schedule does not fire"})
    misfire = fields.Text(
        validate=ma.validate.OneOf(MISFIRES),
        metadata={"description": "a fire time missed by more than the grace period: one task (catch_up) or none"},
    )


class ScheduleCreate(ScheduleChange):
    name = fields.Text(required=True, validate=ma.validate.Length(min=1, max=200))
    type = fields.Text(
        required=True, validate=ma.validate.Length(min=1, max=64), metadata={"description": "a task type"}
    )
    params = fields.JsonObject(load_default=dict, metadata={"description": "the type's params; see /api/task-types"})
    timezone = fields.Text(
        load_default="UTC",
        validate=ma.validate.Length(min=1, max=64),
        metadata={"description": "the IANA timezone the cron expression is read in (default UTC)"},
    )
    paused = ma.fields.Boolean(load_default=False, metadata={"description": "a paused schedule does not fire"})
    misfire = fields.Text(
        load_default="catch_up",
        validate=ma.validate.OneOf(MISFIRES),
        metadata={"description": "a fire time missed by more than the grace period: one task (catch_up) or none"},
    )


class Schedule(ma.Schema):
    id = ma.fields.UUID(required=True)
    account = ma.fields.String(required=True, metadata={"description": "its account's name"})
    user_id = ma.fields.UUID(allow_none=True, metadata={"description": "who made it; its tasks are theirs"})
    name = ma.fields.String(required=True)
    type = ma.fields.String(required=True)
    params = ma.fields.Dict(required=True)
    priority = ma.fields.String(allow_none=True, metadata={"enum": PRIORITIES, "description": "null: the type's"})
    cron = ma.fields.String(allow_none=True)
    interval = ma.fields.Integer(allow_none=True, metadata={"description": "seconds"})
    timezone = ma.fields.String(required=True)
    paused = ma.fields.Boolean(required=True)
    misfire = ma.fields.String(required=True, metadata={"enum": MISFIRES})
    next_fire_at = ma.fields.AwareDateTime(required=True, metadata={"description": "the next fire time, UTC"})
    next_fire_times = ma.fields.List(
        ma.fields.AwareDateTime(), required=True, metadata={"description": "the next 5 fire times; none while paused"}
    )
    last_fire_at = ma.fields.AwareDateTime(allow_none=True, metadata={"description": "the last fire time handled"})
    last_task_id = ma.fields.UUID(allow_none=True, metadata={"description": "the task the last fire made"})
    last_error = ma.fields.Dict(
        allow_none=True,
        metadata={"description": "why the last fire was refused (type, message, fire_time); else null"},
    )
    created_at = ma.fields.AwareDateTime(required=True)
    updated_at = ma.fields.AwareDateTime(required=True)


class SchedulePage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(Schedule), required=True)
    meta = ma.fields.Nested(PageMeta, required=True)


class ScheduleQuery(PageQuery):
    account = fields.Text(
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "an account's name (operators; others see their own)"},
    )
