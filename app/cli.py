"""`manage.py` commands (a FlaskGroup): run the platform, workers and the sweeper; submit,
list, show, cancel and retry tasks; stop, start and clean up the queue; list and scaffold
processors; manage schedules. `db upgrade` comes from Flask-Migrate.
"""

import datetime
import json
import logging
import os
import pathlib
import signal
import socket
import sys
import threading
import time

import click
import flask
import werkzeug.serving
from flask.cli import FlaskGroup, with_appcontext

from app import config as config_module
from app import logs, runtime, supervisor
from app.queue import delivery, health, retention, states, sweeper
from app.queue import tasks as queue_tasks
from app.services import accounts, errors
from app.services import batches as batch_service
from app.services import queue as queue_service
from app.services import schedules as schedule_service
from app.services import tasks as task_service
from app.services import uploads as upload_service
from app.services import usage as usage_service
from app.services import webhooks as webhook_service
from processors import errors as processor_errors
from processors import providers
from processors.base import MEASURES
from processors.policy import POOLS

EXIT_FAILED = 1
EXIT_CANCELLED = 3


def main() -> None:
    """Run the command line (`manage.py` and the `conveyor` script)."""
    from app import create_app

    group = FlaskGroup(create_app=lambda: create_app(), help=__doc__, add_default_commands=False)
    group.add_command(flask.cli.shell_command)
    group.add_command(flask.cli.routes_command)
    try:
        group.main(prog_name="manage.py")
    except (config_module.ConfigError, processor_errors.RegistryError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


def init_app(app: flask.Flask) -> None:
    """Register the commands on `app`."""
    for command in (
        run,
        worker,
        sweeper_command,
        tasks_group,
        uploads_group,
        queue_group,
        processors_group,
        accounts_group,
        users_group,
        keys_group,
        usage_command,
        prices_group,
        webhooks_group,
        schedules_group,
    ):
        app.cli.add_command(command)


# Exit code of a submit refused by a quota (1: other errors, 2: bad usage, 3: cancelled).
EXIT_QUOTA = 4


def _fail(exc: errors.ServiceError) -> None:
    detail = f" {json.dumps(exc.errors)}" if exc.errors else ""
    failure = click.ClickException(f"{exc.message}{detail}")
    if isinstance(exc, errors.QuotaExceeded):
        failure.exit_code = EXIT_QUOTA
    raise failure


# --- processes -------------------------------------------------------------------------------


@click.command("worker")
@click.option("--pool", type=click.Choice(POOLS), required=True, help="The pool (Celery queue) to serve.")
@click.option("--concurrency", type=int, default=None, help="Pool processes (default: from settings).")
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--quiet", is_flag=True, help="No start-up banner.")
@click.option("--check", is_flag=True, help="Only tell whether a worker of the pool serves here (exit 1 if not).")
@with_appcontext
def worker(pool: str, concurrency: int | None, loglevel: str, quiet: bool, check: bool) -> None:
    """Run a Celery worker for one pool. It exits non-zero unless it was asked to stop
    (SIGTERM: a warm shutdown), so a process manager restarts it."""
    conveyor = runtime.current()
    if check:
        _check_health(f"worker-{pool}")
    concurrency = concurrency or conveyor.settings[f"CONVEYOR_{pool.upper()}_CONCURRENCY"]
    logs.configure(conveyor.settings["CONVEYOR_LOG_FORMAT"], getattr(logging, loglevel.upper(), logging.INFO))
    queue_tasks.beat_health(conveyor.celery, conveyor.settings["CONVEYOR_VAR_DIR"], pool)
    # Celery's own `worker_main` drops the worker's exit code (`Unrecoverable error` exits 0).
    celery_worker = conveyor.celery.Worker(
        hostname=f"{pool}-{os.getpid()}@{socket.gethostname()}",
        queues=[pool],
        concurrency=concurrency,
        pool_cls="prefork",
        loglevel=loglevel,
        quiet=quiet,
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
    )
    celery_worker.start()
    sys.exit(celery_worker.exitcode or 0)


@click.command("sweeper")
@click.option("--check", is_flag=True, help="Only tell whether a sweeper serves on this host (exit 1 if not).")
@with_appcontext
def sweeper_command(check: bool) -> None:
    """Run the sweeper: rescue expired leases and re-wake due tasks (one active at a time)."""
    conveyor = runtime.current()
    if check:
        _check_health("sweeper")
    logs.configure(conveyor.settings["CONVEYOR_LOG_FORMAT"])
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    click.echo(f"sweeper: every {conveyor.settings['CONVEYOR_SWEEP_SECONDS']:g}s")
    delivery.start(conveyor.sessions, conveyor.settings, stopping.is_set)  # webhooks, in a thread of their own
    sweeper.loop(
        conveyor.sessions,
        conveyor.engine,
        conveyor.settings["CONVEYOR_VAR_DIR"],
        conveyor.registry,
        conveyor.wake,
        conveyor.backlog,
        conveyor.settings["CONVEYOR_WAKE_AHEAD"],
        conveyor.settings["CONVEYOR_SWEEP_SECONDS"],
        should_stop=stopping.is_set,
        notify=conveyor.notify_waiting,
        aging_seconds=conveyor.settings["CONVEYOR_AGING_SECONDS"],
        account_max_running=conveyor.settings["CONVEYOR_ACCOUNT_MAX_RUNNING"],
        retain=_retention_job(conveyor),
        firing=schedule_service.firing(conveyor.settings),
    )


def _retention_job(conveyor) -> retention.Job:
    settings = conveyor.settings
    rules = retention.rules(conveyor.registry, settings)
    batch, every = settings["CONVEYOR_RETENTION_BATCH"], settings["CONVEYOR_RETENTION_SECONDS"]
    return retention.Job(conveyor.sessions, conveyor.storage, rules, batch, every)


def _check_health(role: str) -> None:
    healthy, reason = health.check(runtime.current().settings["CONVEYOR_VAR_DIR"], role)
    click.echo(reason, err=not healthy)
    sys.exit(0 if healthy else 1)


@click.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def run(host: str, port: int) -> None:
    """Run the API, one worker per pool and the sweeper together (the embedded default). A
    worker or the sweeper that dies is restarted (see `app.supervisor`)."""
    from flask_migrate import upgrade

    upgrade()
    accounts.local()
    conveyor = runtime.current()
    if config_module.is_embedded(conveyor.settings):
        key, new = accounts.local_admin_key(conveyor.settings["CONVEYOR_VAR_DIR"])
        where = pathlib.Path(conveyor.settings["CONVEYOR_VAR_DIR"]) / "admin-key"
        click.echo(f"{'Created' if new else 'Using'} the local operator API key (stored in {where}):\n  {key}")
    logs.configure(conveyor.settings["CONVEYOR_LOG_FORMAT"])
    children = {
        f"worker --pool {pool}": ["worker", "--pool", pool, "--loglevel", "WARNING", "--quiet"] for pool in POOLS
    }
    children["sweeper"] = ["sweeper"]
    processes = supervisor.Supervisor(children, conveyor.settings["CONVEYOR_VAR_DIR"])
    processes.start()
    # SIGTERM (a service manager, `timeout`) and SIGINT stop the children too. SIGINT is set
    # explicitly: a shell starting us in the background hands it down ignored.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: sys.exit(0))
    click.echo(f"Conveyor is running at http://{host}:{port}/ (workers: {', '.join(POOLS)}; sweeper)")
    click.echo("Submit a task:  python manage.py tasks submit sleep --param seconds=1 --wait")
    click.echo(f"API docs:       http://{host}:{port}/api/docs")
    click.echo(f"Dashboard:      http://{host}:{port}/dashboard/ (sign in with the key above)")
    try:
        # The app object itself: the `current_app` proxy means nothing in the server's threads.
        served = flask.current_app._get_current_object()
        werkzeug.serving.run_simple(host, port, served, threaded=True, use_reloader=False)
    finally:
        processes.stop()


# --- tasks -----------------------------------------------------------------------------------


@click.group("tasks")
def tasks_group() -> None:
    """Submit, inspect, cancel and retry tasks."""


def _parse_params(pairs: tuple[str, ...], json_file) -> dict:
    params = json.load(json_file) if json_file else {}
    if not isinstance(params, dict):
        raise click.BadParameter("must hold a JSON object", param_hint="--json")
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="--param")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        target = params
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise click.BadParameter(f"{key!r} nests under a value that is not an object", param_hint="--param")
        target[leaf] = value
    return params


