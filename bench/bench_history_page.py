"""Benchmark: the job page's first page of history with 100,000 runs of one job.

    .venv/bin/python bench/bench_history_page.py [--runs 100000] [--local-url URL]

Creates a throw-away local database (SQLite under a temp dir by default; pass
``--local-url`` for PostgreSQL or MySQL, it must be an empty database), inserts
the runs (one in ten failed, mixed triggers), updates the planner's statistics
(PostgreSQL's autovacuum does that by itself; without them PostgreSQL sorts all
of the job's runs for each page), logs in through the login form
and times requests through Flask's test client (server-side time: query and
render, no network). Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "benchmark password"
TRIGGERS = ("schedule", "schedule", "schedule", "manual", "api", "cli")


def insert_runs(state: object, job: str, count: int, chunk: int = 10_000) -> None:
    """``count`` finished runs of ``job``, one a minute, oldest first."""
    from sqlalchemy import insert

    from syncd.models import SyncRun

    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    for start in range(0, count, chunk):
        rows = []
        for i in range(start, min(start + chunk, count)):
            queued = t0 + timedelta(minutes=i)
            failed = i % 10 == 9
            rows.append({
                "job": job, "trigger": TRIGGERS[i % len(TRIGGERS)],
                "status": "failed" if failed else "succeeded", "full_refresh": i % 500 == 0,
                "queued_at": queued, "started_at": queued + timedelta(seconds=1),
                "finished_at": queued + timedelta(seconds=2 + i % 40),
                "rows_read": 0 if failed else 1000 + i % 777, "rows_inserted": i % 50,
                "rows_updated": i % 300, "rows_deleted": 0, "attempts": 1,
                "error": "source unreachable: connection refused" if failed else None,
                "started_by": "beat" if i % 6 < 3 else "alice",
            })
        with state.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(insert(SyncRun), rows)


def analyze(state: object) -> None:
    """Update the planner's statistics, as autovacuum (PostgreSQL) would after a bulk insert."""
    from sqlalchemy import text

    engine = state.engine  # type: ignore[attr-defined]
    statement = {"sqlite": "ANALYZE", "postgresql": "ANALYZE syncd_runs",
                 "mysql": "ANALYZE TABLE syncd_runs"}.get(engine.dialect.name)
    if statement:
        with engine.begin() as conn:
            conn.execute(text(statement))


def timed(client: object, path: str, repeat: int) -> tuple[float, float, int]:
    """(first, median of the rest) in milliseconds, and the page size in bytes."""
    times = []
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)  # type: ignore[attr-defined]
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
        size = len(response.data)
    return times[0], statistics.median(times[1:] or times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--local-url", default=None)
    args = parser.parse_args()

    from config import Config
    from syncd import create_app, get_state
    from syncd.db import upgrade
    from syncd.web.accounts import create_user

    tmp = Path(tempfile.mkdtemp(prefix="syncd-bench-"))
    local_url = args.local_url or f"sqlite:///{tmp / 'local.sqlite'}"
    jobs = tmp / "jobs.toml"
    jobs.write_text(f'[sources.src]\nurl = "sqlite:///{tmp / "source.sqlite"}"\n\n'
                    '[[jobs]]\nname = "orders"\nsource = "src"\ntable = "orders"\n'
                    'mode = "incremental"\ncursor = "updated_at"\nschedule = "1m"\n')
    env = {"SYNCD_DATABASE_URL": local_url, "SYNCD_JOBS_FILE": str(jobs),
           "SYNCD_VAR_DIR": str(tmp / "var"),
           "CELERY_BROKER_URL": f"sqla+sqlite:///{tmp / 'broker.sqlite'}"}
    app = create_app(Config(environ=env))
    state = get_state(app)
    upgrade(state.engine)
    create_user(state, "alice", PASSWORD, "operator")

    started = time.perf_counter()
    insert_runs(state, "orders", args.runs)
    print(f"inserted {args.runs:,} runs of one job into {state.engine.dialect.name} "
          f"in {time.perf_counter() - started:.1f}s")
    analyze(state)

    client = app.test_client()
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"',
                      client.get("/login").get_data(as_text=True))
    assert found, "no CSRF token on the login page"
    token = found.group(1)
    response = client.post("/login", data={"username": "alice", "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 303, response.status_code

    middle = args.runs // 2
    cases = [
        ("job page, first page (50 newest runs + chart)", "/jobs/orders"),
        ("job page, status=failed", "/jobs/orders?status=failed"),
        ("job page, trigger=manual", "/jobs/orders?trigger=manual"),
        ("job page, status=failed&trigger=api", "/jobs/orders?status=failed&trigger=api"),
        (f"job page, deep page (before={middle:,})", f"/jobs/orders?before={middle}"),
        ("dashboard", "/"),
        ("/metrics (the first scrape reads the whole history)", "/metrics"),
    ]
    print(f"{'request':<50} {'first ms':>9} {'median ms':>10} {'bytes':>8}")
    for label, path in cases:
        first, median, size = timed(client, path, args.repeat)
        print(f"{label:<50} {first:>9.1f} {median:>10.1f} {size:>8,}")
    state.dispose()


if __name__ == "__main__":
    main()
