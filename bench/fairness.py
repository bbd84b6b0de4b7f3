"""Fair share under a flood: real workers on PostgreSQL, two accounts, fairness on and off.

Account A submits N `sleep` tasks of 50 ms (default 2,000), then account B submits 20. For
each mode (`CONVEYOR_FAIR_SHARE` 1, then 0: first come, first served) it measures:

- B's wait (`started_at - created_at` of each of its tasks), p50 and max, during A's flood,
  against B's wait with no flood (B's 20 tasks alone, workers idle);
- A's throughput (tasks/s from its first start to its last finish) with B, against A alone;

and, with fairness on, the claim latency (`lifecycle.claim` + commit, median, as a worker runs
it) with 10 thousand and 1 million succeeded tasks in the table and waiting tasks of 10
accounts at their fair places, against the same claim with every place 0 (fairness off). The
submit's cost (enqueue rate with no worker) is printed for both modes too.

Targets: B's wait p50 with the flood <= 3x its no-flood wait; A loses < 10% throughput; the
claim at 1M <= 1.2x the claim at 10k, and within 1.3x of the claim without fairness.

It makes a throwaway database `conveyor_fair_<pid>`, an empty Redis db (the highest free one
unless --redis-db), runs a worker (prefork, --concurrency processes) and the sweeper as
subprocesses, and stops them, drops the database and empties the Redis db at the end.

    .venv/bin/python bench/fairness.py            # full run, several minutes on 2 cores
    .venv/bin/python bench/fairness.py --quick    # smoke run: 200 tasks, claim at 10k vs 100k
"""

import argparse
import contextlib
import os
import pathlib
import statistics
import sys
import tempfile
import time
import uuid

import sqlalchemy as sa
import throughput  # bench/ is this script's folder: the database, Redis and process helpers

TASK_SECONDS = 0.05
B_TASKS = 20
ACCOUNTS_WAITING = 10  # accounts with waiting tasks in the claim-latency table
TARGETS = [
    ("B's wait p50, flood / no flood", "b_wait", "<=", 3.0),
    ("A's throughput, with B / alone", "a_share", ">=", 0.9),
    ("claim latency, {large:,} / {small:,} finished (fair)", "claim_history", "<=", 1.2),
    ("claim latency at {large:,}, fair / first come", "claim_fair", "<=", 1.3),
]


class Platform:
    """Conveyor in one fairness mode: the app in this process, a worker and the sweeper as
    subprocesses, accounts A and B."""

    def __init__(self, database_url: str, broker_url: str, tmp: pathlib.Path, concurrency: int, fair: bool):
        from app import create_app

        settings = {
            "DATABASE_URL": database_url,
            "BROKER_URL": broker_url,
            "CONVEYOR_VAR_DIR": str(tmp / "var"),
            "CONVEYOR_FAIR_SHARE": str(int(fair)),
            "CONVEYOR_PLUGINS": "0",
        }
        self.env = {**os.environ, **settings, "PYTHONPATH": str(throughput.REPO)}
        self.app = create_app(settings)
        self.tmp, self.concurrency, self.fair = tmp, concurrency, fair
        self.context = self.app.app_context()
        self.context.push()
        from flask_migrate import upgrade

        upgrade()
        self.a, self.b = self.account("a"), self.account("b")

    def account(self, name: str) -> uuid.UUID:
        from app.services import accounts

        found = accounts.by_name(name)
        return (found or accounts.create_account(name)).id

    def close(self) -> None:
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()
        self.context.pop()

    def worker(self) -> throughput.Worker:
        args = ["-m", "app.cli", "worker", "--pool", "cpu", "--concurrency", str(self.concurrency)]
        return throughput.Worker("worker", [*args, "--loglevel", "WARNING"], self.env, self.tmp)

    def sweeper(self) -> throughput.Worker:
        return throughput.Worker("sweeper", ["-m", "app.cli", "sweeper"], self.env, self.tmp)

    def execute(self, statement: str, **params):
        from app.extensions import db

        result = db.session.execute(sa.text(statement), params)
        db.session.commit()
        return result

    def reset(self) -> None:
        self.execute("TRUNCATE tasks, task_events, artifacts, pool_clocks")

    def submit(self, account: uuid.UUID, n: int, seconds: float = TASK_SECONDS) -> float:
        """Submit n sleep tasks for `account` through the service; return the seconds it took."""
        from app.services import tasks

        start = time.perf_counter()
        for _ in range(n):
            tasks.submit("sleep", {"seconds": seconds}, account_id=account)
        return time.perf_counter() - start

    def unfinished(self) -> int:
        return self.execute("SELECT count(*) FROM tasks WHERE status IN ('queued', 'running')").scalar_one()

    def waits(self, account: uuid.UUID) -> list[float]:
        """Each task's `started_at - created_at` of `account`, in seconds."""
        rows = self.execute(
            "SELECT extract(epoch FROM started_at - created_at) FROM tasks WHERE account_id = :a", a=account
        )
        return [float(value) for value in rows.scalars()]

    def rate(self, account: uuid.UUID) -> float:
        """Tasks/s of `account`, from its first start to its last finish."""
        row = self.execute(
            "SELECT count(*) AS n, extract(epoch FROM max(finished_at) - min(started_at)) AS span"
            " FROM tasks WHERE account_id = :a AND status = 'succeeded'",
            a=account,
        ).one()
        return row.n / float(row.span)