@tasks_group.command("submit")
@click.argument("type", required=False)
@click.option(
    "--param",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="A param; dotted keys nest (source.url=...); values parse as JSON when they can.",
)
@click.option("--json", "json_file", type=click.File("r"), help="Params as a JSON object (a file, or - for stdin).")
@click.option("--priority", type=click.Choice(["urgent", "high", "normal", "low"]), default=None)
@click.option("--idempotency-key", default=None)
@click.option("--account", default=None, help="Account name (default: the local account).")
@click.option("--wait", is_flag=True, help="Follow progress; exit 0 on success, 1 on failure, 3 on cancel.")
@click.option(
    "--from-file",
    "tasks_file",
    type=click.File("r"),
    help="Tasks as JSON Lines (a file, or - for stdin), stored in batches of up to 1000, each all or none.",
)
@with_appcontext
def submit(type, pairs, json_file, priority, idempotency_key, account, wait, tasks_file) -> None:
    """Submit a task of TYPE, or the tasks of a JSON Lines file (--from-file)."""
    owner = _account(account)
    if tasks_file is not None:
        if type or pairs or json_file or priority or wait:
            raise click.UsageError("--from-file takes no TYPE, --param, --json, --priority or --wait")
        _submit_file(tasks_file, owner, idempotency_key)
        return
    if type is None:
        raise click.UsageError("give a TYPE, or --from-file")
    params = _parse_params(pairs, json_file)
    try:
        task, created = task_service.submit(
            type, params, account_id=owner.id, priority=priority, idempotency_key=idempotency_key
        )
    except errors.ServiceError as exc:
        _fail(exc)
    click.echo(f"{'submitted' if created else 'existing'} {task.type} task {task.id}", err=wait)
    if wait:
        sys.exit(_follow(task.id))


