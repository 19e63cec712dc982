"""Full-load and incremental figures of syncd, side by side with a plain COPY.

Creates a MariaDB table of N rows (BIGINT key, VARCHAR, DECIMAL, INT, TEXT,
DATETIME(6)), then measures in one round:
  - COPY of the same rows from a TSV file into PostgreSQL (the yardstick),
  - `syncd run` full load MariaDB -> PostgreSQL and MariaDB -> SQLite
    (rows/s, ratio to COPY, peak memory of the syncd process),
  - an incremental `syncd run` that finds 1,000 changed rows.

Usage: python bench/bench_load.py [--rows 1000000]
Needs the local MariaDB (root, no password) and PostgreSQL (postgres, trust).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
MY_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/"
NAME = "syncd_bench"


def admin(url: str, *sql: str, autocommit: bool = True) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT" if autocommit else None)
    with engine.connect() as conn:
        for statement in sql:
            conn.exec_driver_sql(statement)
    engine.dispose()


def make_source(rows: int) -> str:
    admin(MY_ADMIN, f"DROP DATABASE IF EXISTS {NAME}", f"CREATE DATABASE {NAME}")
    url = f"mysql+pymysql://root@127.0.0.1:3306/{NAME}"
    admin(url,
          "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer VARCHAR(100), "
          "amount DECIMAL(12,4), qty INT, note TEXT, updated_at DATETIME(6), "
          "KEY ix_orders_updated_at_id (updated_at, id))",
          "INSERT INTO orders SELECT seq, CONCAT('customer ', MOD(seq, 97)), "
          "MOD(seq * 7919, 10000000) / 10000, MOD(seq, 500), "
          "IF(MOD(seq, 7) = 0, NULL, CONCAT('note for order ', seq, ' with some text')), "
          "TIMESTAMP('2026-01-01 00:00:00') + INTERVAL (seq DIV 3) SECOND "
          f"+ INTERVAL MOD(seq, 1000) MICROSECOND FROM seq_1_to_{rows}")
    return url


def copy_baseline(rows: int) -> float:
    """Seconds to COPY the rows from a TSV file into an empty PostgreSQL table."""
    tsv = Path(tempfile.mkdtemp()) / "orders.tsv"
    with tsv.open("w") as out:
        subprocess.run(["mariadb", "-h127.0.0.1", "-uroot", "--batch", "--skip-column-names",
                        "-e", "SELECT id, customer, amount, qty, IFNULL(note, '\\\\N'), "
                        f"updated_at FROM {NAME}.orders"], stdout=out, check=True)
    admin(PG_ADMIN, f"DROP DATABASE IF EXISTS {NAME}_copy WITH (FORCE)",
          f"CREATE DATABASE {NAME}_copy")
    engine = sa.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{NAME}_copy")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer VARCHAR(100), "
            "amount NUMERIC(12,4), qty INT, note TEXT, updated_at TIMESTAMP(6))")
    raw = engine.raw_connection()
    started = time.perf_counter()
    with raw.cursor() as cur, tsv.open() as data:
        cur.copy_expert("COPY orders FROM STDIN", data)
    raw.commit()
    elapsed = time.perf_counter() - started
    raw.close()
    engine.dispose()
    admin(PG_ADMIN, f"DROP DATABASE {NAME}_copy WITH (FORCE)")
    tsv.unlink()
    return elapsed


def syncd(env: dict[str, str], *args: str) -> tuple[float, int, str]:
    """Run syncd; return wall seconds, peak RSS (KiB) of that process alone, stdout."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "syncd", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"syncd {' '.join(args)} failed:\n{out}\n{err}")
    return elapsed, usage.ru_maxrss, out


def last_run(env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-m", "syncd", "history", "--json", "--limit", "1"],
                         env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="syncd-bench-"))
    print(f"creating {args.rows:,} source rows in MariaDB ...", flush=True)
    source = make_source(args.rows)
    copy_s = copy_baseline(args.rows)
    copy_rate = args.rows / copy_s
    results = [("COPY from a TSV file into PostgreSQL", copy_s, None, None)]

    admin(PG_ADMIN, f"DROP DATABASE IF EXISTS {NAME}_local WITH (FORCE)",
          f"CREATE DATABASE {NAME}_local")
    locals_ = {
        "postgresql": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{NAME}_local",
        "sqlite": f"sqlite:///{work / 'local.sqlite'}",
    }
    jobs = work / "jobs.toml"
    jobs.write_text(f'[sources.bench]\nurl = "{source}"\n\n[[jobs]]\nname = "orders"\n'
                    f'source = "bench"\ntable = "orders"\ncursor = "updated_at"\n'
                    f"batch_size = {args.batch_size}\n")
    incremental = None
    for kind, url in locals_.items():
        env = dict(os.environ, SYNCD_DATABASE_URL=url, SYNCD_JOBS_FILE=str(jobs),
                   SYNCD_VAR_DIR=str(work / f"var-{kind}"))
        syncd(env, "db", "upgrade")
        wall, peak, _ = syncd(env, "run", "orders")
        run = last_run(env)
        results.append((f"syncd full load MariaDB -> {kind}", float(run["duration_s"]),  # type: ignore[arg-type]
                        peak, wall))
        if kind == "postgresql":
            admin(source, "UPDATE orders SET qty = qty + 1, updated_at = NOW(6) "
                          "WHERE MOD(id, 1000) = 0")
            wall, peak, _ = syncd(env, "run", "orders")
            run = last_run(env)
            incremental = (run, wall)
    print()
    print(f"{'case':<44} {'seconds':>8} {'rows/s':>10} {'vs COPY':>8} {'peak RSS':>10}")
    for label, seconds, peak, _wall in results:
        rate = args.rows / seconds
        mem = f"{peak / 1024:.0f} MiB" if peak else "-"
        print(f"{label:<44} {seconds:8.2f} {rate:10,.0f} {rate / copy_rate:7.2f}x {mem:>10}")
    if incremental:
        run, wall = incremental
        print(f"\nincremental run finding {run['rows_updated']} changed rows of {args.rows:,}: "
              f"{float(run['duration_s']) * 1000:.0f} ms in the run "  # type: ignore[arg-type]
              f"({wall:.2f} s for the whole `syncd run` command, Python start-up included); "
              f"rows read {run['rows_read']}")
    admin(PG_ADMIN, f"DROP DATABASE IF EXISTS {NAME}_local WITH (FORCE)")
    admin(MY_ADMIN, f"DROP DATABASE IF EXISTS {NAME}")


if __name__ == "__main__":
    main()