def drain(platform: Platform, timeout: float, *workers: throughput.Worker) -> None:
    def done() -> bool:
        for worker in workers:
            worker.check()
        return platform.unfinished() == 0

    throughput.wait_until(done, "every task to finish", timeout)


def flood_figures(platform: Platform, n: int, timeout: float) -> dict:
    """B alone, A alone, then A's flood with B's tasks after it; the waits and rates."""
    figures = {}
    platform.submit(platform.a, 200, 0.0)  # warm: connections, prepared statements, caches
    platform.reset()
    figures["enqueue"] = n / platform.submit(platform.a, n, 0.0)  # no worker runs yet
    platform.reset()
    with throughput.running(platform.worker) as worker, throughput.running(platform.sweeper) as sweeper:
        platform.submit(platform.a, 4 * platform.concurrency)  # every worker process is up and idle
        drain(platform, timeout, worker, sweeper)
        platform.reset()
        platform.submit(platform.b, B_TASKS)
        drain(platform, timeout, worker, sweeper)
        figures["b_alone"] = platform.waits(platform.b)
        platform.reset()
        platform.submit(platform.a, n)
        drain(platform, timeout, worker, sweeper)
        figures["a_alone"] = platform.rate(platform.a)
        platform.reset()
        platform.submit(platform.a, n)
        platform.submit(platform.b, B_TASKS)
        drain(platform, timeout, worker, sweeper)
        figures["b_flood"] = platform.waits(platform.b)
        figures["a_with_b"] = platform.rate(platform.a)
    return figures


# --- claim latency ---------------------------------------------------------------------------


def insert_tasks(platform: Platform, n: int, status: str, accounts: list[uuid.UUID]) -> None:
    """Insert n sleep rows with `status` (one INSERT ... SELECT), spread over `accounts` at
    interleaved fair places (all 0 when the platform is not fair)."""
    finished = "now()" if status == "succeeded" else "NULL"
    place = "(i / :accounts)::float8" if platform.fair else "0"
    platform.execute(
        f"""
        INSERT INTO tasks (id, type, pool, status, priority, effective_priority, fair_seq, params, attempt,
                           max_attempts, run_at, progress, account_id, created_at, updated_at, finished_at)
        SELECT gen_random_uuid(), 'sleep', 'cpu', :status, 2, 2, {place}, '{{"seconds": 0}}'::jsonb, 0, 1,
               now() - interval '1 day' + i * interval '1 microsecond', 0,
               (CAST(:ids AS uuid[]))[1 + i % :accounts],
               now() - interval '1 day' + i * interval '1 microsecond', now(), {finished}
        FROM generate_series(1, :n) AS i""",
        status=status,
        ids=[str(account) for account in accounts],
        accounts=len(accounts),
        n=n,
    )


def claim_latency(platform: Platform, accounts: list[uuid.UUID]) -> float:
    """Median seconds of the prepared claim on an autocommit connection, as a worker runs it,
    over waiting tasks of several accounts."""
    from app.queue import lifecycle

    samples, warmup = throughput.CLAIM_SAMPLES, throughput.CLAIM_WARMUP
    insert_tasks(platform, warmup + samples, "queued", accounts)
    engine = platform.app.extensions["conveyor"].autocommit_engine
    timings = []
    with engine.connect() as connection:
        for _ in range(warmup + samples):
            start = time.perf_counter()
            row = lifecycle.claim(connection, "cpu", 60, "bench")
            timings.append(time.perf_counter() - start)
            if row is None:
                raise RuntimeError("claim found no queued task")
    platform.execute(
        "UPDATE tasks SET status = 'succeeded', finished_at = now(), lease_until = NULL WHERE status = 'running'"
    )
    return statistics.median(timings[warmup:])


def settle(platform: Platform) -> None:
    """Vacuum, fresh statistics and a checkpoint after a bulk insert (see throughput.py)."""
    from app.extensions import db

    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM (ANALYZE) tasks"))
        connection.execute(sa.text("CHECKPOINT"))


