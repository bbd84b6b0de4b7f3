"""`POST /api/tasks` under gunicorn on PostgreSQL, against a minimal Flask endpoint that
inserts one row with the same stack (the ceiling), in one run, at 16 concurrent clients.

Both servers run with the same gunicorn settings (`gunicorn.conf.py`, gthread, 2 workers x 8
threads by default: the production command in the Dockerfile) on the same throwaway
PostgreSQL database:

- Conveyor: the real app (`app:create_app()`), with a member's API key, submitting
  `{"type": "noop", "params": {}}`: bearer-key lookup, marshmallow validation, the task row and
  its event, the wake-up (a NOTIFY to a stand-in idle worker, or with `--no-waiter` a Celery
  message through Redis), position and ETA in the answer. No Celery worker runs: the tasks stay
  queued, which does not matter to the API.
- the ceiling: `bench/minimal_app.py`, Flask-SQLAlchemy with Conveyor's engine options, one
  endpoint that parses the JSON body, inserts one row (ORM add and commit) and answers 202.

The load is 16 client processes (not threads: a thread pool would share one GIL with its own
timing), each with one keep-alive `http.client` connection, each sending its next request as
soon as the last answer came (a closed loop). After a warm-up, the measured requests are split
into rounds that alternate between the two servers, so a burst of other work on the shared
machine lands on both. Every answer must be a 202; any other fails the run.

Targets: Conveyor's throughput at least 0.7x the ceiling's, and its p99 at most 25 ms, checked
in a later fixed-rate phase at half the ceiling's throughput (16 clients on a schedule,
alternating rounds too): with 16 clients in a closed loop the mean latency is 16 /
throughput, and the ceiling's own p99 there is 30-60 ms on 2 cores (docs/benchmarks.md).

It makes a database `conveyor_api_bench_<pid>` and uses Redis db 12 (emptied at start and
end), runs each gunicorn in its own process group, and at the end stops them, drops the
database and empties the Redis db, also on errors, Ctrl-C or SIGTERM.

    .venv/bin/python bench/api.py                    # 4000 requests per server, about a minute
    .venv/bin/python bench/api.py --requests 800     # smoke run
"""

import argparse
import atexit
import collections
import contextlib
import http.client
import json
import multiprocessing
import os
import pathlib
import queue
import select
import socket
import sys
import tempfile
import threading
import time

import throughput  # bench/ is this script's folder: the database, Redis and process helpers

REPO = throughput.REPO
BENCH = pathlib.Path(__file__).resolve().parent
CLIENT_SETUP_REQUESTS = 2  # per client and phase, unmeasured: opens the keep-alive connection
START_TIMEOUT = 60
PHASE_TIMEOUT = 600
TARGET_RATIO = 0.7
TARGET_P99_MS = 25.0
READ_SECONDS = 0.2  # how often the stand-in waiting worker reads its notices
PACED_FRACTION = 0.5  # the fixed-rate phase runs at this share of the ceiling's throughput
SERVERS = ("minimal", "conveyor")
STARTED: list[throughput.Worker] = []


class Failed(Exception):
    """The run cannot give figures: a wrong answer, a client that failed, a server that died."""


# --- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    """Return a TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gunicorn(name: str, factory: str, env: dict, log_dir: pathlib.Path, workers: int, threads: int):
    """Return a starter of gunicorn serving `factory`, for `throughput.running`."""
    port = free_port()
    args = ["-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py"), "-k", "gthread"]
    args += ["-w", str(workers), "--threads", str(threads)]
    args += ["-b", f"127.0.0.1:{port}", "--log-level", "warning", factory]

    def start() -> throughput.Worker:
        server = throughput.Worker(name, args, env, log_dir)
        server.port = port
        STARTED.append(server)
        return server

    return start


def wait_ready(server: throughput.Worker) -> None:
    """Wait until the server answers HTTP (any status) or its process exits."""

    def answers() -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            connection.request("GET", "/health")
            connection.getresponse().read()
            return True
        except OSError:
            return False
        finally:
            connection.close()

    throughput.wait_until(answers, f"{server.name} to answer", START_TIMEOUT, server)


