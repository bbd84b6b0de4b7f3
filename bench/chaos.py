"""Chaos: Conveyor's promises under faults, on a PostgreSQL cluster and a Redis of its own.

Each scenario starts the platform on a fresh database (the API under gunicorn, `cpu` workers,
the sweeper; an `io` worker for the soak), sends tasks over HTTP (`POST /api/tasks` with a
member's key) from client threads, injects one kind of fault, waits for the queue to drain,
and then reads the database's record:

- kill: SIGKILL a worker's pool process or its main process, 10 times in turn, while 1,000
  `sleep` tasks of 0.2-0.5 s run; a killed main process is started again, as a process manager
  would. Orphaned pool processes (whose main died) are watched too.
- redis-flush: FLUSHALL on the bench's Redis in the middle of a stream of submits.
- redis-down: the bench's Redis stopped for 30 s in the middle of a stream, then started again
  on the same port.
- postgres-restart: `pg_ctl restart -m fast` on the bench's cluster in the middle of a stream:
  the API's answers while it is down (503 with a JSON body expected, never 500), the workers'
  and the sweeper's survival (the same PIDs, alive), and the rescue of the cut-off attempts.
- postgres-down: the same checks with the cluster stopped for 15 s (`pg_ctl stop -m fast`,
  then start): a restart on a small database takes well under a second, which a sweep of
  0.5 s can miss entirely; a longer outage cannot.
- api-kill: SIGKILL gunicorn (master and workers, the whole process group) during a burst from
  several client threads, then start it again: every 2xx answer's task must be stored.
- cancel: sleep tasks of 5 s, each cancelled (`POST /api/tasks/<id>/cancel`) once it runs,
  among other work: all end cancelled, none succeeds.
- soak: 20,000 mixed `noop`, short `sleep` and `flaky` tasks; the final statuses and attempts
  reconcile exactly with what each submitted task should do.

The figures, from the database (`tasks` and the `status` events in `task_events`):

- accepted: submits answered 2xx with a task id. lost: accepted, but absent or not in a final
  state (succeeded, failed, cancelled) after the drain (it ends once nothing moved for a minute,
  or after a generous timeout).
- double-completed: a task with more than one `succeeded` event, or more than one final
  status event (the bench never retries a task by hand, so each task ends once).
- rescue time: from the fault to the sweeper's lease-expired event (`LeaseExpired` in the
  error), and to the next attempt's `running` event, with and without the retry backoff the
  type's policy asked for (the event's `retry_in`). The target is on the time without backoff.
- recovery time: from the moment PostgreSQL or Redis answers again (or the API is back) to the
  first task that succeeded after it.

Targets: 0 lost, 0 double-completed, rescue <= lease + 2 s, recovery <= 10 s; no 500 from the
API while PostgreSQL restarts; workers and sweeper survive (same PIDs) a PostgreSQL restart
and Redis faults; cancelled tasks never succeed (and stop within about 2 s: docs/api.md).

Safety: it never touches the machine's PostgreSQL or Redis. It runs `initdb` into a temporary
directory (as the `postgres` user when run as root) and `pg_ctl start` on a spare port, trust
authentication, 127.0.0.1 only; and `redis-server` on a spare port without persistence. Every
process it starts listens on 127.0.0.1, runs in its own process group and is stopped by its
PID or group at the end, also on an error or Ctrl-C; the cluster's directory is removed.

    .venv/bin/python bench/chaos.py                         # every scenario (about 15-20 minutes on 2 cores)
    .venv/bin/python bench/chaos.py --quick                 # smoke run, a few minutes
    .venv/bin/python bench/chaos.py --scenario kill --scenario cancel
    .venv/bin/python bench/chaos.py --quick --logs /tmp/chaos-logs   # keep every process's log

It exits 1 when a target fails.
"""

import argparse
import collections
import contextlib
import dataclasses
import http.client
import importlib.metadata
import io
import json
import os
import pathlib
import platform
import pwd
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import api  # bench/ is this script's folder: free_port, wait_ready
import psycopg2
import redis
import redis.backoff
import redis.retry
import throughput  # INTERRUPTS, Worker (a process in its own group), load_average

REPO = throughput.REPO
PG_BIN = pathlib.Path("/usr/lib/postgresql/15/bin")
HEARTBEAT_SECONDS = 0.5
SWEEP_SECONDS = 0.5
RESCUE_SLACK = 2.0  # target: rescue <= lease + this
RECOVERY_TARGET = 10.0
CANCEL_STOP_TARGET = 2.0  # docs/api.md: a running task "ends within about 2 s"
STALL_SECONDS = 60.0  # a drain ends early once no event was written for this long
START_TIMEOUT = 90.0
POLL_SECONDS = 0.1
TERMINAL = ("succeeded", "failed", "cancelled")
HOST = socket.gethostname()


@dataclasses.dataclass(frozen=True)
class Scale:
    """How big each scenario is: the full run, or `--quick`."""

    kill_tasks: int
    kills: int
    stream_rate: float  # submits/s in the streaming scenarios
    stream_before: float  # seconds of stream before a fault
    stream_after: float  # and after the service is back
    redis_down: float
    postgres_down: float
    api_burst: int
    cancels: int
    soak: int


FULL = Scale(1000, 10, 8.0, 10.0, 20.0, 30.0, 15.0, 2000, 100, 20_000)
QUICK = Scale(200, 4, 8.0, 6.0, 12.0, 10.0, 5.0, 400, 25, 2_000)


# --- our own servers -------------------------------------------------------------------------