def claim_figures(platform: Platform, small: int, large: int) -> dict:
    """Median claim latency with `small`, then `large`, succeeded tasks in the table."""
    accounts = [platform.account(f"claim-{number}") for number in range(ACCOUNTS_WAITING)]
    platform.reset()
    insert_tasks(platform, small, "succeeded", accounts)
    settle(platform)
    figures = {"small": claim_latency(platform, accounts)}
    insert_tasks(platform, large - small, "succeeded", accounts)
    settle(platform)
    figures["large"] = claim_latency(platform, accounts)
    return figures


# --- the report ------------------------------------------------------------------------------


def report(fair: dict, fifo: dict, claims: dict, small: int, large: int) -> None:
    """Print every figure, every ratio, and each target with PASS/MISS."""
    print(f"\n{'figure':<44}{'fair share':>12}{'first come':>12}")
    for label, show in (
        ("enqueue rate, no worker (tasks/s)", lambda f: f["enqueue"]),
        ("B's wait, no flood: p50 (ms)", lambda f: 1000 * statistics.median(f["b_alone"])),
        ("B's wait, no flood: max (ms)", lambda f: 1000 * max(f["b_alone"])),
        ("B's wait, after A's flood: p50 (ms)", lambda f: 1000 * statistics.median(f["b_flood"])),
        ("B's wait, after A's flood: max (ms)", lambda f: 1000 * max(f["b_flood"])),
        ("A's throughput alone (tasks/s)", lambda f: f["a_alone"]),
        ("A's throughput with B (tasks/s)", lambda f: f["a_with_b"]),
    ):
        print(f"{label:<44}{show(fair):>12.1f}{show(fifo):>12.1f}")
    ratios = {
        "b_wait": statistics.median(fair["b_flood"]) / statistics.median(fair["b_alone"]),
        "a_share": fair["a_with_b"] / fair["a_alone"],
        "claim_history": claims["fair"]["large"] / claims["fair"]["small"],
        "claim_fair": claims["fair"]["large"] / claims["fifo"]["large"],
    }
    print(
        f"\nfirst come, first served: B's wait p50 flood / no flood "
        f"{statistics.median(fifo['b_flood']) / statistics.median(fifo['b_alone']):.1f}x"
    )
    print(f"\nclaim latency, median of {throughput.CLAIM_SAMPLES} (prepared claim, autocommit, as a worker runs it):")
    for mode in ("fair", "fifo"):
        figures = claims[mode]
        print(
            f"  {mode:<5} with {small:>9,} succeeded: {figures['small'] * 1000:7.3f} ms;"
            f" with {large:>9,}: {figures['large'] * 1000:7.3f} ms"
        )
    print("\ntargets:")
    for label, key, op, bound in TARGETS:
        ok = ratios[key] >= bound if op == ">=" else ratios[key] <= bound
        label = label.format(large=large, small=small)
        print(f"  {label:<52} {ratios[key]:6.2f}x  target {op} {bound:g}x  {'PASS' if ok else 'MISS'}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=None, help="A's flood (default 2000; --quick 200)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 tasks, claim at 10k vs 100k finished")
    parser.add_argument("--redis-db", type=int, default=None, help="an empty Redis db (default: highest empty one)")
    args = parser.parse_args()
    args.tasks = args.tasks or (200 if args.quick else 2000)
    args.large = 100_000 if args.quick else 1_000_000
    return args


def main() -> None:
    args = parse_args()
    throughput.INTERRUPTS.install()
    print("machine:\n  " + "\n  ".join(throughput.machine()))
    redis_db = args.redis_db if args.redis_db is not None else throughput.free_redis_db()
    print(
        f"run: A floods {args.tasks} tasks of {TASK_SECONDS * 1000:g} ms, B submits {B_TASKS} after;"
        f" concurrency {args.concurrency}, Redis db {redis_db}"
    )
    broker_url = f"{throughput.REDIS_HOST}/{redis_db}"
    timeout = 120 + args.tasks * TASK_SECONDS
    figures, claims = {}, {}
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        tmp = pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="conveyor-fair-")))
        stack.enter_context(throughput.owned_redis_db(redis_db))
        database_url = stack.enter_context(throughput.throwaway_database(f"conveyor_fair_{os.getpid()}"))
        for mode, fair in (("fair", True), ("fifo", False)):
            platform = Platform(database_url, broker_url, tmp, args.concurrency, fair)
            try:
                figures[mode] = flood_figures(platform, args.tasks, timeout)
                print(f"{mode}: flood done ({time.perf_counter() - started:.0f} s)", flush=True)
                claims[mode] = claim_figures(platform, 10_000, args.large)
                print(f"{mode}: claim latency done ({time.perf_counter() - started:.0f} s)", flush=True)
            finally:
                platform.close()
        report(figures["fair"], figures["fifo"], claims, 10_000, args.large)
    print(f"\nend of run, {throughput.load_average()}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; workers stopped, database dropped")
