"""Settings from the environment (and `.env`), checked at start, with defaults that run with
no servers: a SQLite file and a `filesystem://` broker under `var/`.

Every setting is an environment variable; `create_app(config)` may override any of them with
a dict (tests do). `load` returns the Flask config or raises `ConfigError` listing every
problem at once.
"""

import json
import os
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

from processors.policy import parse_retention


class ConfigError(Exception):
    """The settings are invalid."""


def _int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: Any) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(f"must be from {low} to {high}")
        return value

    return parse


def _float(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: Any) -> float:
        value = float(raw)
        if not low <= value <= high:
            raise ValueError(f"must be from {low} to {high}")
        return value

    return parse


def _json_object(raw: Any) -> dict:
    value = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    return value


def _list(raw: Any) -> list[str]:
    if isinstance(raw, list | tuple):
        return [str(item) for item in raw]
    return [item.strip() for item in str(raw).split(",") if item.strip()]


def _database_url(raw: Any) -> str:
    raw = str(raw)
    if not raw.startswith(("sqlite:", "postgresql:", "postgresql+psycopg2:", "postgres:")):
        raise ValueError("must be a sqlite:/// or postgresql:// URL")
    # SQLAlchemy 2.1 maps postgresql:// to psycopg 3; the stack is psycopg2.
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg2://" + raw[len(prefix) :]
    return raw


def _broker_url(raw: Any) -> str:
    raw = str(raw)
    if not raw.startswith(("redis://", "rediss://", "filesystem://", "amqp://", "pyamqp://")):
        raise ValueError("must be a redis://, amqp:// or filesystem:// URL")
    return raw


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: Any) -> str:
        if str(raw) not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return str(raw)

    return parse


def _str(raw: Any) -> str:
    return str(raw)


def parse_rate(raw: Any) -> str:
    """Return a rate like `50/second` or `1000 per hour` unchanged; ValueError if it is not one
    rate (flask-limiter's notation, one limit)."""
    import limits  # the rate-limit notation's own parser

    text = str(raw).strip()
    try:
        parsed = limits.parse_many(text)
    except ValueError:
        parsed = []
    if len(parsed) != 1 or parsed[0].amount < 1:
        raise ValueError("must be one rate like 50/second, 600/minute or 1000 per hour")
    return text


def _retry_schedule(raw: Any) -> tuple[float, ...]:
    items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    values = tuple(float(item) for item in items if str(item).strip())
    if not 1 <= len(values) <= 20 or not all(0 <= value <= 86400 for value in values):
        raise ValueError("must be 1 to 20 comma-separated pauses in seconds, each from 0 to 86400")
    return values


def _rate_storage(env: dict) -> str:
    # Limits shared by every API process: Redis when the broker is Redis; memory on the
    # embedded default (one machine, counted per process).
    broker = str(env.get("BROKER_URL", ""))
    return broker if broker.startswith(("redis://", "rediss://")) else "memory://"


