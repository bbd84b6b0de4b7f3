"""Throughput and latency of Conveyor's `noop` tasks against raw Celery, side by side.

Both run on the same PostgreSQL and Redis, with the same reliable Celery settings
(`celeryconfig.py`: acks late, prefetch 1, reject on worker lost, JSON, results ignored), the
same prefork pool and the same number of worker processes. For each of them it measures:

- enqueue rate: one client submits N tasks, no worker running (Conveyor through
  `app.services.tasks.submit`: commit the row, then publish a wake-up);
- batch enqueue rate (Conveyor): the same N tasks in batches of 1000 through
  `app.services.batches.submit` (what `POST /api/tasks/batch` runs), against raw Celery's
  `apply_async` loop, which has no batch;
- drain rate: those N tasks already queued, a worker is started; tasks/s from the first
  completion seen to the last;
- end-to-end rate: workers idle and ready, one client submits N tasks; until all are done;
- enqueue-to-start latency, p50 and p99, with idle workers: one task at a time, each waited
  for. Conveyor: the row's `started_at - created_at`; raw Celery: the task pushes `time.time()`
  to a Redis list, the producer notes the time just before sending;

and for Conveyor alone the claim latency (`lifecycle.claim` + commit, median) with 10 thousand
and with 10 million finished tasks in the table, inserted with INSERT ... SELECT
generate_series statements, a tenth of them past the 7-day retention and a real sweeper
deleting them while the claims are timed (retention running, as in production).

It makes a throwaway database `conveyor_bench_<pid>`, uses an empty Redis db (the highest free
one unless --redis-db), runs workers as subprocesses in their own process groups, and stops
them, drops the database and empties the Redis db at the end, also on error or Ctrl-C.

    .venv/bin/python bench/throughput.py            # full run, a few minutes on 2 cores
    .venv/bin/python bench/throughput.py --quick    # smoke run, under a minute
"""

import argparse
import contextlib
import os
import pathlib
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import psycopg2
import redis
import sqlalchemy as sa

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `app`, `processors` and `celeryconfig`, imported where used

PG_ADMIN = "postgresql://root@127.0.0.1:5432/postgres"
REDIS_HOST = "redis://127.0.0.1:6379"
RAW_QUEUE = "raw"
RAW_DONE = "bench:raw:done"
POLL_SECONDS = 0.02
CLAIM_SAMPLES = 300
CLAIM_WARMUP = 20

# Targets: (label, ratio key, comparison, bound).
TARGETS = [
    ("end-to-end throughput, Conveyor / raw Celery", "e2e", ">=", 1.2),
    ("drain rate, Conveyor / raw Celery", "drain", ">=", 2.0),
    ("single submits, Conveyor / raw Celery apply_async", "enqueue", ">=", 0.6),
    ("batch submits (1000 a batch), Conveyor / raw apply_async", "batch_enqueue", ">=", 1.0),
    ("enqueue-to-start p50, Conveyor / raw Celery", "p50", "<=", 3.0),
    ("claim latency, {large:,} / {small:,} finished, retention running", "claim", "<=", 1.1),
]

# The raw Celery baseline, written to a temporary directory and run with `celery -A`.
RAW_APP = f'''"""Raw Celery baseline for bench/throughput.py: Conveyor's settings, a trivial task."""
import os
import time

import celery
import redis

import celeryconfig

app = celery.Celery("bench_raw", set_as_current=False)
app.config_from_object(celeryconfig)
app.conf.broker_url = os.environ["BENCH_BROKER_URL"]
app.conf.task_default_queue = "{RAW_QUEUE}"
_client = {{}}


def _redis():
    # One connection per pool process, made after the fork.
    if os.getpid() not in _client:
        _client[os.getpid()] = redis.Redis.from_url(os.environ["BENCH_BROKER_URL"])
    return _client[os.getpid()]


@app.task(name="bench.noop")
def noop(started_key=None):
    if started_key:
        _redis().rpush(started_key, time.time())
    _redis().incr("{RAW_DONE}")
'''