def _submit_file(handle, owner, idempotency_key: str | None) -> None:
    """Submit a JSON Lines file's tasks in batches (`services.batches`); print each task's id."""
    try:
        items = batch_service.items_from_lines(handle)
    except errors.ServiceError as exc:
        _fail(exc)
    if not items:
        raise click.UsageError("the file holds no task")
    stored = 0
    for number, start in enumerate(range(0, len(items), batch_service.BATCH_MAX)):
        chunk = items[start : start + batch_service.BATCH_MAX]
        key = f"{idempotency_key}:{number}" if idempotency_key else None
        try:
            found, created = batch_service.submit(chunk, account_id=owner.id, idempotency_key=key)
        except errors.ServiceError as exc:
            click.echo(f"{stored} tasks stored before this batch (lines from {start + 1})", err=True)
            _fail(exc)
        for task in found:
            click.echo(task.id)
        stored += len(found)
        click.echo(f"{'submitted' if created else 'existing'} batch {number + 1}: {len(found)} tasks", err=True)
    click.echo(f"{stored} tasks", err=True)


def _account(name: str | None):
    if name is None:
        return accounts.local()
    found = accounts.by_name(name)
    if found is None:
        raise click.BadParameter(f"no account named {name!r}", param_hint="--account")
    return found


def _follow(task_id) -> int:
    """Draw the task's progress until it ends; return the exit code for its outcome."""
    from app.extensions import db

    after, percent, stage, status, final = 0, 0.0, "", "queued", None
    while True:
        for event in task_service.events(task_id, None, after):
            after = event.id
            if event.kind == "progress":
                percent, stage = event.data.get("progress", percent), event.data.get("stage") or stage
            elif event.kind == "status":
                status = event.data["status"]
                final = event.data
            _draw(percent, stage or status)
        db.session.rollback()  # end the read transaction so the next poll sees new rows
        if status in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.2)
    if status == "succeeded":
        _draw(100.0, "succeeded")
        click.echo("", err=True)
        task = task_service.get(task_id, None)
        click.echo(json.dumps(task.result, indent=2, default=str))
        found = task_service.artifacts(task_id, None)
        if found:
            click.echo(f"{len(found)} artifacts; copy them with: manage.py tasks download {task_id}", err=True)
        return 0
    click.echo("", err=True)
    reason = (final or {}).get("error", {}).get("message") or (final or {}).get("reason") or ""
    click.echo(f"task {status}: {reason}", err=True)
    return EXIT_CANCELLED if status == "cancelled" else EXIT_FAILED


def _draw(percent: float, label: str, width: int = 30) -> None:
    filled = int(width * percent / 100)
    click.echo(f"\r[{'#' * filled}{'-' * (width - filled)}] {percent:5.1f}% {label[:40]:<40}", nl=False, err=True)


@tasks_group.command("list")
@click.option("--status", default=None)
@click.option("--type", "type_", default=None)
@click.option("--limit", default=20, show_default=True)
@with_appcontext
def list_tasks(status, type_, limit) -> None:
    """List tasks, newest first."""
    for task in task_service.find(None, status=status, type=type_, limit=limit):
        click.echo(
            f"{task.id}  {task.type:<16} {task.status:<10} {task.progress:5.1f}%  "
            f"attempt {task.attempt}/{task.max_attempts}  {task.created_at:%Y-%m-%d %H:%M:%S}"
        )


@tasks_group.command("show")
@click.argument("task_id")
@with_appcontext
def show(task_id) -> None:
    """Show a task and its events as JSON."""
    try:
        task = task_service.get(task_id, None)
        history = task_service.events(task_id, None)
    except errors.ServiceError as exc:
        _fail(exc)
    fields = (
        "id",
        "type",
        "pool",
        "status",
        "priority",
        "params",
        "result",
        "error",
        "attempt",
        "max_attempts",
        "progress",
        "stage",
        "message",
        "run_at",
        "created_at",
        "started_at",
        "finished_at",
    )
    body = {name: getattr(task, name) for name in fields}
    body["usage"] = usage_service.of_task(task.id)
    body["events"] = [
        {"id": e.id, "attempt": e.attempt, "kind": e.kind, "data": e.data, "at": e.created_at} for e in history
    ]
    click.echo(json.dumps(body, indent=2, default=str))