# name -> (parser, default). A default of None means "unset"; callables are computed.
SETTINGS: dict[str, tuple[Callable, Any]] = {
    "CONVEYOR_VAR_DIR": (_str, lambda env: str(pathlib.Path.cwd() / "var")),
    "DATABASE_URL": (_database_url, lambda env: f"sqlite:///{env['CONVEYOR_VAR_DIR']}/conveyor.db"),
    "BROKER_URL": (_broker_url, "filesystem://"),
    "CONVEYOR_LEASE_SECONDS": (_float(2, 3600), 15.0),
    "CONVEYOR_HEARTBEAT_SECONDS": (_float(0.1, 60), 1.0),
    "CONVEYOR_CANCEL_GRACE_SECONDS": (_float(0, 3600), 10.0),
    "CONVEYOR_SWEEP_SECONDS": (_float(0.1, 600), 1.0),
    "CONVEYOR_WAKE_AHEAD": (_int(1, 10000), 16),
    "CONVEYOR_DRAIN_SECONDS": (_float(0, 3600), 2.0),
    "CONVEYOR_LINGER_SECONDS": (_float(0, 3600), 30.0),
    # Within a priority, claims alternate between accounts by weight (0: first come, first served).
    "CONVEYOR_FAIR_SHARE": (_int(0, 1), 1),
    # A waiting task rises one priority level per this many seconds due (0: no aging).
    "CONVEYOR_AGING_SECONDS": (_float(0, 30 * 86400), 300.0),
    "CONVEYOR_PREPARED_STATEMENTS": (_int(0, 1), 1),
    "CONVEYOR_SSE_POLL_SECONDS": (_float(0.05, 10), 0.5),
    "CONVEYOR_SSE_HEARTBEAT_SECONDS": (_float(0.1, 300), 15.0),
    "CONVEYOR_UPLOAD_MAX_BYTES": (_int(1, 2**40), 500 * 2**20),
    # Any other request body (JSON, dashboard forms): a larger one is a 413 before it is read.
    "CONVEYOR_MAX_BODY_BYTES": (_int(1024, 2**30), 2**20),
    "CONVEYOR_SECRET_KEY": (_str, None),
    # `Secure` on the dashboard's session cookie: on for servers, off on SQLite (one machine,
    # plain http on 127.0.0.1).
    "CONVEYOR_SECURE_COOKIES": (_int(0, 1), lambda env: int(not _sqlite_so_far(env))),
    "CONVEYOR_AUTH_CACHE_SECONDS": (_float(0, 300), 5.0),
    "CONVEYOR_ETA_CACHE_SECONDS": (_float(0, 300), 5.0),
    "CONVEYOR_DB_POOL_SIZE": (_int(1, 200), 10),
    "CONVEYOR_POLICIES": (_json_object, {}),
    "CONVEYOR_PROCESSORS": (_list, []),
    "CONVEYOR_PLUGINS": (_int(0, 1), 1),
    "CONVEYOR_CPU_CONCURRENCY": (_int(1, 256), lambda env: os.cpu_count() or 1),
    "CONVEYOR_IO_CONCURRENCY": (_int(1, 256), 4),
    "CONVEYOR_API_URL": (_str, "http://127.0.0.1:5000"),
    "CONVEYOR_STORAGE": (_choice("local", "s3"), "local"),
    "CONVEYOR_STORAGE_DIR": (_str, lambda env: str(pathlib.Path(env["CONVEYOR_VAR_DIR"]) / "artifacts")),
    "S3_BUCKET": (_str, None),
    "S3_ENDPOINT_URL": (_str, None),
    "S3_REGION": (_str, "us-east-1"),
    "S3_ACCESS_KEY_ID": (_str, None),
    "S3_SECRET_ACCESS_KEY": (_str, None),
    # Source URLs on private, loopback or link-local addresses: refused on servers, allowed on
    # the embedded default, which runs on one person's machine.
    "CONVEYOR_ALLOW_PRIVATE_URLS": (_int(0, 1), lambda env: int(_embedded_so_far(env))),
    # Accept a submit of a type whose providers (keys, programs) this process lacks, for
    # deployments where only the workers have them (0: 409 `unavailable`).
    "CONVEYOR_ACCEPT_UNAVAILABLE": (_int(0, 1), 0),
    "CONVEYOR_SOURCE_MAX_SECONDS": (_float(1, 86400), 3 * 3600.0),
    "CONVEYOR_SOURCE_MAX_BYTES": (_int(1, 2**40), 2 * 2**30),
    "CONVEYOR_PROVIDER_RETRIES": (_int(0, 10), 3),
    "CONVEYOR_PROVIDER_TIMEOUT_SECONDS": (_float(1, 3600), 120.0),
    "OPENAI_API_KEY": (_str, None),
    "OPENAI_BASE_URL": (_str, None),
    "ELEVENLABS_API_KEY": (_str, None),
    "ELEVENLABS_BASE_URL": (_str, None),
    "ELEVENLABS_MODEL": (_str, "eleven_multilingual_v2"),
    "CONVEYOR_LLM_MODEL": (_str, "gpt-4o-mini"),
    "CONVEYOR_LLM_MODELS": (_json_object, {}),
    "CONVEYOR_STT_MODEL": (_str, "whisper-1"),
    "CONVEYOR_IMAGE_MODEL": (_str, "dall-e-3"),
    "CONVEYOR_TTS_MODEL": (_str, "tts-1"),
    # Tenancy: defaults for accounts that set none (`manage.py accounts set`).
    "CONVEYOR_ACCOUNT_MAX_WAITING": (_int(0, 10**9), 10000),
    "CONVEYOR_ACCOUNT_MAX_RUNNING": (_int(1, 10**6), None),
    "CONVEYOR_SUBMIT_RATE": (parse_rate, "50/second"),
    "CONVEYOR_SUBMIT_BURST": (_int(1, 10**6), 100),
    "CONVEYOR_ACCOUNT_SUBMIT_RATE": (parse_rate, lambda env: env.get("CONVEYOR_SUBMIT_RATE", "50/second")),
    "CONVEYOR_RATE_LIMIT_STORAGE": (_str, _rate_storage),
    # The currency of the prices in `manage.py prices set` and of usage costs.
    "CONVEYOR_CURRENCY": (_str, "USD"),
    # How every process logs: `text` lines, or `json` objects one a line (`app.logs`).
    "CONVEYOR_LOG_FORMAT": (_choice("text", "json"), "text"),
    # `GET /metrics` asks for `Authorization: Bearer <this>` when it is set.
    "CONVEYOR_METRICS_TOKEN": (_str, None),
    # Retention: how long a finished task is kept ("7d", "36h", "forever"); a type's policy
    # may set its own (`retain_succeeded` ...). The sweeper deletes older ones every
    # CONVEYOR_RETENTION_SECONDS, CONVEYOR_RETENTION_BATCH tasks a transaction.
    "CONVEYOR_RETAIN_SUCCEEDED": (parse_retention, 7 * 86400.0),
    "CONVEYOR_RETAIN_FAILED": (parse_retention, 30 * 86400.0),
    "CONVEYOR_RETAIN_CANCELLED": (parse_retention, 7 * 86400.0),
    "CONVEYOR_RETENTION_SECONDS": (_float(0.1, 86400), 30.0),
    "CONVEYOR_RETENTION_BATCH": (_int(1, 10000), 500),
    # Webhooks (`app.queue.delivery`): the pause before each retry of a delivery that failed,
    # in seconds (Standard Webhooks' schedule: about 24 h from the first try to the last);
    # after the last, the delivery is failed.
    "CONVEYOR_WEBHOOK_RETRY_SECONDS": (_retry_schedule, (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)),
    "CONVEYOR_WEBHOOK_TIMEOUT_SECONDS": (_float(1, 60), 10.0),
    # Deliveries sent at once by each sweeper process.
    "CONVEYOR_WEBHOOK_PARALLEL": (_int(1, 64), 4),
    # task.progress: at most one delivery per task and endpoint in this many seconds.
    "CONVEYOR_WEBHOOK_PROGRESS_SECONDS": (_float(0, 3600), 5.0),
    # A schedule's fire time more than this late is missed: its misfire policy decides.
    "CONVEYOR_SCHEDULE_GRACE_SECONDS": (_float(0, 7 * 86400), 60.0),
}