@atexit.register
def stop_all() -> None:
    """Stop any gunicorn still running: a last resort after the `finally` blocks."""
    for server in STARTED:
        if server.process.poll() is None:
            server.stop()


# --- the database ----------------------------------------------------------------------------


def prepare(database_url: str, broker_url: str, var_dir: pathlib.Path) -> str:
    """Migrate the database, make the ceiling's table and a member's key; return the key."""
    import minimal_app
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db
    from app.services import accounts

    app = create_app({"DATABASE_URL": database_url, "BROKER_URL": broker_url, "CONVEYOR_VAR_DIR": str(var_dir)})
    with app.app_context():
        upgrade()
        db.session.execute(throughput.sa.text(minimal_app.TABLE_SQL))
        db.session.commit()
        accounts.create_account("bench")
        accounts.create_user("bench", "client", "member")
        _key, plain = accounts.create_key("bench", "client", "api bench")
        db.session.remove()
        db.engine.dispose()
    return plain


def count_rows(database) -> dict:
    """Rows written: tasks and their events (Conveyor), bench_rows (the ceiling)."""
    counts = {}
    with database.cursor() as cursor:
        for table in ("tasks", "task_events", "bench_rows"):
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
    return counts


# --- the load --------------------------------------------------------------------------------


def client(port: int, request: tuple, setup: int, count: int, barrier, results, interval=0.0, offset=0.0) -> None:
    """One client process: `setup` unmeasured requests, wait for the others, then `count`
    timed requests on one keep-alive connection; put its figures (or its failure) on `results`.

    With `interval` 0 each request goes as soon as the last answer came (a closed loop). Else
    request k is due `offset + k * interval` s after the start (a fixed rate), and its latency
    counts from when it was due, so a request held up by a slow one is not timed as if sent on
    time."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    statuses: collections.Counter = collections.Counter()
    sample, latencies = "", []
    try:
        for _ in range(setup):
            send(connection, request)
        barrier.wait(timeout=START_TIMEOUT)
        cpu, start = time.process_time(), time.perf_counter()
        for k in range(count):
            began = time.perf_counter()
            if interval:
                began = start + offset + k * interval
                time.sleep(max(0.0, began - time.perf_counter()))
            status, body = send(connection, request)
            latencies.append(time.perf_counter() - began)
            statuses[status] += 1
            if status != 202 and not sample:
                sample = f"{status}: {body[:300]!r}"
        end, cpu = time.perf_counter(), time.process_time() - cpu
    except Exception as exc:  # reported to the parent, which fails the run with it
        results.put({"failure": f"{type(exc).__name__}: {exc}"})
        return
    finally:
        connection.close()
    report = {"latencies": latencies, "statuses": dict(statuses), "sample": sample}
    results.put({**report, "start": start, "end": end, "cpu": cpu})


def send(connection: http.client.HTTPConnection, request: tuple) -> tuple[int, bytes]:
    """Send one request on the connection; return the status and body."""
    path, body, headers = request
    connection.request("POST", path, body, headers)
    response = connection.getresponse()
    return response.status, response.read()


def phase(
    port: int, request: tuple, clients: int, total: int, setup: int = CLIENT_SETUP_REQUESTS, rate: float = 0.0
) -> dict:
    """Run `total` requests from `clients` client processes, each in a closed loop, or together
    at `rate` requests/s (staggered); return the merged figures."""
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(clients), context.Queue()
    shares = split(total, clients)
    interval = clients / rate if rate else 0.0
    processes = [
        context.Process(
            target=client,
            args=(port, request, setup, share, barrier, results, interval, i / rate if rate else 0.0),
            daemon=True,
        )
        for i, share in enumerate(shares)
    ]
    try:
        for process in processes:
            process.start()
        return merge(collect(results, processes))
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join(timeout=10)


def collect(results, processes: list) -> list[dict]:
    """Read one report per client process; raise if one died without reporting."""
    reports, deadline = [], time.monotonic() + PHASE_TIMEOUT
    while len(reports) < len(processes):
        try:
            reports.append(results.get(timeout=1))
        except queue.Empty:
            if all(process.exitcode is not None for process in processes) and results.empty():
                missing = len(processes) - len(reports)
                raise Failed(f"{missing} client process(es) died without a report") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"clients still running after {PHASE_TIMEOUT} s") from None
    return reports


def merge(reports: list[dict]) -> dict:
    """Merge the clients' reports into one phase's figures; raise if a client failed."""
    failures = [report["failure"] for report in reports if "failure" in report]
    if failures:
        raise Failed(f"{len(failures)} client(s) failed, the first: {failures[0]}")
    statuses: collections.Counter = collections.Counter()
    for report in reports:
        statuses.update(report["statuses"])
    return {
        "latencies": [value for report in reports for value in report["latencies"]],
        "seconds": max(report["end"] for report in reports) - min(report["start"] for report in reports),
        "statuses": statuses,
        "sample": next((report["sample"] for report in reports if report["sample"]), ""),
        "client_cpu": sum(report["cpu"] for report in reports),
    }


# --- the run ---------------------------------------------------------------------------------


def requests_for(key: str) -> dict[str, tuple]:
    """The request each server gets: the same JSON body; Conveyor's with the bearer key."""
    body = json.dumps({"type": "noop", "params": {}}).encode()
    headers = {"Content-Type": "application/json"}
    return {
        "minimal": ("/rows", body, headers),
        "conveyor": ("/api/tasks", body, {**headers, "Authorization": f"Bearer {key}"}),
    }