def as_postgres(argv: list) -> list[str]:
    """The command run as the `postgres` user when we are root: initdb refuses root."""
    argv = [str(part) for part in argv]
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class Postgres:
    """A throwaway PostgreSQL cluster: initdb into a temporary directory, trust authentication,
    127.0.0.1 only, a spare port; started and restarted with pg_ctl, stopped by its PID."""

    def __init__(self, root: pathlib.Path, log_dir: pathlib.Path):
        self.root, self.data, self.log = root, root / "data", root / "server.log"
        self.ctl_log = log_dir / "pg_ctl.log"
        self.port = api.free_port()

    def init(self) -> None:
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run([PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        settings = {
            "port": self.port,
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.root}'",
            "max_connections": 300,
            "logging_collector": "off",
        }
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def _run(self, argv: list, timeout: float = 120) -> None:
        with open(self.ctl_log, "ab") as log:
            subprocess.run(
                as_postgres(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                check=True,
                timeout=timeout,
            )

    def _ctl(self, *args: str) -> None:
        self._run([PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", *args])

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: end every session, checkpoint, start again; wait until up."""
        self._ctl("restart", "-m", "fast")

    def stop_fast(self) -> None:
        """`pg_ctl stop -m fast`: end every session, checkpoint, exit."""
        self._ctl("stop", "-m", "fast")

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """Stop the server (immediate), or SIGKILL its postmaster by PID if pg_ctl cannot."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._ctl("stop", "-m", "immediate")
        if self.pid() is not None and _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, statement: str):
        with contextlib.closing(psycopg2.connect(self.url(), connect_timeout=5)) as connection:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(statement)
                return cursor.fetchone() if cursor.description else None

    def version(self) -> str:
        return self.admin("SHOW server_version")[0]

    def answers(self) -> bool:
        try:
            self.admin("SELECT 1")
            return True
        except psycopg2.Error:
            return False


class RedisServer:
    """A redis-server of our own on a spare port: no persistence, 127.0.0.1 only."""

    def __init__(self, log_dir: pathlib.Path):
        self.port = api.free_port()
        self.log = log_dir / "redis.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with open(self.log, "ab") as log, throughput.INTERRUPTS.deferred():
            self.process = subprocess.Popen(
                [*argv, "--daemonize", "no"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        throughput.wait_until(self.answers, "redis-server to answer", 30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL, to the server's process group (its own PID)."""
        if self.process is None or self.process.poll() is not None:
            return
        with throughput.INTERRUPTS.deferred():
            _signal_group(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def client(self) -> redis.Redis:
        # No retries: redis-py's default backoff would take 8 s to report a refused connection.
        no_retry = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2, retry=no_retry)

    def answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not)."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def child_pids(pid: int) -> list[int]:
    """The live child processes of `pid` (a worker main process's pool processes)."""
    found = []
    for entry in pathlib.Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return sorted(found)


# --- the platform ----------------------------------------------------------------------------


class Platform:
    """Conveyor for one scenario on a fresh database: the API under gunicorn (gthread, 2 x 8),
    Celery workers and the sweeper, each a process group of its own."""

    def __init__(self, name: str, servers: "Servers", pools: list[tuple[str, int]], lease: float):
        self.name, self.pools = name, pools
        database = "chaos_" + name.replace("-", "_")
        servers.postgres.admin(f'CREATE DATABASE "{database}"')
        self.url = servers.postgres.url(database)
        self.logs = servers.log_dir / name
        self.logs.mkdir(parents=True, exist_ok=True)
        settings = {
            "DATABASE_URL": self.url,
            "BROKER_URL": servers.redis.url,
            "CONVEYOR_VAR_DIR": str(servers.tmp / name / "var"),
            "CONVEYOR_LEASE_SECONDS": str(lease),
            "CONVEYOR_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
            "CONVEYOR_SWEEP_SECONDS": str(SWEEP_SECONDS),
            "CONVEYOR_PLUGINS": "0",
            "CONVEYOR_SECRET_KEY": "chaos-bench",  # one for every API process, none made on disk
            "CONVEYOR_SUBMIT_RATE": "100000/second",  # the bench measures faults, not limits
            "CONVEYOR_SUBMIT_BURST": "100000",
            "CONVEYOR_ACCOUNT_MAX_WAITING": str(10**9),
        }
        self.env = {**os.environ, **settings, "PYTHONPATH": str(REPO)}
        self.key = prepare(settings)
        self.api_port = api.free_port()
        self.api: throughput.Worker | None = None
        self.workers: list[throughput.Worker] = []
        self.sweeper: throughput.Worker | None = None
        self.started: list[throughput.Worker] = []
        self.db = Database(self.url)

    def __enter__(self) -> "Platform":
        try:
            self.start_api()
            for slot in range(len(self.pools)):
                self.workers.append(self.start_worker(slot))
            self.sweeper = self._spawn("sweeper", ["-m", "app.cli", "sweeper"])
            self._wait_log(self.sweeper, "sweeper:")
            warm(self)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _spawn(self, name: str, args: list[str]) -> throughput.Worker:
        with throughput.INTERRUPTS.deferred():
            process = throughput.Worker(f"{name}-{len(self.started)}", args, self.env, self.logs)
            self.started.append(process)
        return process

    def _wait_log(self, process: throughput.Worker, text: str) -> None:
        def ready() -> bool:
            return text in process.log.read_text(errors="replace")

        throughput.wait_until(ready, f"{process.name} to start", START_TIMEOUT, process)

    def start_api(self) -> None:
        args = ["-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py"), "-k", "gthread", "-w", "2", "--threads", "8"]
        args += ["-b", f"127.0.0.1:{self.api_port}", "--log-level", "warning", "app:create_app()"]
        self.api = self._spawn("api", args)
        self.api.port = self.api_port
        api.wait_ready(self.api)

    def kill_api(self) -> None:
        """SIGKILL gunicorn's whole process group: the master and its workers at once."""
        _signal_group(self.api.process.pid, signal.SIGKILL)
        self.api.process.wait(timeout=10)

    def start_worker(self, slot: int) -> throughput.Worker:
        pool, concurrency = self.pools[slot]
        worker = self._spawn(
            f"worker-{pool}{slot}", ["-m", "app.cli", "worker", "--pool", pool, "--concurrency", str(concurrency)]
        )
        self._wait_log(worker, " ready.")
        return worker

    def restart_worker(self, slot: int) -> float:
        """Start slot's worker again (its main process was killed); return the seconds to ready."""
        started = time.time()
        self.workers[slot] = self.start_worker(slot)
        return time.time() - started

    def processes(self) -> dict[str, throughput.Worker]:
        """The API, workers and sweeper in use now, by name."""
        found = {worker.name: worker for worker in self.workers}
        return {self.api.name: self.api, **found, self.sweeper.name: self.sweeper}

    def stop(self) -> None:
        """SIGTERM every process group started (retired ones too), then SIGKILL what is left."""
        with throughput.INTERRUPTS.deferred():
            self.db.close()
            for process in self.started:
                _signal_group(process.process.pid, signal.SIGCONT)
                _signal_group(process.process.pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            for process in self.started:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            for process in self.started:
                _signal_group(process.process.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.process.wait(timeout=5)


def prepare(settings: dict) -> str:
    """Migrate the database and make a member's API key in account `chaos`; return the key."""
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db
    from app.services import accounts

    app = create_app(settings)
    with app.app_context(), contextlib.redirect_stderr(io.StringIO()):  # Alembic's INFO lines
        upgrade()
        accounts.create_account("chaos")
        accounts.create_user("chaos", "client", "member")
        _key, plain = accounts.create_key("chaos", "client", "chaos bench")
        db.session.remove()
        db.engine.dispose()
        app.extensions["conveyor"].close()
    return plain


def warm(platform: Platform) -> None:
    """Run a few noop tasks (the workers have claimed once), then clear the tables."""
    client = Client(platform.api_port, platform.key)
    ids = [client.submit({"type": "noop", "params": {}})[1] for _ in range(8)]
    throughput.wait_until(
        lambda: platform.db.scalar("SELECT count(*) FROM tasks WHERE status = 'succeeded'") >= len(ids),
        "the warm-up tasks",
        60,
    )
    platform.db.execute("TRUNCATE tasks, task_events, artifacts, pool_clocks")
    client.close()


class Database:
    """The bench's own autocommit connection to a scenario's database; it reconnects after an
    outage (for up to a minute) instead of failing."""

    def __init__(self, url: str):
        self.url = url
        self.connection = None

    def rows(self, statement: str, params: tuple | dict = ()) -> list[tuple]:
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.connection is None:
                    self.connection = psycopg2.connect(self.url, connect_timeout=5)
                    self.connection.autocommit = True
                with self.connection.cursor() as cursor:
                    cursor.execute(statement, params)
                    return cursor.fetchall() if cursor.description else []
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                self.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def scalar(self, statement: str, params: tuple | dict = ()):
        return self.rows(statement, params)[0][0]

    def execute(self, statement: str, params: tuple | dict = ()) -> None:
        self.rows(statement, params)

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(psycopg2.Error):
                self.connection.close()
            self.connection = None

    def running(self) -> dict[int, tuple[str, int]]:
        """The running attempts now: {worker process PID: (task id, attempt)}."""
        found = {}
        for worker, task_id, attempt in self.rows(
            "SELECT worker, id::text, attempt FROM tasks WHERE status = 'running'"
        ):
            with contextlib.suppress(AttributeError, ValueError):
                found[int(worker.rsplit(":", 1)[1])] = (task_id, attempt)
        return found


# --- the clients -----------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP connection to the API with a bearer key."""

    def __init__(self, port: int, key: str):
        self.port = port
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.connection: http.client.HTTPConnection | None = None

    def post(self, path: str, payload: dict | None = None) -> tuple[int, bytes]:
        """POST and return (status, body); raise OSError or HTTPException when no answer came."""
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        body = json.dumps(payload).encode() if payload is not None else b""
        try:
            self.connection.request("POST", path, body, self.headers)
            response = self.connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def submit(self, spec: dict) -> tuple[int, str | None, bytes]:
        status, body = self.post("/api/tasks", spec)
        return status, _task_id(status, body), body

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _task_id(status: int, body: bytes) -> str | None:
    if not 200 <= status < 300:
        return None
    try:
        return json.loads(body).get("task_id")
    except (ValueError, AttributeError):
        return None


@dataclasses.dataclass
class Answer:
    """One submit: when it was sent and answered, the HTTP status (None: no answer), the task."""

    spec: dict
    sent: float
    answered: float
    status: int | None
    task_id: str | None
    body: str


class Submitter:
    """Client threads that submit the specs of one shared sequence (at `rate` per second in all,
    or as fast as answers come) and keep every answer."""

    def __init__(self, platform: Platform, specs, threads: int = 4, rate: float | None = None):
        self.platform, self.specs, self.rate = platform, iter(specs), rate
        self.answers: list[Answer] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.sent = 0
        self.refused = 0  # connection attempts refused (the API down), sent again
        self.started = time.monotonic()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(threads)]

    def __enter__(self) -> "Submitter":
        self.started = time.monotonic()
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.join()

    def join(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.1, deadline - time.monotonic()))

    def _next(self) -> dict | None:
        with self.lock:
            spec = next(self.specs, None)
            due = self.started + self.sent / self.rate if self.rate else 0.0
            self.sent += 1
        if spec is not None and self.rate:
            time.sleep(max(0.0, due - time.monotonic()))
        return spec

    def _client(self) -> None:
        client = Client(self.platform.api_port, self.platform.key)
        while not self.stopping.is_set() and (spec := self._next()) is not None:
            self._send(client, spec)
        client.close()

    def _send(self, client: Client, spec: dict) -> None:
        """Submit one spec and keep the answer. A refused connection never reached the API, so
        the same spec goes again (counted in `refused`); a connection cut in flight is not
        retried: the task may be stored or not."""
        while True:
            sent = time.time()
            try:
                status, task_id, body = client.submit(spec)
            except (OSError, http.client.HTTPException) as exc:
                status, task_id, body = None, None, repr(exc).encode()
            answer = Answer(spec, sent, time.time(), status, task_id, body[:300].decode(errors="replace"))
            if answer.body.startswith("ConnectionRefusedError") and not self.stopping.is_set():
                with self.lock:
                    self.refused += 1
                time.sleep(0.1)  # the API is down: wait for it, without spinning
                continue
            with self.lock:
                self.answers.append(answer)
            return

    def accepted(self) -> dict[str, dict]:
        """{task id: spec} of every submit answered 2xx."""
        with self.lock:
            return {answer.task_id: answer.spec for answer in self.answers if answer.task_id}

    def statuses(self, start: float = 0.0, end: float = float("inf")) -> collections.Counter:
        """HTTP statuses of the submits sent between `start` and `end` (None: no answer)."""
        with self.lock:
            return collections.Counter(answer.status for answer in self.answers if start <= answer.sent <= end)

    def samples(self, start: float = 0.0, end: float = float("inf")) -> dict:
        """One body per non-2xx status among the submits sent between `start` and `end`."""
        found = {}
        with self.lock:
            for answer in self.answers:
                if start <= answer.sent <= end and not (answer.status and 200 <= answer.status < 300):
                    found.setdefault(answer.status, answer.body)
        return found

    def latencies(self, start: float = 0.0, end: float = float("inf")) -> list[float]:
        with self.lock:
            return [answer.answered - answer.sent for answer in self.answers if start <= answer.sent <= end]


def sleep_specs(n: int | None, low: float, high: float, seed: int = 1):
    """`sleep` tasks of `low`-`high` seconds (endless when n is None)."""
    rng = random.Random(seed)
    count = 0
    while n is None or count < n:
        count += 1
        yield {"type": "sleep", "params": {"seconds": round(rng.uniform(low, high), 3)}}


# --- the record ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Fault:
    """A fault the bench caused: when, what, the worker processes it concerns (if any), and
    how long it kept the database away (no lease can be rescued before it is back)."""

    at: float
    label: str
    pids: frozenset = frozenset()
    database_outage: float = 0.0


class Record:
    """What the database says about a scenario's tasks, read once after the drain."""

    def __init__(self, db: Database):
        self.tasks = {
            task_id: {"type": type_, "status": status, "attempt": attempt}
            for task_id, type_, status, attempt in db.rows("SELECT id::text, type, status, attempt FROM tasks")
        }
        self.events: dict[str, list[tuple[int, dict, float]]] = collections.defaultdict(list)
        rows = db.rows(
            "SELECT task_id::text, attempt, data, extract(epoch FROM created_at)::float8 FROM task_events"
            " WHERE kind = 'status' ORDER BY id"
        )
        for task_id, attempt, data, at in rows:
            self.events[task_id].append((attempt, data, at))

    def lost(self, accepted) -> list[str]:
        """Accepted tasks absent from the database, or not in a final state."""
        return [task_id for task_id in accepted if self.tasks.get(task_id, {}).get("status") not in TERMINAL]

    def double_completed(self) -> list[str]:
        """Tasks with more than one `succeeded` event, or more than one final status event."""
        found = []
        for task_id, events in self.events.items():
            ends = [data["status"] for _attempt, data, _at in events if data.get("status") in TERMINAL]
            if len(ends) > 1:  # two `succeeded` among them, or a task that ended twice anyhow
                found.append(task_id)
        return found

    def by_status(self, ids=None) -> collections.Counter:
        ids = self.tasks if ids is None else ids
        return collections.Counter(self.tasks.get(task_id, {}).get("status", "absent") for task_id in ids)

    def completions(self) -> list[float]:
        """When each `succeeded` event was written, in order."""
        return sorted(
            at for events in self.events.values() for _a, data, at in events if data.get("status") == "succeeded"
        )

    def first_completion_after(self, moment: float) -> float | None:
        """Seconds from `moment` to the first task that succeeded after it."""
        later = [at for at in self.completions() if at > moment]
        return later[0] - moment if later else None

    def end_of(self, task_id: str, attempt: int) -> str:
        """How an attempt ended: its first status event after its `running` one."""
        events = [(a, data) for a, data, _at in self.events.get(task_id, []) if a == attempt]
        for _a, data in events[1:] if events and events[0][1].get("status") == "running" else events:
            if data.get("status") == "running":
                continue
            error = data.get("error") or {}
            if _is_rescue(data):
                return "rescued (lease expired)"
            if data.get("status") == "queued":
                return f"retried after {error.get('type', '?')}"
            return data.get("status") + (f" ({error.get('type')})" if error else "")
        return "no end recorded"

    def rescues(self, faults: list[Fault]) -> tuple[list[dict], int]:
        """Each lease the sweeper found expired, with its times from the fault that caused it;
        and how many expired with no fault to blame (heartbeats missed under load)."""
        found, unexplained = [], 0
        for task_id, events in self.events.items():
            for index, (attempt, data, at) in enumerate(events):
                if not _is_rescue(data):
                    continue
                start, pid = _attempt_start(events, attempt)
                fault = _blame(faults, pid, at)
                if fault is None:
                    unexplained += 1
                    continue
                since = max(fault.at, start if start is not None else fault.at)
                found.append(
                    {"task": task_id, "to_expired": at - since, **_next_start(events[index + 1 :], data, since)}
                )
        return found, unexplained


def _is_rescue(data: dict) -> bool:
    """Whether a status event is the sweeper's: a lease expired (`sweeper._rescue`), and the
    attempt was requeued, failed, or cancelled because a cancel had been asked."""
    error = data.get("error") or {}
    return error.get("type") == "LeaseExpired" or str(data.get("reason", "")).startswith("worker lost")


def _attempt_start(events, attempt: int) -> tuple[float | None, int | None]:
    for a, data, at in events:
        if a == attempt and data.get("status") == "running":
            with contextlib.suppress(AttributeError, ValueError, IndexError):
                return at, int(str(data.get("worker")).rsplit(":", 1)[1])
            return at, None
    return None, None


def _blame(faults: list[Fault], pid: int | None, at: float) -> Fault | None:
    """The fault of that worker process, else the last fault before `at`."""
    before = [fault for fault in faults if fault.at <= at]
    own = [fault for fault in before if pid is not None and pid in fault.pids]
    if own:
        return own[-1]
    general = [fault for fault in before if not fault.pids]
    return general[-1] if general else None


def _next_start(later, expired: dict, since: float) -> dict:
    for _a, data, at in later:
        if data.get("status") == "running":
            backoff = float(expired.get("retry_in") or 0.0)
            return {"to_next": at - since, "to_next_without_backoff": at - since - backoff}
    return {"to_next": None, "to_next_without_backoff": None}


def drain(platform: Platform, timeout: float) -> dict:
    """Wait until no task is queued or running; give up once no event was written for
    STALL_SECONDS, or after `timeout`. Return the seconds waited and what is left."""
    started = moved = time.monotonic()
    last = None
    while True:
        unfinished, newest = platform.db.rows(
            "SELECT (SELECT count(*) FROM tasks WHERE status IN ('queued', 'running')),"
            " (SELECT coalesce(max(id), 0) FROM task_events)"
        )[0]
        clock = time.monotonic()
        if unfinished == 0:
            return {"seconds": clock - started, "unfinished": 0, "stalled": False}
        if newest != last:
            last, moved = newest, clock
        if clock - moved > STALL_SECONDS or clock - started > timeout:
            return {"seconds": clock - started, "unfinished": unfinished, "stalled": clock - moved > STALL_SECONDS}
        time.sleep(0.5)


# --- outcomes --------------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    """One scenario's figures, its checks against the targets, and evidence for failures."""

    name: str
    title: str
    figures: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    checks: list[tuple[str, str, bool]] = dataclasses.field(default_factory=list)
    evidence: list[str] = dataclasses.field(default_factory=list)
    summary: dict = dataclasses.field(default_factory=dict)
    window: tuple = ()  # a service fault: when it began, when the service was back
    processes: dict = dataclasses.field(default_factory=dict)

    def figure(self, label: str, value) -> None:
        self.figures.append((label, str(value)))

    def check(self, label: str, measured, ok: bool) -> None:
        self.checks.append((label, str(measured), ok))

    @property
    def ok(self) -> bool:
        return all(ok for _label, _measured, ok in self.checks)


def spread(values: list[float | None]) -> str:
    values = [value for value in values if value is not None]
    if not values:
        return "-"
    return f"p50 {statistics.median(values):.2f} s, max {max(values):.2f} s (n={len(values)})"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def statuses_text(counts: collections.Counter) -> str:
    if not counts:
        return "none"
    return ", ".join(
        f"{'no answer' if status is None else status}: {n}" for status, n in sorted(counts.items(), key=str)
    )


def judge(outcome: Outcome, record: Record, accepted: dict, faults: list[Fault], lease: float) -> None:
    """The figures and targets every scenario shares: accepted, lost, double-completed, the
    final statuses, and rescue times."""
    lost, double = record.lost(accepted), record.double_completed()
    rescues, unexplained = record.rescues(faults)
    outcome.figure("accepted (2xx)", len(accepted))
    outcome.figure("final statuses of accepted tasks", dict(sorted(record.by_status(accepted).items())))
    outcome.figure("lost", len(lost))
    outcome.figure("double-completed", len(double))
    outcome.figure("leases rescued after a fault", len(rescues))
    outcome.figure("  fault -> lease-expired event", spread([r["to_expired"] for r in rescues]))
    outcome.figure("  fault -> next attempt started", spread([r["to_next"] for r in rescues]))
    outcome.figure("  the same, retry backoff excluded", spread([r["to_next_without_backoff"] for r in rescues]))
    outcome.figure("leases expired with no fault to blame (missed heartbeats)", unexplained)
    outcome.check("lost = 0", len(lost), not lost)
    outcome.check("double-completed = 0", len(double), not double)
    worst = max(
        [
            r["to_next_without_backoff"] if r["to_next_without_backoff"] is not None else r["to_expired"]
            for r in rescues
        ],
        default=None,
    )
    if worst is not None:
        # A lease lapses `lease` after the fault, or is rescued once the database is back.
        outage = max((fault.database_outage for fault in faults), default=0.0)
        bound = max(lease, outage) + RESCUE_SLACK
        allowance = f"lease + {RESCUE_SLACK:g} s" if outage <= lease else f"outage + {RESCUE_SLACK:g} s"
        outcome.check(f"rescue (backoff excluded) <= {allowance} = {bound:.3g} s", seconds(worst), worst <= bound)
    for task_id in lost[:5]:
        outcome.evidence.append(
            f"lost task {task_id}: {record.tasks.get(task_id, {}).get('status', 'absent')}, "
            f"events {record.events.get(task_id, [])[-4:]}"
        )
    for task_id in double[:5]:
        outcome.evidence.append(f"double-completed task {task_id}: events {record.events[task_id]}")
    outcome.summary.update(
        accepted=len(accepted),
        lost=len(lost),
        double=len(double),
        rescue=spread([r["to_next"] for r in rescues]).split(" (")[0],
        rescue_nb=spread([r["to_next_without_backoff"] for r in rescues]).split(" (")[0],
    )


def judge_recovery(outcome: Outcome, record: Record, back: float, label: str) -> None:
    recovery = record.first_completion_after(back)
    outcome.figure(f"recovery: {label} -> first task succeeded", seconds(recovery))
    outcome.check(
        f"recovery <= {RECOVERY_TARGET:g} s", seconds(recovery), recovery is not None and recovery <= RECOVERY_TARGET
    )
    outcome.summary["recovery"] = seconds(recovery)


def judge_survivors(outcome: Outcome, before: dict[str, throughput.Worker]) -> None:
    """Workers, sweeper and API still the same processes, alive; else the end of their logs."""
    dead = {name: process for name, process in before.items() if process.process.poll() is not None}
    outcome.figure("processes alive with the same PIDs", f"{len(before) - len(dead)} of {len(before)}")
    outcome.check("workers, sweeper and API survive (same PIDs)", ", ".join(dead) or "all alive", not dead)
    for name, process in dead.items():
        tail = process.log.read_text(errors="replace").splitlines()[-12:]
        outcome.evidence.append(
            f"{name} (PID {process.process.pid}) exited with code {process.process.returncode}; "
            + "the end of its log:\n      "
            + "\n      ".join(tail)
        )


def judge_drain(outcome: Outcome, drained: dict) -> None:
    left = f", {drained['unfinished']} left unfinished" + (" (stalled)" if drained["stalled"] else " (timeout)")
    outcome.figure("drain", f"{drained['seconds']:.1f} s" + (left if drained["unfinished"] else ""))


# --- the scenarios ---------------------------------------------------------------------------


@dataclasses.dataclass
class Servers:
    """What every scenario shares: the cluster, Redis, folders, the run's scale and lease."""

    postgres: Postgres
    redis: RedisServer
    tmp: pathlib.Path
    log_dir: pathlib.Path
    scale: Scale
    lease: float

    def reset(self) -> None:
        """Between scenarios: both servers up, and our Redis empty (it is the bench's own)."""
        if not self.postgres.answers():
            self.postgres.start()
        if not self.redis.answers():
            self.redis.stop()
            self.redis.start()
        self.redis.client().flushall()


class Orphans:
    """Pool processes whose main process was killed: when each one exited."""

    def __init__(self):
        self.watched: dict[int, float] = {}  # pid -> when its main process was killed
        self.exited: dict[int, float] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def watch(self, pids: list[int], killed_at: float) -> None:
        for pid in pids:
            self.watched[pid] = killed_at

    def _watch(self) -> None:
        while not self.stopping.wait(0.1):
            for pid in list(self.watched):
                if pid not in self.exited and not _alive(pid):
                    self.exited[pid] = time.time()

    def lifetimes(self) -> list[float | None]:
        """Seconds each orphan outlived its main process (None: still alive)."""
        return [self.exited[pid] - at if pid in self.exited else None for pid, at in self.watched.items()]


def kill_pool_process(platform: Platform, slot: int) -> tuple[Fault, tuple | None]:
    """SIGKILL one pool process of slot's worker, preferably one running an attempt."""
    main = platform.workers[slot].process.pid
    prefer_until, give_up = time.monotonic() + 5, time.monotonic() + 60
    while True:
        kids, running = child_pids(main), platform.db.running()
        busy = [pid for pid in kids if pid in running]
        if busy or (kids and time.monotonic() > prefer_until):
            break
        if time.monotonic() > give_up:
            raise TimeoutError(f"worker {platform.workers[slot].name} has no pool process to kill")
        time.sleep(0.05)
    pid = random.choice(busy or kids)
    at = time.time()
    os.kill(pid, signal.SIGKILL)
    return Fault(at, f"pool process {pid}", frozenset({pid})), running.get(pid)


def kill_main_process(platform: Platform, slot: int, orphans: Orphans) -> tuple[Fault, list, float]:
    """SIGKILL slot's worker main process alone, then start the worker again; return the fault,
    the attempts its pool processes were running, and the seconds the new worker took to be
    ready."""
    worker = platform.workers[slot]
    kids, running = child_pids(worker.process.pid), platform.db.running()
    at = time.time()
    os.kill(worker.process.pid, signal.SIGKILL)
    worker.process.wait(timeout=10)
    orphans.watch(kids, at)
    fault = Fault(at, f"main process {worker.process.pid}", frozenset({worker.process.pid, *kids}))
    return fault, [running[pid] for pid in kids if pid in running], platform.restart_worker(slot)


def scenario_kill(servers: Servers) -> Outcome:
    scale = servers.scale
    outcome = Outcome(
        "kill",
        f"SIGKILL pool and main worker processes {scale.kills} times during {scale.kill_tasks:,} sleep tasks "
        "of 0.2-0.5 s",
    )
    with Platform("kill", servers, [("cpu", 2), ("cpu", 2)], servers.lease) as platform:
        orphans = Orphans()
        interval = max(servers.lease + 1, scale.kill_tasks * 0.35 / 4 / (scale.kills + 1))
        faults, cut, orphaned, restarts = [], [], [], []
        with Submitter(platform, sleep_specs(scale.kill_tasks, 0.2, 0.5), threads=4) as submitter:
            for number in range(scale.kills):
                time.sleep(interval)
                slot = (number // 2) % 2
                if number % 2 == 0:
                    fault, attempt = kill_pool_process(platform, slot)
                    cut.append(attempt)
                else:
                    fault, attempts, ready = kill_main_process(platform, slot, orphans)
                    orphaned.extend(attempts)
                    restarts.append(ready)
                faults.append(fault)
            submitter.join()
        drained = drain(platform, 300 + scale.kill_tasks)
        orphans.stopping.set()
        record = Record(platform.db)
        outcome.figure(
            "lease / heartbeat / sweep", f"{servers.lease:g} s / {HEARTBEAT_SECONDS:g} s / {SWEEP_SECONDS:g} s"
        )
        outcome.figure("kill interval", f"{interval:.1f} s")
        judge_drain(outcome, drained)
        judge(outcome, record, submitter.accepted(), faults, servers.lease)
        ends = collections.Counter(record.end_of(*attempt) for attempt in cut if attempt)
        outcome.figure("pool processes killed", f"{len(cut)} ({sum(1 for a in cut if a)} running an attempt)")
        outcome.figure("  how their attempts ended", dict(ends))
        outcome.figure("main processes killed", f"{len(restarts)}; restarted, ready in {spread(restarts)}")
        lifetimes = orphans.lifetimes()
        outcome.figure(
            "  their pool processes (orphans)",
            f"{len(lifetimes)}; outlived their main by {spread(lifetimes)}"
            + (f"; {lifetimes.count(None)} still alive at the end" if None in lifetimes else ""),
        )
        outcome.figure(
            "  attempts they were running, how each ended",
            dict(collections.Counter(record.end_of(*a) for a in orphaned)),
        )
        outcome.figure("  attempts orphans started after their main died", orphan_attempts(record, orphans))
    return outcome


def orphan_attempts(record: Record, orphans: Orphans) -> int:
    """Attempts started by a pool process after its main process was killed."""
    count = 0
    for events in record.events.values():
        for _a, data, at in events:
            if data.get("status") == "running":
                with contextlib.suppress(AttributeError, ValueError, IndexError):
                    pid = int(str(data.get("worker")).rsplit(":", 1)[1])
                    count += pid in orphans.watched and at > orphans.watched[pid]
    return count


def stream(servers: Servers, name: str, title: str, fault, extra=None, database: bool = False) -> Outcome:
    """The shared shape of the service faults: a stream of sleep tasks; `fault(platform)` runs
    in the middle of it and returns (when it began, when the service was back, what it was,
    what "back" means); then the stream goes on, the queue drains, and the record is judged,
    with `extra(outcome, record, submitter)` for what the scenario checks on its own.
    `database`: the fault kept PostgreSQL away (rescues wait for it)."""
    scale = servers.scale
    outcome = Outcome(name, title)
    with Platform(name, servers, [("cpu", 2), ("cpu", 2)], servers.lease) as platform:
        before = platform.processes()
        with Submitter(platform, sleep_specs(None, 0.2, 0.5), threads=4, rate=scale.stream_rate) as submitter:
            time.sleep(scale.stream_before)
            began, back, label, back_label = fault(platform)
            time.sleep(scale.stream_after)
        drained = drain(platform, 300)
        record = Record(platform.db)
        outcome.figure(
            "stream",
            f"{scale.stream_rate:g} sleep tasks/s of 0.2-0.5 s, {scale.stream_before:g} s before the fault, "
            f"{scale.stream_after:g} s after",
        )
        outcome.figure("fault", f"{label}; back after {back - began:.2f} s")
        outcome.figure("submit answers, whole run", statuses_text(submitter.statuses()))
        outcome.figure("submit answers, sent during the outage", statuses_text(submitter.statuses(began, back)))
        outcome.figure("submit latency during the outage", spread(submitter.latencies(began, back)))
        for status, body in sorted(submitter.samples().items(), key=str):
            outcome.figure(f"  a {'no answer' if status is None else status} body", body.strip()[:160])
        during = [at for at in record.completions() if began <= at <= back]
        outcome.figure("tasks succeeded during the outage", len(during))
        judge_drain(outcome, drained)
        faults = [Fault(began, label, database_outage=back - began if database else 0.0)]
        judge(outcome, record, submitter.accepted(), faults, servers.lease)
        judge_recovery(outcome, record, back, back_label)
        judge_survivors(outcome, before)
        outcome.window, outcome.processes = (began, back), before
        if extra is not None:
            extra(outcome, record, submitter)
    return outcome


def scenario_redis_flush(servers: Servers) -> Outcome:
    def fault(platform: Platform):
        at = time.time()
        servers.redis.client().flushall()  # the bench's own Redis, on its own port
        return at, time.time(), "FLUSHALL", "FLUSHALL"

    return stream(servers, "redis-flush", "FLUSHALL of the broker in the middle of a stream of submits", fault)


def scenario_redis_down(servers: Servers) -> Outcome:
    down = servers.scale.redis_down

    def fault(platform: Platform):
        at = time.time()
        servers.redis.stop()
        time.sleep(down)
        servers.redis.start()  # the same port
        return at, time.time(), f"Redis stopped for {down:g} s", "Redis answers again"

    def extra(outcome: Outcome, record: Record, submitter: Submitter) -> None:
        began, back = outcome.window
        workers = [process for name, process in outcome.processes.items() if name.startswith("worker")]
        delays = [_reconnected(worker.log, began, back) for worker in workers]
        outcome.figure("workers' consumers reconnected, after Redis answered", spread(delays))
        reconnected = f"{sum(delay is not None for delay in delays)} of {len(delays)}"
        outcome.check("every worker reconnects to Redis", reconnected, None not in delays)

    title = f"the broker stopped for {down:g} s, then started again on the same port"
    return stream(servers, "redis-down", title, fault, extra)


def _reconnected(log: pathlib.Path, began: float, back: float) -> float | None:
    """Seconds from `back` to the worker's first "Connected to redis" logged after `began`."""
    for line in log.read_text(errors="replace").splitlines():
        if "Connected to redis" in line and line.startswith("["):
            with contextlib.suppress(ValueError):
                stamp, _sep, millis = line[1:24].partition(",")
                at = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000
                if at > began:
                    return at - back
    return None


def scenario_postgres_restart(servers: Servers) -> Outcome:
    running_then: dict[int, tuple[str, int]] = {}

    def fault(platform: Platform):
        running_then.update(platform.db.running())
        at = time.time()
        servers.postgres.restart()
        throughput.wait_until(servers.postgres.answers, "PostgreSQL to answer", 60)
        return at, time.time(), "pg_ctl restart -m fast", "PostgreSQL answers again"

    title = "pg_ctl restart -m fast on the cluster while submits stream"
    return stream(servers, "postgres-restart", title, fault, postgres_checks(running_then), database=True)


def postgres_checks(running_then: dict):
    """What a PostgreSQL outage adds: how the attempts running then ended, and the API's
    answers (503 with the JSON error shape, never another 5xx)."""

    def extra(outcome: Outcome, record: Record, submitter: Submitter) -> None:
        ends = collections.Counter(record.end_of(*attempt) for attempt in running_then.values())
        outcome.figure("attempts running at the fault, how each ended", dict(ends) or 0)
        counts = submitter.statuses()
        errors = {status: n for status, n in counts.items() if status is not None and status >= 500 and status != 503}
        outcome.check("no 5xx from the API but 503", statuses_text(collections.Counter(errors)) or "none", not errors)
        bodies = submitter.samples()
        if 503 in bodies:
            outcome.check("503 answers carry the JSON error shape", bodies[503][:60], _json_error(bodies[503]))

    return extra


def scenario_postgres_down(servers: Servers) -> Outcome:
    down = servers.scale.postgres_down
    running_then: dict[int, tuple[str, int]] = {}

    def fault(platform: Platform):
        running_then.update(platform.db.running())
        at = time.time()
        servers.postgres.stop_fast()
        time.sleep(down)
        servers.postgres.start()
        throughput.wait_until(servers.postgres.answers, "PostgreSQL to answer", 60)
        return (
            at,
            time.time(),
            f"PostgreSQL stopped for {down:g} s (pg_ctl stop -m fast, start)",
            "PostgreSQL answers again",
        )

    title = f"PostgreSQL stopped for {down:g} s while submits stream (not in the brief: an outage longer than a sweep)"
    return stream(servers, "postgres-down", title, fault, postgres_checks(running_then), database=True)


def _json_error(body: str) -> bool:
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and {"code", "status", "message"} <= set(parsed)


def scenario_api_kill(servers: Servers) -> Outcome:
    n = servers.scale.api_burst
    outcome = Outcome(
        "api-kill", f"SIGKILL gunicorn (master and workers) during a burst of {n:,} submits from 8 client threads"
    )
    with Platform("api-kill", servers, [("cpu", 2), ("cpu", 2)], servers.lease) as platform:
        specs = ({"type": "noop", "params": {"echo": f"burst-{i}"}} for i in range(n))
        with Submitter(platform, specs, threads=8) as submitter:
            throughput.wait_until(lambda: len(submitter.answers) >= n // 3, "a third of the burst", 120)
            killed = time.time()
            platform.kill_api()
            time.sleep(1.0)
            platform.start_api()
            back = time.time()
            submitter.join()
        drained = drain(platform, 300)
        record = Record(platform.db)
        stored = {echo for (echo,) in platform.db.rows("SELECT params->>'echo' FROM tasks")}
        unanswered = [a for a in submitter.answers if a.status is None]
        accepted = submitter.accepted()
        answered_2xx = [a for a in submitter.answers if a.task_id]
        missing = [a.task_id for a in answered_2xx if a.task_id not in record.tasks]
        outcome.figure("submit answers", statuses_text(submitter.statuses()))
        outcome.figure("API down (kill -> ready again)", f"{back - killed:.2f} s")
        outcome.figure("connections refused while the API was down (sent again)", submitter.refused)
        stored_anyway = sum(a.spec["params"]["echo"] in stored for a in unanswered)
        outcome.figure(
            "submits cut off in flight (no answer) / of which stored", f"{len(unanswered)} / {stored_anyway}"
        )
        judge_drain(outcome, drained)
        judge(outcome, record, accepted, [], servers.lease)
        outcome.check("every 2xx submit is stored", f"{len(missing)} missing of {len(answered_2xx)}", not missing)
        first = [a.answered - back for a in answered_2xx if a.sent >= back]
        outcome.figure("API back -> first 2xx", seconds(min(first, default=None)))
        judge_recovery(outcome, record, back, "API back")
    return outcome


def scenario_cancel(servers: Servers) -> Outcome:
    n = servers.scale.cancels
    outcome = Outcome("cancel", f"{n} running sleep tasks of 5 s cancelled under load")
    with Platform("cancel", servers, [("cpu", 2), ("cpu", 2)], servers.lease) as platform:
        targets = ({"type": "sleep", "params": {"seconds": 5.0}} for _ in range(n))
        load = sleep_specs(None, 0.1, 0.3, seed=2)
        with (
            Submitter(platform, load, threads=2, rate=4.0) as background,
            Submitter(platform, targets, threads=2, rate=2.0) as submitter,
        ):
            cancels = cancel_when_running(platform, submitter, n, timeout=60 + 3 * n)
            background.stopping.set()
        drained = drain(platform, 300)
        record = Record(platform.db)
        ids = list(submitter.accepted())
        final = record.by_status(ids)
        late = [task_id for task_id, accepted_at, _o in cancels if _succeeded_after(record, task_id, accepted_at)]
        stops = [_cancelled_at(record, task_id) - at for task_id, at, _o in cancels if _cancelled_at(record, task_id)]
        outcome.figure("targets accepted / cancel requests answered", f"{len(ids)} / {len(cancels)}")
        outcome.figure("cancel answers", dict(collections.Counter(outcome_ for _t, _a, outcome_ in cancels)))
        outcome.figure("targets' final statuses", dict(final))
        outcome.figure("cancel accepted -> cancelled event", spread(stops))
        judge_drain(outcome, drained)
        judge(outcome, record, {**background.accepted(), **submitter.accepted()}, [], servers.lease)
        outcome.check("every target ends cancelled", dict(final), final.get("cancelled", 0) == len(ids) == n)
        outcome.check("none succeeds after its cancel was accepted", len(late), not late)
        worst = max(stops, default=None)
        outcome.check(
            f"stops within {CANCEL_STOP_TARGET:g} s of the cancel (docs/api.md)",
            seconds(worst),
            worst is not None and worst <= CANCEL_STOP_TARGET,
        )
    return outcome


def cancel_when_running(
    platform: Platform, submitter: Submitter, n: int, timeout: float
) -> list[tuple[str, float, str]]:
    """Cancel each target once the database shows it running; return (task, when the cancel
    was accepted, its outcome) for each."""
    client = Client(platform.api_port, platform.key)
    done: dict[str, tuple[float, str]] = {}
    deadline = time.monotonic() + timeout
    while len(done) < n and time.monotonic() < deadline:
        wanted = set(submitter.accepted()) - set(done)
        running = {task_id for task_id, _attempt in platform.db.running().values()} & wanted
        for task_id in running:
            status, body = client.post(f"/api/tasks/{task_id}/cancel")
            done[task_id] = (time.time(), json.loads(body).get("outcome") if status == 200 else f"HTTP {status}")
        time.sleep(POLL_SECONDS)
    client.close()
    return [(task_id, at, result) for task_id, (at, result) in done.items()]


def _succeeded_after(record: Record, task_id: str, moment: float) -> bool:
    return any(data.get("status") == "succeeded" and at >= moment for _a, data, at in record.events.get(task_id, []))


def _cancelled_at(record: Record, task_id: str) -> float | None:
    return next((at for _a, data, at in record.events.get(task_id, []) if data.get("status") == "cancelled"), None)


# Soak mix: (weight, spec maker, expected (status, attempt)). flaky allows 5 attempts.
SOAK_MIX = [
    (50, lambda rng: {"type": "noop", "params": {}}),
    (30, lambda rng: {"type": "sleep", "params": {"seconds": round(rng.uniform(0.0, 0.05), 3)}}),
    (14, lambda rng: {"type": "flaky", "params": {"times": rng.choice([0, 1, 1, 2, 3, 4])}}),
    (3, lambda rng: {"type": "flaky", "params": {"times": 5}}),
    (3, lambda rng: {"type": "flaky", "params": {"times": 1, "error": "permanent"}}),
]
FLAKY_ATTEMPTS = 5


def soak_specs(n: int, seed: int = 3):
    rng = random.Random(seed)
    weights = [weight for weight, _make in SOAK_MIX]
    for _ in range(n):
        yield rng.choices(SOAK_MIX, weights)[0][1](rng)


def expected(spec: dict) -> tuple[str, int]:
    """What a soak task must end as: (status, attempts)."""
    if spec["type"] != "flaky":
        return "succeeded", 1
    times = spec["params"]["times"]
    if times == 0:
        return "succeeded", 1
    if spec["params"].get("error") == "permanent":
        return "failed", 1
    return ("succeeded", times + 1) if times < FLAKY_ATTEMPTS else ("failed", FLAKY_ATTEMPTS)


def scenario_soak(servers: Servers) -> Outcome:
    n = servers.scale.soak
    outcome = Outcome("soak", f"{n:,} mixed noop / sleep (0-50 ms) / flaky tasks; statuses reconciled task by task")
    with Platform("soak", servers, [("cpu", 2), ("io", 2)], servers.lease) as platform:
        started = time.time()
        with Submitter(platform, soak_specs(n), threads=4) as submitter:
            submitter.join(timeout=1800)
        submitted = time.time()
        drained = drain(platform, 900 + n / 10)
        record = Record(platform.db)
        accepted = submitter.accepted()
        outcome.figure("submit answers", statuses_text(submitter.statuses()))
        outcome.figure("submit rate", f"{len(accepted) / (submitted - started):.0f} tasks/s")
        outcome.figure("end to end", f"{len(accepted) / (time.time() - started):.0f} tasks/s")
        judge_drain(outcome, drained)
        judge(outcome, record, accepted, [], servers.lease)
        reconcile(outcome, record, accepted)
    return outcome


def reconcile(outcome: Outcome, record: Record, accepted: dict) -> None:
    """Each accepted task's status and attempts against what its type and params say."""
    wanted, got, wrong = collections.Counter(), collections.Counter(), []
    for task_id, spec in accepted.items():
        status, attempts = expected(spec)
        wanted[status] += 1
        found = record.tasks.get(task_id, {})
        got[found.get("status", "absent")] += 1
        if (found.get("status"), found.get("attempt")) != (status, attempts):
            wrong.append((task_id, spec, (status, attempts), (found.get("status"), found.get("attempt"))))
    by_kind = collections.Counter(_kind(spec) for spec in accepted.values())
    outcome.figure("accepted by kind", dict(sorted(by_kind.items())))
    outcome.figure("expected final statuses", dict(sorted(wanted.items())))
    outcome.figure("final statuses", dict(sorted(got.items())))
    outcome.check("statuses and attempts reconcile, task by task", f"{len(wrong)} differ", not wrong)
    outcome.check(
        "status counts sum to accepted",
        f"{sum(got.values())} = {len(accepted)}",
        sum(got.values()) == len(accepted) and got == wanted,
    )
    for task_id, spec, want, found in wrong[:5]:
        outcome.evidence.append(
            f"task {task_id} {spec}: expected {want}, found {found}; events {record.events.get(task_id, [])}"
        )


def _kind(spec: dict) -> str:
    if spec["type"] != "flaky":
        return spec["type"]
    params = spec["params"]
    return f"flaky {params.get('error', 'retryable')} x{params['times']}"


SCENARIOS = {
    "kill": scenario_kill,
    "redis-flush": scenario_redis_flush,
    "redis-down": scenario_redis_down,
    "postgres-restart": scenario_postgres_restart,
    "postgres-down": scenario_postgres_down,
    "api-kill": scenario_api_kill,
    "cancel": scenario_cancel,
    "soak": scenario_soak,
}


# --- the report ------------------------------------------------------------------------------


def machine(servers: Servers) -> list[str]:
    """Cores, CPU, the versions of our own servers and of the stack, and the load."""
    cpuinfo = pathlib.Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "unknown")
    redis_version = servers.redis.client().info("server")["redis_version"]
    stack = ", ".join(
        f"{name} {_version(name)}"
        for name in ("celery", "kombu", "gunicorn", "Flask", "SQLAlchemy", "psycopg2", "redis")
    )
    return [
        f"nproc: {os.cpu_count()}",
        f"CPU: {model}",
        f"kernel: {platform.release()}",
        f"PostgreSQL: {servers.postgres.version()} (the bench's own cluster on 127.0.0.1:{servers.postgres.port})",
        f"Redis: {redis_version} (the bench's own server on 127.0.0.1:{servers.redis.port})",
        f"Python: {platform.python_version()}; {stack}",
        throughput.load_average(),
    ]


def _version(distribution: str) -> str:
    for name in (distribution, f"{distribution}-binary"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(name)
    return "?"


def report(outcome: Outcome) -> None:
    print(f"\n== {outcome.name}: {outcome.title} ==")
    width = max(len(label) for label, _value in outcome.figures + [(c[0], "") for c in outcome.checks])
    for label, value in outcome.figures:
        print(f"  {label:<{width}}  {value}")
    print("  targets:")
    for label, measured, ok in outcome.checks:
        print(f"    {label:<{width}}  {measured:<24} {'PASS' if ok else 'FAIL'}")
    for line in outcome.evidence:
        print(f"  evidence: {line}")
    print(f"  -> {outcome.name}: {'PASS' if outcome.ok else 'FAIL'}  ({throughput.load_average()})", flush=True)


def summary(outcomes: list[Outcome]) -> None:
    columns = ("accepted", "lost", "double", "rescue", "rescue_nb", "recovery")
    heads = ("accepted", "lost", "double", "rescue p50/max", "no backoff p50/max", "recovery")
    print(f"\n{'scenario':<18}" + "".join(f"{head:>24}" for head in heads) + "  verdict")
    for outcome in outcomes:
        cells = [
            str(outcome.summary.get(column, "-")).replace("p50 ", "").replace(", max ", " / ") for column in columns
        ]
        print(
            f"{outcome.name:<18}" + "".join(f"{cell:>24}" for cell in cells) + f"  {'PASS' if outcome.ok else 'FAIL'}"
        )


def run_scenario(name: str, servers: Servers) -> Outcome:
    """Run one scenario; an error in the bench or the platform is a FAIL with its reason."""
    started = time.monotonic()
    print(f"\n-- {name} (started {time.strftime('%H:%M:%S')}) ...", flush=True)
    try:
        outcome = SCENARIOS[name](servers)
    except Exception as exc:  # reported as the scenario's failure; the next one still runs
        outcome = Outcome(name, "did not complete")
        outcome.check("the scenario ran to its end", f"{type(exc).__name__}: {exc}"[:200], False)
        outcome.evidence.extend(log_tails(servers.log_dir / name))
    outcome.figures.insert(0, ("scenario took", f"{time.monotonic() - started:.0f} s"))
    servers.reset()
    report(outcome)
    return outcome


def log_tails(folder: pathlib.Path, lines: int = 8) -> list[str]:
    tails = []
    for log in sorted(folder.glob("*.log")):
        text = log.read_text(errors="replace").splitlines()[-lines:]
        tails.append(f"the end of {log.name}:\n      " + "\n      ".join(text))
    return tails


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="run this scenario (repeatable; default: all)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 200 kill tasks, 4 kills, Redis down 10 s, soak 2,000"
    )
    parser.add_argument("--lease", type=float, default=3.0, help="CONVEYOR_LEASE_SECONDS for the platform (default 3)")
    parser.add_argument("--logs", type=pathlib.Path, default=None, help="keep every process's log in this folder")
    args = parser.parse_args()
    args.scenario = args.scenario or list(SCENARIOS)
    return args


@contextlib.contextmanager
def own_servers(args: argparse.Namespace):
    """Start our PostgreSQL cluster and Redis; stop both and remove the cluster at the end."""
    with contextlib.ExitStack() as stack:
        tmp = pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="conveyor-chaos-")))
        log_dir = args.logs or tmp / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        pg_root = pathlib.Path(tempfile.mkdtemp(prefix="conveyor-chaos-pg-"))
        stack.callback(shutil.rmtree, pg_root, ignore_errors=True)
        postgres = Postgres(pg_root, log_dir)
        postgres.init()
        with throughput.INTERRUPTS.deferred():
            stack.callback(postgres.stop)
            postgres.start()
        redis_server = RedisServer(log_dir)
        stack.callback(redis_server.stop)
        redis_server.start()
        yield Servers(postgres, redis_server, tmp, log_dir, QUICK if args.quick else FULL, args.lease)


def main() -> int:
    args = parse_args()
    throughput.INTERRUPTS.install()
    with own_servers(args) as servers:
        print("machine:\n  " + "\n  ".join(machine(servers)))
        print(
            f"run: {', '.join(args.scenario)}{' (quick)' if args.quick else ''}; lease {args.lease:g} s, heartbeat "
            f"{HEARTBEAT_SECONDS:g} s, sweep {SWEEP_SECONDS:g} s "
            "(CONVEYOR_LEASE_SECONDS, _HEARTBEAT_SECONDS, _SWEEP_SECONDS); "
            "API gunicorn gthread 2 x 8; workers prefork, 2 processes each. The machine is shared: timings are noisy.",
            flush=True,
        )
        outcomes = [run_scenario(name, servers) for name in args.scenario]
        summary(outcomes)
    print(f"\nend of run, {throughput.load_average()}")
    return 0 if all(outcome.ok for outcome in outcomes) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted; every process stopped, the cluster removed")