# --- environment -----------------------------------------------------------------------------


def machine() -> list[str]:
    """Describe the machine: cores, CPU, PostgreSQL and Redis versions."""
    cpuinfo = pathlib.Path("/proc/cpuinfo").read_text().splitlines()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
        platform.processor() or "unknown",
    )
    with contextlib.closing(psycopg2.connect(PG_ADMIN)) as connection, connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg_version = cursor.fetchone()[0]
    redis_version = redis.Redis.from_url(REDIS_HOST).info("server")["redis_version"]
    return [
        f"nproc: {os.cpu_count()}",
        f"CPU: {model}",
        f"PostgreSQL: {pg_version}",
        f"Redis: {redis_version}",
        f"Python: {platform.python_version()}",
        load_average(),
    ]


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    return "load average: " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def free_redis_db() -> int:
    """Return the highest-numbered empty Redis db."""
    for number in range(15, 0, -1):
        if redis.Redis.from_url(f"{REDIS_HOST}/{number}").dbsize() == 0:
            return number
    raise SystemExit("no empty Redis db among 1-15; pass --redis-db")


@contextlib.contextmanager
def throwaway_database(name: str):
    """Create database `name`, yield its URL, and drop it (closing its connections) at the end."""
    admin = psycopg2.connect(PG_ADMIN)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql://root@127.0.0.1:5432/{name}"
    finally:
        with INTERRUPTS.deferred(), admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@contextlib.contextmanager
def owned_redis_db(number: int):
    """Yield a client of Redis db `number`, which must be empty; empty it again at the end."""
    client = redis.Redis.from_url(f"{REDIS_HOST}/{number}")
    if client.dbsize():
        raise SystemExit(f"Redis db {number} is not empty; pick another with --redis-db")
    try:
        yield client
    finally:
        with INTERRUPTS.deferred():
            client.flushdb()