def split(total: int, parts: int) -> list[int]:
    """`total` in `parts` shares that differ by at most one."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def turns(number: int) -> tuple[str, ...]:
    """The servers' order in round `number`: alternating (ABBA), so a burst of other work on
    the machine lands on both."""
    return SERVERS if number % 2 == 0 else SERVERS[::-1]


def measure(servers: dict, requests: dict, database, args: argparse.Namespace) -> dict[str, list[dict]]:
    """Warm both servers up, then run the measured closed-loop rounds."""
    for name in SERVERS:
        checked(name, phase(servers[name].port, requests[name], args.clients, args.warmup))
    print(f"warm-up done ({args.warmup} requests per server), {throughput.load_average()}", flush=True)
    return rounds(servers, requests, database, args, args.requests)


def measure_paced(servers: dict, requests: dict, database, rate: float, args: argparse.Namespace) -> dict[str, dict]:
    """Both servers at the same fixed rate from the same clients: latency below saturation."""
    paced = rounds(servers, requests, database, args, args.paced, rate)
    return {name: _joined(figures) for name, figures in paced.items()}


def rounds(servers: dict, requests: dict, database, args, total: int, rate: float = 0.0) -> dict[str, list[dict]]:
    """`total` requests per server in `args.rounds` rounds that alternate between the servers
    (`turns`), closed-loop or at `rate`; return each server's rounds with its usage in them."""
    measured: dict[str, list[dict]] = {name: [] for name in SERVERS}
    for number, size in enumerate(split(total, args.rounds)):
        for name in turns(number):
            before = usage(servers[name], database)
            figures = checked(name, phase(servers[name].port, requests[name], args.clients, size, rate=rate))
            figures.update({k: v - before[k] for k, v in usage(servers[name], database).items()})
            measured[name].append(figures)
            summary = summarize([figures])
            load = f"at {rate:6.1f} req/s" if rate else f"{summary['rate']:8.1f} req/s"
            print(
                f"  {'fixed rate' if rate else 'round'} {number + 1}/{args.rounds} {name:<9} {size:>6} requests "
                f"{load}  p50 {summary['p50']:6.2f} ms  p99 {summary['p99']:6.2f} ms",
                flush=True,
            )
    return measured