@tasks_group.command("cancel")
@click.argument("task_id")
@with_appcontext
def cancel(task_id) -> None:
    """Cancel a task (a running one stops at its next heartbeat)."""
    try:
        click.echo(task_service.cancel(task_id, None))
    except errors.ServiceError as exc:
        _fail(exc)


@tasks_group.command("retry")
@click.argument("task_id")
@with_appcontext
def retry(task_id) -> None:
    """Requeue a failed or cancelled task."""
    try:
        task = task_service.retry(task_id, None)
    except errors.ServiceError as exc:
        _fail(exc)
    click.echo(f"requeued {task.id}")


@tasks_group.command("download")
@click.argument("task_id")
@click.option("--to", "folder", type=click.Path(file_okay=False), default=".", help="Folder (default: here).")
@with_appcontext
def download(task_id, folder) -> None:
    """Copy a task's artifacts into a folder."""
    target = pathlib.Path(folder) / str(task_id)
    try:
        found = task_service.artifacts(task_id, None)
    except errors.ServiceError as exc:
        _fail(exc)
    if not found:
        _fail(errors.NotFound("the task has no artifacts"))
    target.mkdir(parents=True, exist_ok=True)
    store = runtime.current().storage
    for artifact in found:
        size = store.fetch(artifact.storage_key, target / artifact.name)
        click.echo(f"{target / artifact.name}  ({artifact.kind}, {size} bytes)")


def _older_than(since: str):
    """The `--older-than DAYS` option of the purge commands (days > 0, fractions allowed)."""
    return click.option(
        "--older-than", "days", type=click.FloatRange(min=0, min_open=True), required=True, help=f"Days since {since}."
    )


def _days_ago(days: float) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days)


def _purged(report: dict) -> None:
    """Print a purge's report; exit 1 if some files could not be deleted."""
    click.echo(json.dumps(report, indent=2, default=str))
    if report.get("file_errors"):
        sys.exit(1)


@tasks_group.command("purge")
@_older_than("the task ended (1.5 = 36 hours)")
@click.option(
    "--status",
    "statuses",
    type=click.Choice(sorted(status.value for status in states.TERMINAL)),
    multiple=True,
    help="Only tasks that ended so; repeat it (default: succeeded, failed and cancelled).",
)
@click.option("--dry-run", is_flag=True, help="Only count the tasks that would go.")
@with_appcontext
def purge(days, statuses, dry_run) -> None:
    """Delete tasks that ended more than N days ago, with their events, artifacts and files."""
    _purged(task_service.purge(_days_ago(days), statuses or states.TERMINAL, dry_run=dry_run))


# --- uploads ---------------------------------------------------------------------------------


@click.group("uploads")
def uploads_group() -> None:
    """Files users sent as task sources (POST /api/uploads)."""


@uploads_group.command("purge")
@_older_than("the upload was made")
@click.option("--dry-run", is_flag=True, help="Only count the uploads that would go.")
@with_appcontext
def purge_uploads(days, dry_run) -> None:
    """Delete uploads made more than N days ago that no waiting or running task refers to."""
    _purged(upload_service.purge(_days_ago(days), runtime.current().registry, dry_run=dry_run))


# --- queue -----------------------------------------------------------------------------------


@click.group("queue")
def queue_group() -> None:
    """Stop, start, inspect and clean up the queue."""


@queue_group.command("status")
@with_appcontext
def queue_status() -> None:
    """Print counts, running tasks, pauses and limits as JSON."""
    click.echo(json.dumps(queue_service.status(), indent=2, default=str))


def _scoped(action):
    @click.option("--pool", type=click.Choice(POOLS), default=None)
    @click.option("--type", "type_", default=None)
    @with_appcontext
    def command(pool, type_):
        try:
            click.echo(json.dumps(action(pool=pool, type=type_)))
        except errors.ServiceError as exc:
            _fail(exc)

    command.__doc__ = action.__doc__
    return command


queue_group.command("stop")(_scoped(queue_service.stop))
queue_group.command("start")(_scoped(queue_service.start))


@queue_group.command("cleanup")
@click.option("--stuck-after", type=float, default=None, help="Also end running tasks silent this many seconds.")
@with_appcontext
def cleanup(stuck_after) -> None:
    """Rescue tasks whose worker died; print what was done."""
    report = queue_service.cleanup(stuck_after)
    click.echo(json.dumps({"handled": report, "count": len(report)}, indent=2))


