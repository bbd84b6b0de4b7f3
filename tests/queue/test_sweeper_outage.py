"""While its database is away the sweeper keeps trying, at most about a second apart, so the
first round after an outage (and the rescue of every lease that expired in it) is not a long
backoff late. Run against a real PostgreSQL URL on a port where nothing listens."""

import itertools
import logging
import threading
import time

import sqlalchemy as sa
from sqlalchemy import orm

from app.queue import health, sweeper
from tests.commands import free_port

INTERVAL = 0.2
WATCHED = 6.0  # long enough for a backoff doubling past 1 s (0.2, 0.4, 0.8, 1.6, 3.2) to show


def test_a_failing_sweeper_tries_again_at_least_every_second(tmp_path, caplog):
    url = f"postgresql+psycopg2://conveyor@127.0.0.1:{free_port()}/gone"
    engine = sa.create_engine(url, connect_args={"connect_timeout": 2})
    stop = threading.Event()
    args = (orm.sessionmaker(bind=engine), engine, str(tmp_path), None, None, None, 0, INTERVAL)
    thread = threading.Thread(target=sweeper.loop, args=args, kwargs={"should_stop": stop.is_set}, daemon=True)
    with caplog.at_level(logging.INFO, logger="conveyor.sweeper"):
        thread.start()
        time.sleep(WATCHED)
        serving, why = health.check(str(tmp_path), sweeper.ROLE)
        stop.set()
        thread.join(timeout=5)
    engine.dispose()

    tries = [r.created for r in caplog.records if r.getMessage().startswith("sweep failed")]
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(tries)]
    print(f"\nfailed rounds in {WATCHED:g} s: {len(tries)}; gaps between tries (s): {gaps}")
    assert not thread.is_alive(), "the sweeper did not stop when asked"
    assert len(tries) >= WATCHED, f"only {len(tries)} tries in {WATCHED:g} s"
    assert max(gaps) <= sweeper.MAX_BACKOFF_SECONDS + 0.3, gaps
    # Within its 20 s grace a retrying sweeper still counts as serving, and says it is retrying.
    assert serving and "(retrying," in why, why