class Interrupts:
    """SIGINT raises KeyboardInterrupt and SIGTERM SystemExit, so cleanup in `finally` blocks
    runs; inside `deferred()` (starting a process and registering its stop, or cleaning up)
    a signal is held and raised when the block ends."""

    def __init__(self):
        self.depth = 0
        self.pending: list[int] = []

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.depth:
            self.pending.append(signum)
        else:
            self._raise(signum)

    @staticmethod
    def _raise(signum: int) -> None:
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    @contextlib.contextmanager
    def deferred(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            if not self.depth and self.pending:
                self._raise(self.pending.pop(0))


INTERRUPTS = Interrupts()


# --- worker processes ------------------------------------------------------------------------


class Worker:
    """A worker command run as a subprocess in its own process group (leader and pool children)."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: pathlib.Path):
        self.name = name
        self.log = log_dir / f"{name}.log"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, *args], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def check(self) -> None:
        """Raise if the worker exited."""
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} worker exited with code {self.process.returncode}; see {self.log}")

    def stop(self) -> None:
        """Warm shutdown (SIGTERM to the group), then SIGKILL whatever is left of the group."""
        pgid = self.process.pid
        with INTERRUPTS.deferred():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)


@contextlib.contextmanager
def running(worker_factory):
    """Start a worker; always stop it on leaving, even if a signal came while it started."""
    with contextlib.ExitStack() as stack:
        with INTERRUPTS.deferred():
            worker = worker_factory()
            stack.callback(worker.stop)
        yield worker


def wait_until(predicate, what: str, timeout: float, worker: Worker | None = None) -> float:
    """Poll `predicate` until true; return perf_counter then. Raise after `timeout` seconds."""
    deadline = time.perf_counter() + timeout
    while not predicate():
        if worker is not None:
            worker.check()
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(POLL_SECONDS)
    return time.perf_counter()


def drain_rate(count, target: int, timeout: float, worker: Worker) -> float:
    """Tasks/s from the first completion seen until `count()` reaches `target`."""
    wait_until(lambda: count() > 0, "the first completion", timeout, worker)
    first_seen, done_then = time.perf_counter(), count()
    finished = wait_until(lambda: count() >= target, f"{target} completions", timeout, worker)
    return (target - done_then) / max(finished - first_seen, 1e-9)


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


# --- raw Celery ------------------------------------------------------------------------------


class RawCelery:
    """The raw Celery baseline: its app module, worker, and counters in Redis."""

    def __init__(self, broker_url: str, client: redis.Redis, tmp: pathlib.Path, concurrency: int):
        (tmp / "bench_raw.py").write_text(RAW_APP)
        self.env = {**os.environ, "BENCH_BROKER_URL": broker_url, "PYTHONPATH": f"{tmp}{os.pathsep}{REPO}"}
        os.environ["BENCH_BROKER_URL"] = broker_url
        sys.path.insert(0, str(tmp))
        import bench_raw

        self.task = bench_raw.noop
        self.redis, self.tmp, self.concurrency = client, tmp, concurrency

    def worker(self) -> Worker:
        return Worker(
            "raw-celery",
            [
                "-m",
                "celery",
                "-A",
                "bench_raw",
                "worker",
                "-P",
                "prefork",
                "-c",
                str(self.concurrency),
                "-Q",
                RAW_QUEUE,
                "-n",
                f"raw-{os.getpid()}@%h",
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            self.env,
            self.tmp,
        )

    def done(self) -> int:
        return int(self.redis.get(RAW_DONE) or 0)

    def reset(self) -> None:
        self.redis.delete(RAW_DONE)

    def submit(self, n: int) -> float:
        """Send n tasks; return the seconds it took."""
        start = time.perf_counter()
        for _ in range(n):
            self.task.apply_async()
        return time.perf_counter() - start

    def start_latencies(self, samples: int, worker: Worker) -> list[float]:
        """Send one task at a time to idle workers; return each enqueue-to-start delay (s)."""
        key = f"bench:raw:started:{uuid.uuid4()}"
        delays = []
        for _ in range(samples):
            expected = self.done() + 1
            sent = time.time()
            self.task.apply_async(args=[key])
            popped = self.redis.blpop([key], timeout=30)
            if popped is None:
                worker.check()
                raise TimeoutError("raw Celery task did not start within 30s")
            delays.append(float(popped[1]) - sent)
            wait_until(lambda expected=expected: self.done() >= expected, "a raw task to finish", 30, worker)
        return delays


# --- Conveyor --------------------------------------------------------------------------------


class Conveyor:
    """Conveyor with the `noop` type: the Flask app in this process, workers as subprocesses."""

    def __init__(self, database_url: str, broker_url: str, tmp: pathlib.Path, concurrency: int):
        from app import create_app

        settings = {"DATABASE_URL": database_url, "BROKER_URL": broker_url, "CONVEYOR_VAR_DIR": str(tmp / "var")}
        self.env = {**os.environ, **settings, "PYTHONPATH": str(REPO)}
        self.app = create_app(settings)
        self.tmp, self.concurrency = tmp, concurrency
        self.context = self.app.app_context()
        self.context.push()
        from flask_migrate import upgrade

        from app.services import accounts

        upgrade()
        self.account_id = accounts.local().id

    def close(self) -> None:
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()
        self.context.pop()

    def worker(self) -> Worker:
        return Worker(
            "conveyor",
            [
                "-m",
                "app.cli",
                "worker",
                "--pool",
                "cpu",
                "--concurrency",
                str(self.concurrency),
                "--loglevel",
                "WARNING",
            ],
            self.env,
            self.tmp,
        )

    def execute(self, statement: str, **params):
        from app.extensions import db

        result = db.session.execute(sa.text(statement), params)
        db.session.commit()
        return result

    def done(self) -> int:
        return self.execute("SELECT count(*) FROM tasks WHERE status = 'succeeded'").scalar_one()

    def reset(self) -> None:
        self.execute("TRUNCATE tasks, task_events, artifacts")

    def submit(self, n: int) -> float:
        """Submit n noop tasks through the service; return the seconds it took."""
        from app.services import tasks

        start = time.perf_counter()
        for _ in range(n):
            tasks.submit("noop", {}, account_id=self.account_id)
        return time.perf_counter() - start

    def submit_batches(self, n: int) -> float:
        """Submit n noop tasks in batches of 1000 through the service `POST /api/tasks/batch`
        calls; return the seconds it took."""
        from app.services import batches

        start = time.perf_counter()
        for first in range(0, n, batches.BATCH_MAX):
            size = min(batches.BATCH_MAX, n - first)
            batches.submit([{"type": "noop", "params": {}}] * size, account_id=self.account_id)
        return time.perf_counter() - start

    def start_latencies(self, samples: int, worker: Worker) -> list[float]:
        """Submit one task at a time to idle workers; return each `started_at - created_at` (s)."""
        from app.services import tasks

        delays = []
        for _ in range(samples):
            task, _created = tasks.submit("noop", {}, account_id=self.account_id)
            wait_until(
                lambda task_id=task.id: self.status(task_id) == "succeeded", "a Conveyor task to finish", 30, worker
            )
            row = self.execute("SELECT created_at, started_at FROM tasks WHERE id = :id", id=task.id).one()
            delays.append((row.started_at - row.created_at).total_seconds())
        return delays

    def status(self, task_id: uuid.UUID) -> str:
        return self.execute("SELECT status FROM tasks WHERE id = :id", id=task_id).scalar_one()

    # claim latency

    def sweeper(self) -> Worker:
        """The sweeper, deleting finished tasks past their keep time every second."""
        env = {**self.env, "CONVEYOR_RETENTION_SECONDS": "1"}
        return Worker("sweeper", ["-m", "app.cli", "sweeper"], env, self.tmp)

    def expired(self) -> int:
        """Succeeded tasks past the default 7-day retention (read on ix_tasks_succeeded)."""
        statement = (
            "SELECT count(*) FROM tasks WHERE status = 'succeeded' AND type = 'noop'"
            " AND finished_at < now() - interval '7 days'"
        )
        return self.execute(statement).scalar_one()

    def insert_tasks(self, n: int, status: str, days_ago: int = 0) -> None:
        """Insert n noop rows with `status` in one INSERT ... SELECT generate_series; finished
        ones `days_ago` days ago."""
        finished = f"now() - interval '{int(days_ago)} days'" if status == "succeeded" else "NULL"
        self.execute(
            f"""
            INSERT INTO tasks (id, type, pool, status, priority, params, result, attempt, max_attempts, run_at,
                               progress, account_id, created_at, updated_at, started_at, finished_at)
            SELECT gen_random_uuid(), 'noop', 'cpu', :status, 2, '{{}}'::jsonb, NULL, 0, 1,
                   now() - interval '1 day' + i * interval '1 microsecond', 0, :account,
                   now() - interval '1 day' + i * interval '1 microsecond', now(), NULL, {finished}
            FROM generate_series(1, :n) AS i""",
            status=status,
            account=self.account_id,
            n=n,
        )

    def settle(self) -> None:
        """After a bulk insert: vacuum and fresh statistics (the steady state autovacuum keeps a
        table of finished tasks in; otherwise autovacuum starts on the new rows in the middle of
        the timings), then a checkpoint, so the insert's write-back does not land in them."""
        from app.extensions import db

        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM (ANALYZE) tasks"))
            connection.execute(sa.text("CHECKPOINT"))

    def claim_latency(self) -> float:
        """Median seconds of `lifecycle.claim` over CLAIM_SAMPLES claims of queued rows, run as a
        worker runs it: the prepared statement on an autocommit connection (its own commit)."""
        from app.queue import lifecycle

        engine = self.app.extensions["conveyor"].autocommit_engine
        self.insert_tasks(CLAIM_WARMUP + CLAIM_SAMPLES, "queued")
        timings = []
        with engine.connect() as connection:
            for _ in range(CLAIM_WARMUP + CLAIM_SAMPLES):
                start = time.perf_counter()
                row = lifecycle.claim(connection, "cpu", 60, "bench")
                timings.append(time.perf_counter() - start)
                if row is None:
                    raise RuntimeError("claim found no queued task")
        self.execute(
            "UPDATE tasks SET status = 'succeeded', finished_at = now(), lease_until = NULL WHERE status = 'running'"
        )
        return statistics.median(timings[CLAIM_WARMUP:])


# --- the measurements ------------------------------------------------------------------------


def throughput(system, n: int, samples: int, timeout: float) -> dict:
    """Enqueue, drain, latency and end-to-end figures of one system (Conveyor or raw Celery)."""
    system.reset()
    figures = {}
    if hasattr(system, "submit_batches"):  # batch submits: Conveyor's, against raw apply_async
        figures["batch_enqueue"] = n / system.submit_batches(n)
        system.reset()
    figures["enqueue"] = n / system.submit(n)
    with running(system.worker) as worker:
        figures["drain"] = drain_rate(system.done, n, timeout, worker)
        delays = system.start_latencies(samples, worker)
        figures["p50"], figures["p99"] = percentile(delays, 50), percentile(delays, 99)
        system.reset()
        start = time.perf_counter()
        system.submit(n)
        finished = wait_until(lambda: system.done() >= n, f"{n} end-to-end completions", timeout, worker)
        figures["e2e"] = n / (finished - start)
    return figures


def claim_figures(conveyor: Conveyor, small: int, large: int, timeout: float) -> dict:
    """Median claim latency with `small` succeeded tasks, then with `large` of which a tenth
    ended 8 days ago, past the 7-day retention, timed while a sweeper deletes those. The
    sweeper runs for both figures (idle for the first, as in production)."""
    conveyor.reset()
    conveyor.insert_tasks(small, "succeeded")
    conveyor.settle()
    with running(conveyor.sweeper):
        figures = {"claim_small": conveyor.claim_latency()}
    expired = large // 10
    start = time.perf_counter()
    conveyor.insert_tasks(expired, "succeeded", days_ago=8)
    conveyor.insert_tasks(large - expired - conveyor.done(), "succeeded")
    figures["insert_seconds"] = time.perf_counter() - start
    conveyor.settle()
    with running(conveyor.sweeper) as sweeper:
        began = wait_until(lambda: conveyor.expired() < expired, "the sweeper to start deleting", timeout, sweeper)
        figures["expired_before"] = conveyor.expired()
        figures["claim_large"] = conveyor.claim_latency()
        figures["expired_after"] = conveyor.expired()
        ended = wait_until(lambda: conveyor.expired() == 0, "the sweeper to delete the expired tasks", 3600, sweeper)
        figures["retention_rate"] = expired / max(ended - began, 1e-9)
    return figures


def report(conveyor: dict | None, raw: dict | None, claims: dict, small: int, large: int) -> None:
    """Print every figure, every ratio, and each target with PASS/MISS (rates skipped when
    only the claim was measured)."""
    ratios = rate_ratios(conveyor, raw) if conveyor and raw else {}
    ratios["claim"] = claims["claim_large"] / claims["claim_small"]
    print(f"\nclaim latency, median of {CLAIM_SAMPLES} (prepared claim, autocommit, as a worker runs it):")
    print(f"  with {small:>10,} finished tasks: {claims['claim_small'] * 1000:8.3f} ms")
    print(f"  with {large:>10,} finished tasks: {claims['claim_large'] * 1000:8.3f} ms, retention running")
    print(
        f"  (bulk insert took {claims['insert_seconds']:.1f} s; {large // 10:,} of them past retention: the sweeper"
        f" deleted them at {claims['retention_rate']:,.0f} tasks/s, {claims['expired_before']:,} left when the"
        f" claims began, {claims['expired_after']:,} when they ended)"
    )
    print(f"  ratio {large:,} / {small:,}: {ratios['claim']:.2f}x")
    print("\ntargets:")
    for label, key, op, bound in TARGETS:
        if key not in ratios:
            continue
        ok = ratios[key] >= bound if op == ">=" else ratios[key] <= bound
        label = label.format(large=large, small=small)
        print(f"  {label:<64} {ratios[key]:6.2f}x  target {op} {bound:g}x  {'PASS' if ok else 'MISS'}")


def rate_ratios(conveyor: dict, raw: dict) -> dict:
    """Print the rate and latency figures side by side; return their ratios."""
    rows = [
        ("enqueue rate (tasks/s)", "enqueue", 1),
        ("drain rate (tasks/s)", "drain", 1),
        ("end-to-end rate (tasks/s)", "e2e", 1),
        ("enqueue-to-start p50 (ms)", "p50", 1000),
        ("enqueue-to-start p99 (ms)", "p99", 1000),
    ]
    print(f"\n{'figure':<30}{'Conveyor':>12}{'raw Celery':>12}{'Conveyor/raw':>14}")
    ratios = {}
    for label, key, scale in rows:
        ratios[key] = conveyor[key] / raw[key]
        print(f"{label:<30}{conveyor[key] * scale:>12.1f}{raw[key] * scale:>12.1f}{ratios[key]:>13.2f}x")
    # Raw Celery has no batch submit: its side is the same apply_async loop.
    ratios["batch_enqueue"] = conveyor["batch_enqueue"] / raw["enqueue"]
    label = "batch enqueue (tasks/s)"
    print(f"{label:<30}{conveyor['batch_enqueue']:>12.1f}{raw['enqueue']:>12.1f}{ratios['batch_enqueue']:>13.2f}x")
    return ratios


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=None, help="N tasks per rate figure (default 4000; --quick 200)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes per system (default 2)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 200 tasks, 30 latency samples, claim at 10k vs 100k finished"
    )
    parser.add_argument(
        "--claim-only", action="store_true", help="only the claim latency figures (10k vs 10M finished)"
    )
    parser.add_argument("--redis-db", type=int, default=None, help="an empty Redis db (default: highest empty one)")
    args = parser.parse_args()
    args.tasks = args.tasks or (200 if args.quick else 4000)
    args.samples = 30 if args.quick else 300
    args.large = 100_000 if args.quick else 10_000_000
    return args