def _joined(rounds: list[dict]) -> dict:
    """One phase's figures from several rounds' (latencies together)."""
    return {
        "latencies": [value for figures in rounds for value in figures["latencies"]],
        "seconds": sum(figures["seconds"] for figures in rounds),
        "client_cpu": sum(figures["client_cpu"] for figures in rounds),
    }


def checked(name: str, figures: dict) -> dict:
    """Return the phase's figures; fail the run if any answer was not a 202."""
    wrong = sum(count for status, count in figures["statuses"].items() if status != 202)
    if wrong:
        total = figures["statuses"].total()
        raise Failed(f"{name}: {wrong} of {total} answers were not 202; the first: {figures['sample']}")
    return figures


def usage(server: throughput.Worker, database) -> dict[str, float]:
    """CPU seconds used so far by the server's processes (its process group: master and
    workers, every thread) and by PostgreSQL (all its processes: the server's sessions, the
    WAL writer, autovacuum; nothing else uses it during a phase), and the sessions the database
    has had (connections opened)."""
    with database.cursor() as cursor:
        cursor.execute(
            "SELECT sessions, (SELECT wal_sync FROM pg_stat_wal)"
            " FROM pg_stat_database WHERE datname = current_database()"
        )
        sessions, wal_syncs = cursor.fetchone()
        used = {"server_cpu": 0.0, "postgres_cpu": 0.0, "sessions": sessions, "wal_syncs": wal_syncs}
    for process in pathlib.Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            stat = (process / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) == server.process.pid:
                used["server_cpu"] += sum(on_cpu(thread) for thread in (process / "task").iterdir())
            elif stat[stat.index("(") + 1 : stat.rindex(")")] == "postgres":
                used["postgres_cpu"] += on_cpu(process)
    return used


def on_cpu(task: pathlib.Path) -> float:
    """Seconds a thread has run: schedstat counts nanoseconds (stat's utime and stime, 10 ms ticks)."""
    return int((task / "schedstat").read_text().split()[0]) / 1e9


def summarize(phases: list[dict]) -> dict:
    """Throughput, latency percentiles (ms) and CPU per request (ms) over some phases."""
    latencies = [value for figures in phases for value in figures["latencies"]]
    count = len(latencies)
    summary = {"requests": count, "rate": count / sum(figures["seconds"] for figures in phases)}
    for q in (50, 95, 99):
        summary[f"p{q}"] = throughput.percentile(latencies, q) * 1000
    summary["max"] = max(latencies) * 1000
    summary["client_cpu"] = sum(figures["client_cpu"] for figures in phases) / count * 1000
    summary["server_cpu"] = sum(figures.get("server_cpu", 0.0) for figures in phases) / count * 1000
    summary["postgres_cpu"] = sum(figures.get("postgres_cpu", 0.0) for figures in phases) / count * 1000
    summary["sessions"] = sum(figures.get("sessions", 0) for figures in phases)
    summary["wal_syncs"] = sum(figures.get("wal_syncs", 0) for figures in phases) / count
    return summary