@queue_group.command("limit")
@click.argument("type")
@click.argument("limit")
@with_appcontext
def limit(type, limit) -> None:
    """Cap how many TYPE tasks run at once (LIMIT a number, or 'none')."""
    value = None if limit.lower() == "none" else int(limit)
    try:
        click.echo(json.dumps(queue_service.set_limit(type, value)))
    except errors.ServiceError as exc:
        _fail(exc)


# --- processors ------------------------------------------------------------------------------


@click.group("processors")
def processors_group() -> None:
    """List and scaffold processors."""


@processors_group.command("list")
@with_appcontext
def list_processors() -> None:
    """List task types with pool, policy and provider availability."""
    conveyor = runtime.current()
    for name in conveyor.registry.types():
        policy = conveyor.registry.policy(name)
        cls = conveyor.registry.processor_class(name)
        missing = {p: why for p, why in providers.availability(cls.providers, conveyor.settings).items() if why}
        state = "available" if not missing else "unavailable: " + "; ".join(missing.values())
        optional = providers.availability(cls.optional_providers, conveyor.settings)
        notes = [f"{p} for some params: {why}" for p, why in optional.items() if why]
        if notes and not missing:
            state += " (" + "; ".join(notes) + ")"
        click.echo(
            f"{name:<18} pool={policy.pool:<4} attempts={policy.max_attempts} "
            f"timeout={policy.soft_timeout:g}/{policy.hard_timeout:g}s priority={policy.priority} "
            f"backoff={policy.backoff_base:g}..{policy.backoff_cap:g}s  {state}  ({conveyor.registry.origin(name)})"
        )


@processors_group.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    default=None,
    help="Where to create the package (default: ./conveyor-NAME).",
)
def new_processor(name, directory) -> None:
    """Scaffold an installable plugin package for task type NAME."""
    from processors import scaffold

    try:
        target = scaffold.create(name, directory)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from exc
    click.echo(f"created {target}\nnext: pip install -e {target} && python manage.py processors list")


# --- accounts, users, keys -------------------------------------------------------------------


@click.group("accounts")
def accounts_group() -> None:
    """Accounts: every task belongs to one, and callers see only their own."""


@accounts_group.command("create")
@click.argument("name")
@with_appcontext
def create_account(name) -> None:
    """Create account NAME."""
    try:
        account = accounts.create_account(name)
    except errors.ServiceError as exc:
        _fail(exc)
    click.echo(f"created account {account.name} ({account.id})")


class _LimitOrDefault(click.ParamType):
    """A whole number from 0, or `default` (also `none`): take the platform default back."""

    name = "N|default"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value is None:
            return value
        if str(value).lower() in ("default", "none"):
            return None
        try:
            number = int(value)
        except ValueError:
            self.fail(f"{value!r} is not a whole number or 'default'", param, ctx)
        if number < 0:
            self.fail("must be 0 or more", param, ctx)
        return number


class _RateOrDefault(click.ParamType):
    """A rate like 50/second, or `default` (also `none`)."""

    name = "RATE|default"

    def convert(self, value, param, ctx):
        if value is None or str(value).lower() in ("default", "none"):
            return None
        try:
            return config_module.parse_rate(value)
        except ValueError as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)


@accounts_group.command("set")
@click.argument("name")
@click.option("--weight", type=click.FloatRange(min=0, min_open=True, max=1000), help="Fair-share weight.")
@click.option("--max-waiting", type=_LimitOrDefault(), help="Most tasks waiting at once ('default': the platform's).")
@click.option("--max-running", type=_LimitOrDefault(), help="Most attempts running at once, on all workers.")
@click.option("--submit-rate", type=_RateOrDefault(), help="Submits of all its keys, e.g. 20/second.")
@click.option("--allow-urgent/--no-allow-urgent", default=None, help="Whether members may submit urgent tasks.")
@with_appcontext
def set_account(name, **options) -> None:
    """Change account NAME's weight, quotas, submit rate or urgent tasks; show the result."""
    given = {field: value for field, value in options.items() if value is not None}
    given.update({field: None for field in _defaults_asked()})
    if not given:
        raise click.UsageError("give at least one setting to change (see --help)")
    try:
        account = accounts.configure(name, **given)
    except errors.Invalid as exc:
        raise click.UsageError(f"{exc.message} {json.dumps(exc.errors)}") from exc
    except errors.ServiceError as exc:
        _fail(exc)
    _show(accounts.describe(account))


def _defaults_asked() -> list[str]:
    # `--max-waiting default` converts to None, which click cannot tell from "not given".
    ctx = click.get_current_context()
    fields = ("max_waiting", "max_running", "submit_rate")
    return [f for f in fields if ctx.get_parameter_source(f).name == "COMMANDLINE" and ctx.params[f] is None]