def main() -> None:
    args = parse_args()
    INTERRUPTS.install()
    print("machine:\n  " + "\n  ".join(machine()))
    redis_db = args.redis_db if args.redis_db is not None else free_redis_db()
    print(
        f"run: {args.tasks} tasks per rate figure, {args.samples} latency samples, concurrency {args.concurrency}, "
        f"prefork pool, Redis db {redis_db}"
    )
    broker_url = f"{REDIS_HOST}/{redis_db}"
    timeout = 120 + args.tasks / 10
    with contextlib.ExitStack() as stack:
        tmp = pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="conveyor-bench-")))
        client = stack.enter_context(owned_redis_db(redis_db))
        database_url = stack.enter_context(throwaway_database(f"conveyor_bench_{os.getpid()}"))
        conveyor = Conveyor(database_url, broker_url, tmp, args.concurrency)
        stack.callback(conveyor.close)
        raw = RawCelery(broker_url, client, tmp, args.concurrency)
        started = time.perf_counter()
        raw_figures = conveyor_figures = None
        if not args.claim_only:
            raw_figures = throughput(raw, args.tasks, args.samples, timeout)
            print(f"raw Celery done ({time.perf_counter() - started:.0f} s)", flush=True)
            conveyor_figures = throughput(conveyor, args.tasks, args.samples, timeout)
            print(f"Conveyor done ({time.perf_counter() - started:.0f} s)", flush=True)
        claims = claim_figures(conveyor, 10_000, args.large, timeout)
        print(f"claim latency done ({time.perf_counter() - started:.0f} s)", flush=True)
        report(conveyor_figures, raw_figures, claims, 10_000, args.large)
    print(f"\nend of run, {load_average()}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; workers stopped, database dropped")