def load(environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None) -> dict:
    """Return the checked settings from `environ` and `overrides`; raise ConfigError if bad."""
    given = {**{k: v for k, v in environ.items() if k in SETTINGS}, **(overrides or {})}
    values: dict[str, Any] = {}
    problems = []
    for name, (parse, default) in SETTINGS.items():
        if name in given and given[name] not in (None, ""):
            try:
                values[name] = parse(given[name])
            except (ValueError, TypeError) as exc:
                problems.append(f"{name}={given[name]!r}: {exc}")
        else:
            values[name] = default(values) if callable(default) else default
    if not problems and values["CONVEYOR_LEASE_SECONDS"] < 2 * values["CONVEYOR_HEARTBEAT_SECONDS"]:
        problems.append("CONVEYOR_LEASE_SECONDS must be at least twice CONVEYOR_HEARTBEAT_SECONDS")
    if not problems and values["CONVEYOR_STORAGE"] == "s3" and not values["S3_BUCKET"]:
        problems.append("CONVEYOR_STORAGE=s3 needs S3_BUCKET")
    if problems:
        raise ConfigError("invalid settings:\n  " + "\n  ".join(problems))
    extra = {k: v for k, v in (overrides or {}).items() if k not in SETTINGS}
    return {**values, **extra, **_derived(values)}


def is_embedded(settings: Mapping[str, Any]) -> bool:
    """Tell whether the settings use the embedded default (SQLite and a filesystem broker)."""
    return settings["DATABASE_URL"].startswith("sqlite:") and settings["BROKER_URL"].startswith("filesystem:")


def _embedded_so_far(values: dict) -> bool:
    # A default computed while loading: a bad DATABASE_URL or BROKER_URL is reported elsewhere.
    database, broker = str(values.get("DATABASE_URL", "")), str(values.get("BROKER_URL", ""))
    return database.startswith("sqlite:") and broker.startswith("filesystem:")


def _sqlite_so_far(values: dict) -> bool:
    return str(values.get("DATABASE_URL", "")).startswith("sqlite:")


def _derived(values: dict) -> dict:
    """Return the Flask and extension settings that follow from ours."""
    url = values["DATABASE_URL"]
    if url.startswith("sqlite:"):
        engine = {"connect_args": {"timeout": 30, "check_same_thread": False}}
    else:
        # No pre-ping: it costs a round trip per checkout on the hot path. A dropped connection
        # fails one statement, which workers retry (OperationalError) and requests report.
        # pool_size at least the threads of a gunicorn worker, or busy threads open and close
        # PostgreSQL sessions on every request.
        engine = {"pool_recycle": 1800, "pool_size": values["CONVEYOR_DB_POOL_SIZE"], "max_overflow": 10}
    return {
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine,
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        # Werkzeug refuses a larger body (413) from its Content-Length before reading it, and
        # stops reading a chunked one there; uploads raise it for their own request.
        "MAX_CONTENT_LENGTH": values["CONVEYOR_MAX_BODY_BYTES"],
        "SESSION_COOKIE_SECURE": bool(values["CONVEYOR_SECURE_COOKIES"]),
    }