@accounts_group.command("show")
@click.argument("name")
@with_appcontext
def show_account(name) -> None:
    """Show account NAME's settings (with the defaults in force) and usage."""
    try:
        account = accounts.account(name)
    except errors.ServiceError as exc:
        _fail(exc)
    _show(accounts.describe(account))


@accounts_group.command("list")
@with_appcontext
def list_accounts() -> None:
    """List accounts with their settings and usage, one a line."""
    for account in accounts.list_accounts():
        info = accounts.describe(account)
        quotas, use = info["quotas"], info["usage"]
        click.echo(
            f"{account.name}  weight {account.weight:g}  waiting {use['waiting']}/{quotas['max_waiting']['value']}"
            f"  running {use['running']}/{quotas['max_running']['value'] or '-'}"
            f"  rate {quotas['submit_rate']['value']}  urgent {'yes' if account.allow_urgent else 'no'}"
        )


def _show(info: dict) -> None:
    click.echo(f"account       {info['name']} ({info['id']})")
    click.echo(f"weight        {info['weight']:g}")
    click.echo(f"allow urgent  {'yes' if info['allow_urgent'] else 'no'}")
    for field, shown in info["quotas"].items():
        value = "none" if shown["value"] is None else shown["value"]
        click.echo(f"{field:<14}{value}{' (default)' if shown['default'] else ''}")
    click.echo(f"waiting       {info['usage']['waiting']}")
    click.echo(f"running       {info['usage']['running']}")


@click.group("users")
def users_group() -> None:
    """Users of an account, with a role: operator (the platform), admin (the account) or member."""


@users_group.command("create")
@click.argument("name")
@click.option("--account", required=True, help="The account's name.")
@click.option("--role", type=click.Choice(accounts.ROLES), default="member", show_default=True)
@with_appcontext
def create_user(name, account, role) -> None:
    """Create user NAME in an account."""
    try:
        user = accounts.create_user(account, name, role)
    except errors.ServiceError as exc:
        _fail(exc)
    click.echo(f"created {user.role} {user.name} in {account} ({user.id})")


@click.group("keys")
def keys_group() -> None:
    """API keys (Authorization: Bearer <key>); stored hashed, shown once."""


@keys_group.command("create")
@click.option("--account", required=True, help="The account's name.")
@click.option("--user", "user_name", required=True, help="The user's name.")
@click.option("--name", default="", help="A label for the key.")
@with_appcontext
def create_key(account, user_name, name) -> None:
    """Create a key for a user and print it (it is not shown again)."""
    try:
        key, plain = accounts.create_key(account, user_name, name)
    except errors.ServiceError as exc:
        _fail(exc)
    click.echo(plain)
    click.echo(f"key {accounts.KEY_PREFIX}{key.prefix} for {user_name} in {account}; store it now", err=True)


@keys_group.command("list")
@click.option("--account", default=None, help="Only this account's keys.")
@with_appcontext
def list_keys(account) -> None:
    """List keys: prefix, account, user, role, state, last use."""
    try:
        rows = accounts.list_keys(account)
    except errors.ServiceError as exc:
        _fail(exc)
    for key, user, owner in rows:
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
        click.echo(f"{accounts.KEY_PREFIX}{key.prefix}  {owner.name}/{user.name} ({user.role})  {state}  used {used}")


@keys_group.command("revoke")
@click.argument("prefix")
@with_appcontext
def revoke_key(prefix) -> None:
    """Revoke the key starting with PREFIX (as `keys list` shows it)."""
    try:
        key = accounts.revoke_key(prefix)
    except errors.ServiceError as exc:
        _fail(exc)
    click.echo(f"revoked {accounts.KEY_PREFIX}{key.prefix}")


# --- usage and prices ------------------------------------------------------------------------