def report(phases: dict[str, list[dict]], paced: dict[str, dict], rate: float, clients: int) -> bool:
    """Print each server's figures and the two targets; return whether both are met."""
    summaries = {name: summarize(phases[name]) for name in SERVERS}
    print("\nclosed loop (each client sends when its last answer came):")
    print(
        f"\n{'server':<10}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        "  CPU ms/request: gunicorn  PostgreSQL  client  WAL flushes/request  PG sessions opened"
    )
    for name, s in summaries.items():
        print(
            f"{name:<10}{s['requests']:>9}{s['rate']:>9.1f}{s['p50']:>9.2f}{s['p95']:>9.2f}{s['p99']:>9.2f}"
            f"{s['max']:>9.1f}{'':>17}{s['server_cpu']:>8.2f}{s['postgres_cpu']:>12.2f}{s['client_cpu']:>8.2f}"
            f"{s['wal_syncs']:>21.2f}{s['sessions']:>20}"
        )
    print(
        f"  (saturated: mean latency = {clients} clients / throughput, "
        + ", ".join(f"{name} {1000 * clients / s['rate']:.1f} ms" for name, s in summaries.items())
        + ")"
    )
    print(f"\nfixed rate, {rate:.1f} req/s from {clients} clients (half the ceiling's closed-loop throughput):")
    print(f"{'server':<10}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name in SERVERS:
        s = summarize([paced[name]])
        print(f"{name:<10}{s['requests']:>9}{s['p50']:>9.2f}{s['p95']:>9.2f}{s['p99']:>9.2f}{s['max']:>9.1f}")
    ratio = summaries["conveyor"]["rate"] / summaries["minimal"]["rate"]
    p99 = summarize([paced["conveyor"]])["p99"]
    ratio_ok, p99_ok = ratio >= TARGET_RATIO, p99 <= TARGET_P99_MS
    print(f"\nratio throughput conveyor/minimal = {ratio:.2f} (target >= {TARGET_RATIO:g}) {verdict(ratio_ok)}")
    print(f"p99 at the fixed rate = {p99:.1f} ms (target <= {TARGET_P99_MS:g}) {verdict(p99_ok)}")
    closed = summaries["conveyor"]["p99"]
    print(f"p99 in the closed loop = {closed:.1f} ms (target <= {TARGET_P99_MS:g}) {verdict(closed <= TARGET_P99_MS)}")
    return ratio_ok and p99_ok


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


@contextlib.contextmanager
def waiting_worker(database_url: str):
    """Stand in for an idle worker of the `cpu` pool: a session marked as waiting and listening
    on its channel, as `app.queue.listen.Listener` leaves one, whose notices a thread reads and
    drops. The API's side of a submit is then what it is in production with idle workers: one
    NOTIFY, no broker message. The worker's own claim is not the API's cost, and stays out."""
    from app.queue import listen

    connection = throughput.psycopg2.connect(database_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"LISTEN {listen.channel(connection.get_backend_pid())}")
        cursor.execute("SELECT set_config('application_name', %s, false)", (listen.mark("cpu"),))
    stop = threading.Event()
    received = []

    def read() -> None:
        # In batches, every READ_SECONDS: a real worker's reading is not the API's cost, and
        # this thread shares the machine with the servers.
        while not stop.wait(READ_SECONDS):
            if select.select([connection], [], [], 0)[0]:
                connection.poll()
                received.append(len(connection.notifies))
                del connection.notifies[:]
        connection.poll()
        received.append(len(connection.notifies))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield received
    finally:
        stop.set()
        reader.join(timeout=5)
        connection.close()


@contextlib.contextmanager
def emptied_redis_db(number: int):
    """Yield a client of Redis db `number`, emptied at the start and again at the end."""
    client = throughput.redis.Redis.from_url(f"{throughput.REDIS_HOST}/{number}")
    if client.dbsize():
        print(f"note: Redis db {number} held {client.dbsize()} keys; emptied")
    client.flushdb()
    try:
        yield client
    finally:
        with throughput.INTERRUPTS.deferred():
            client.flushdb()


def log_tails(servers: dict) -> str:
    """The last lines of each server's log, for an error message."""
    tails = []
    for server in servers.values():
        lines = server.log.read_text(errors="replace").splitlines()[-15:] if server.log.exists() else []
        tails.append(f"--- the end of {server.name}'s log ---\n" + ("\n".join(lines) or "(empty)"))
    return "\n".join(tails)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="measured requests per server (default 4000)")
    parser.add_argument("--warmup", type=int, default=800, help="unmeasured requests per server first (default 800)")
    parser.add_argument("--paced", type=int, default=2000, help="requests per server at the fixed rate (default 2000)")
    parser.add_argument("--rounds", type=int, default=4, help="measured rounds, alternating servers (default 4)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client processes (default 16)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server (default 2)")
    parser.add_argument("--threads", type=int, default=8, help="gthread threads per worker (default 8)")
    parser.add_argument(
        "--wake-ahead",
        type=int,
        default=10000,
        help="Conveyor's CONVEYOR_WAKE_AHEAD (default 10000: with no worker running, every submit "
        "still publishes its wake-up, as when workers keep up; 16, the app's default, stops "
        "publishing once 16 wait)",
    )
    parser.add_argument(
        "--no-waiter",
        dest="waiter",
        action="store_false",
        help="no idle worker waits on the pool: every submit publishes a Celery wake-up instead of a NOTIFY",
    )
    parser.add_argument("--redis-db", type=int, default=12, help="Redis db for the broker, emptied (default 12)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if args.requests < args.rounds * args.clients:
        parser.error("--requests must be at least --rounds x --clients")
    return args


def main() -> int:
    args = parse_args()
    throughput.INTERRUPTS.install()
    print("machine:\n  " + "\n  ".join(throughput.machine()), flush=True)
    print(
        f"run: {args.requests} measured requests per server in {args.rounds} alternating rounds, "
        f"{args.warmup} warm-up; {args.clients} client processes; gunicorn gthread {args.workers} workers x "
        f"{args.threads} threads for both; CONVEYOR_WAKE_AHEAD={args.wake_ahead}; Redis db {args.redis_db}; "
        + ("an idle worker waits on the pool (NOTIFY)" if args.waiter else "no worker waits (a wake-up per submit)"),
        flush=True,
    )
    with contextlib.ExitStack() as stack:
        tmp = pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="conveyor-api-bench-")))
        broker = stack.enter_context(emptied_redis_db(args.redis_db))
        database_url = stack.enter_context(throughput.throwaway_database(f"conveyor_api_bench_{os.getpid()}"))
        broker_url = f"{throughput.REDIS_HOST}/{args.redis_db}"
        key = prepare(database_url, broker_url, tmp / "var")
        database = stack.enter_context(contextlib.closing(throughput.psycopg2.connect(database_url)))
        database.autocommit = True
        settings = {"DATABASE_URL": database_url, "BROKER_URL": broker_url, "CONVEYOR_VAR_DIR": str(tmp / "var")}
        # One account sends every request: its rate limit and waiting quota (which the limiter
        # and the submit statement still check) are set out of the way.
        limits = {
            "CONVEYOR_SUBMIT_RATE": "1000000/second",
            "CONVEYOR_SUBMIT_BURST": "1000000",
            "CONVEYOR_ACCOUNT_MAX_WAITING": str(10**9),
        }
        env = {**os.environ, **settings, **limits, "CONVEYOR_WAKE_AHEAD": str(args.wake_ahead)}
        factories = {
            "minimal": ("minimal_app:create_app()", f"{BENCH}{os.pathsep}{REPO}"),
            "conveyor": ("app:create_app()", str(REPO)),
        }
        servers = {}
        for name, (factory, path) in factories.items():
            starter = gunicorn(name, factory, {**env, "PYTHONPATH": path}, tmp, args.workers, args.threads)
            servers[name] = stack.enter_context(throughput.running(starter))
        for server in servers.values():
            wait_ready(server)
        notices = stack.enter_context(waiting_worker(database_url)) if args.waiter else None
        try:
            phases = measure(servers, requests_for(key), database, args)
            rate = PACED_FRACTION * summarize(phases["minimal"])["rate"]
            paced = measure_paced(servers, requests_for(key), database, rate, args)
        except Exception:
            print(log_tails(servers), file=sys.stderr)
            raise
        rows, wakeups = count_rows(database), broker.llen("cpu")
        print(
            f"rows written: {rows['tasks']} tasks + {rows['task_events']} events (Conveyor), "
            f"{rows['bench_rows']} bench_rows (minimal); wake-ups waiting in Redis: {wakeups}"
            + ("" if notices is None else f"; notices to the waiting worker: {sum(notices)}")
        )
        met = report(phases, paced, rate, args.clients)
    print(f"\nend of run, {throughput.load_average()}")
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failed as exc:
        sys.exit(f"FAILED: {exc}")
    except KeyboardInterrupt:
        sys.exit("interrupted; servers stopped, database dropped")