@click.command("usage")
@click.option("--account", default=None, help="Only this account (default: every account).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None, help="First UTC day (default: 29 days ago).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last UTC day (default: today).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON, as the API answers it.")
@with_appcontext
def usage_command(account, since, until, as_json) -> None:
    """Metered usage (tokens, characters of speech, images, seconds) per account and UTC day,
    each line with its cost ('-' where no price is set: see `prices`)."""
    last = until.date() if until else datetime.datetime.now(datetime.UTC).date()
    first = since.date() if since else last - datetime.timedelta(days=29)
    try:
        report = usage_service.daily(accounts.account(account).id if account else None, first, last)
    except errors.Invalid as exc:
        raise click.UsageError(f"{exc.message} {json.dumps(exc.errors)}") from exc
    except errors.ServiceError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    for day in report["days"]:
        total = f"{day['cost']:.6f} {report['currency']}" + ("" if day["priced"] else " + unpriced")
        click.echo(f"{day['day']}  {day['account']}  {total}")
        for line in day["lines"]:
            cost = "-" if line["cost"] is None else f"{line['cost']:.6f}"
            click.echo(f"    {line['measure']:<20} {line['model'] or '-':<36} {line['quantity']:>14g} {cost:>14}")


@click.group("prices")
def prices_group() -> None:
    """The prices metered usage is billed at (`usage` shows the costs)."""


@prices_group.command("list")
@with_appcontext
def list_prices() -> None:
    """List prices: measure, model ('*': every other model), price per units."""
    currency = usage_service.currency()
    for price in usage_service.prices():
        shown = usage_service.describe_price(price)
        click.echo(
            f"{shown['measure']:<20} {shown['model'] or '*':<36} {shown['price']} {currency}"
            f" per {shown['per']} {shown['unit']}"
        )


@prices_group.command("set")
@click.argument("measure", type=click.Choice(list(MEASURES)))
@click.argument("price")
@click.option("--per", type=click.IntRange(1, 10**12), default=1, show_default=True, help="Units the price is for.")
@click.option("--model", default="", help="Only for this model (default: every model without a price of its own).")
@with_appcontext
def set_price(measure, price, per, model) -> None:
    """Set the PRICE of --per units of MEASURE, e.g. `llm_input_tokens 0.15 --per 1000000`."""
    try:
        usage_service.set_price(measure, price, per, model)
    except errors.Invalid as exc:
        raise click.UsageError(f"{exc.message} {json.dumps(exc.errors)}") from exc
    click.echo(f"{measure} for {model or 'every model'}: {price} {usage_service.currency()} per {per}")


@prices_group.command("delete")
@click.argument("measure", type=click.Choice(list(MEASURES)))
@click.option("--model", default="", help="The model the price is for (default: the every-model price).")
@with_appcontext
def delete_price(measure, model) -> None:
    """Remove the price of MEASURE; what it priced shows as unpriced again."""
    try:
        usage_service.delete_price(measure, model)
    except errors.ServiceError as exc:
        _fail(exc)
    click.echo(f"removed the price of {measure} for {model or 'every model'}")


# --- webhooks --------------------------------------------------------------------------------


@click.group("webhooks")
def webhooks_group() -> None:
    """Signed webhooks of task events: endpoints, deliveries and their attempts, replays."""


@webhooks_group.command("list")
@click.option("--account", default=None, help="Only this account's (default: every account).")
@with_appcontext
def list_webhooks(account) -> None:
    """List webhooks: id, account, events, URL."""
    try:
        found = webhook_service.endpoints(accounts.account(account).id if account else None)
    except errors.ServiceError as exc:
        _fail(exc)
    for endpoint in found:
        shown = webhook_service.describe(endpoint)
        click.echo(f"{shown['id']}  {shown['account']}  {','.join(shown['events'])}  {shown['url']}")


@webhooks_group.command("create")
@click.argument("url")
@click.option("--account", required=True, help="The account's name.")
@click.option(
    "--event", "events", multiple=True, type=click.Choice(webhook_service.EVENTS), help="Repeat; default: the ends."
)
@click.option("--description", default="", help="A label for the webhook.")
@with_appcontext
def create_webhook(url, account, events, description) -> None:
    """Add a webhook of ACCOUNT posting to URL; prints its signing secret, shown this once."""
    try:
        endpoint, secret = webhook_service.create(accounts.account(account).id, url, list(events) or None, description)
    except errors.ServiceError as exc:
        _fail(exc)
    click.echo(f"webhook {endpoint.id} for {', '.join(endpoint.events)}")
    click.echo(f"signing secret (shown once): {secret}")


@webhooks_group.command("delete")
@click.argument("webhook_id", type=click.UUID)
@with_appcontext
def delete_webhook(webhook_id) -> None:
    """Remove webhook WEBHOOK_ID and its deliveries."""
    try:
        webhook_service.delete(webhook_id, None)
    except errors.ServiceError as exc:
        _fail(exc)
    click.echo(f"removed webhook {webhook_id}")


@webhooks_group.command("deliveries")
@click.argument("webhook_id", type=click.UUID)
@click.option("--status", type=click.Choice(webhook_service.DELIVERY_STATUSES), default=None)
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@with_appcontext
def list_deliveries(webhook_id, status, limit) -> None:
    """List a webhook's latest deliveries, each with its attempts."""
    try:
        found = webhook_service.deliveries(webhook_id, None, status, limit)
    except errors.ServiceError as exc:
        _fail(exc)
    for item in found:
        click.echo(f"{item['id']}  {item['event_type']:<15} {item['status']:<9} task {item['task_id']}")
        for attempt in item["tries"]:
            answer = attempt["status_code"] or attempt["error"]
            click.echo(f"    #{attempt['number']} {attempt['at'].isoformat()} {attempt['duration_ms']} ms  {answer}")


@webhooks_group.command("replay")
@click.argument("delivery_id", type=click.UUID)
@with_appcontext
def replay_delivery(delivery_id) -> None:
    """Send delivery DELIVERY_ID again now, with the same webhook-id."""
    try:
        webhook_service.replay(delivery_id, None)
    except errors.ServiceError as exc:
        _fail(exc)
    click.echo(f"delivery {delivery_id} is due now")


if __name__ == "__main__":
    main()


# --- schedules -------------------------------------------------------------------------------


@click.group("schedules")
def schedules_group() -> None:
    """Tasks submitted on a cron expression (in a timezone) or every interval: the sweeper
    fires them."""


def _schedule(schedule_id: str):
    try:
        return schedule_service.get(schedule_id, schedule_service.Scope(None))
    except errors.ServiceError as exc:
        _fail(exc)


def _schedule_line(shown: dict) -> str:
    timing = f"cron {shown['cron']!r} {shown['timezone']}" if shown["cron"] else f"every {shown['interval']}s"
    state = "paused" if shown["paused"] else f"next {shown['next_fire_at']:%Y-%m-%d %H:%M:%S}Z"
    error = f"  last error: {shown['last_error']['message']}" if shown["last_error"] else ""
    return f"{shown['id']}  {shown['account']}  {shown['name']!r}  {shown['type']}  {timing}  {state}{error}"


@schedules_group.command("list")
@click.option("--account", default=None, help="Only this account's schedules (default: every account's).")
@with_appcontext
def list_schedules(account) -> None:
    """List schedules: id, account, name, type, timing, next fire time, last error."""
    scope = schedule_service.Scope(_account(account).id if account else None)
    for schedule in schedule_service.find(scope, limit=schedule_service.MAX_PER_ACCOUNT):
        click.echo(_schedule_line(schedule_service.describe(schedule)))


@schedules_group.command("show")
@click.argument("schedule_id")
@with_appcontext
def show_schedule(schedule_id) -> None:
    """Show a schedule as JSON, with its next 5 fire times."""
    click.echo(json.dumps(schedule_service.describe(_schedule(schedule_id)), indent=2, default=str))


@schedules_group.command("create")
@click.argument("name")
@click.argument("type")
@click.option("--cron", default=None, help="Five cron fields or @hourly, @daily, ... (or --interval).")
@click.option("--interval", type=int, default=None, help="Seconds between fire times (or --cron).")
@click.option("--timezone", default="UTC", show_default=True, help="The IANA timezone --cron is read in.")
@click.option("--param", "pairs", multiple=True, metavar="KEY=VALUE", help="A param, as for `tasks submit`.")
@click.option("--json", "json_file", type=click.File("r"), help="Params as a JSON object (a file, or - for stdin).")
@click.option("--priority", type=click.Choice(["urgent", "high", "normal", "low"]), default=None)
@click.option("--misfire", type=click.Choice(["catch_up", "skip"]), default="catch_up", show_default=True)
@click.option("--paused", is_flag=True, help="Create it paused.")
@click.option("--account", default=None, help="Account name (default: the local account).")
@with_appcontext
def create_schedule(name, type, cron, interval, timezone, pairs, json_file, priority, misfire, paused, account):
    """Create a schedule NAME that submits tasks of TYPE; print its id and next fire times."""
    fields = {"name": name, "type": type, "cron": cron, "interval": interval, "timezone": timezone}
    fields |= {"params": _parse_params(pairs, json_file), "priority": priority, "misfire": misfire, "paused": paused}
    try:
        schedule = schedule_service.create(fields, account_id=_account(account).id)
    except errors.ServiceError as exc:
        _fail(exc)
    click.echo(schedule.id)
    for fire_time in schedule_service.upcoming(schedule):
        click.echo(f"  fires {fire_time.isoformat()}", err=True)


@schedules_group.command("pause")
@click.argument("schedule_id")
@with_appcontext
def pause_schedule(schedule_id) -> None:
    """Stop firing a schedule until it is resumed."""
    schedule = schedule_service.pause(_schedule(schedule_id))
    click.echo(f"paused {schedule.name!r}")


@schedules_group.command("resume")
@click.argument("schedule_id")
@with_appcontext
def resume_schedule(schedule_id) -> None:
    """Fire a paused schedule again, from its first fire time after now."""
    schedule = schedule_service.resume(_schedule(schedule_id))
    click.echo(f"resumed {schedule.name!r}: next {schedule.next_fire_at.isoformat()}")


@schedules_group.command("delete")
@click.argument("schedule_id")
@with_appcontext
def delete_schedule(schedule_id) -> None:
    """Delete a schedule; the tasks it made stay."""
    schedule = _schedule(schedule_id)
    name = schedule.name
    schedule_service.delete(schedule)
    click.echo(f"deleted {name!r}")
