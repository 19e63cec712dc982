"""`syncd verify` figures, side by side with a full load of the same table in the same round.

Creates a MariaDB table of N rows (BIGINT key, VARCHAR, DECIMAL, INT, TEXT,
DATETIME(6), as bench_load.py), then measures:
  - `syncd run` full load MariaDB -> PostgreSQL (the yardstick),
  - `syncd verify` of the identical tables (target: under 20% of the full load),
  - 100 scattered differences made at the source with the cursor left unchanged
    (updated, deleted and inserted rows: no incremental run can see them), then
    `syncd verify --repair` finding and repairing them (target: under 30%),
  - the peak memory of each `syncd` process (target: under 150 MB),
  - in the first round, what one pass of checksums over the identical tables costs each
    database alone, for verify's exact row text, the columns' plain text and the key
    alone (``verify_floor.py``): the least a verify of identical tables can take here.

Usage: python bench/bench_verify.py [--rows 1000000] [--rounds 1] [--prefix NAME]
                                     [--baseline CHECKOUT]
(several rounds: each its own full load; the median of each round's ratio is printed too;
--baseline: each verify case is also run with the syncd of another checkout, in the same
round, on the same tables, the order of the two alternating from round to round)
Needs the local MariaDB (root, no password) and PostgreSQL (postgres, trust).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from verify_floor import passes

PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
MY_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/"
NAME = "syncd_bench_verify"
DIFFERENCES = 100


def admin(url: str, *sql: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for statement in sql:
            conn.exec_driver_sql(statement)
    engine.dispose()


def make_source(rows: int, name: str) -> str:
    admin(MY_ADMIN, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
    url = f"mysql+pymysql://root@127.0.0.1:3306/{name}"
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


def scattered(rows: int, count: int, offset: int) -> list[int]:
    """``count`` keys spread over the table."""
    step = rows // (count + 1)
    return [step * (i + 1) + offset for i in range(count)]


def syncd(env: dict[str, str], *args: str, ok: tuple[int, ...] = (0,)) -> tuple[float, int, str]:
    """Run syncd; return wall seconds, peak RSS (KiB) of that process alone, stdout."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "syncd", *args], env=env,
                            cwd=env["SYNCD_VAR_DIR"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if code not in ok:
        raise SystemExit(f"syncd {' '.join(args)} exited {code}:\n{out}\n{err}")
    return elapsed, usage.ru_maxrss, out


def last_run(env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-m", "syncd", "history", "--json", "--limit", "1"],
                         env=env, cwd=env["SYNCD_VAR_DIR"], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)[0]  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds of load + verify + repair (the source is built once)")
    parser.add_argument("--prefix", default=NAME,
                        help="name of the source database (the local one: PREFIX_local)")
    parser.add_argument("--baseline", metavar="CHECKOUT",
                        help="also run each verify case with the syncd of this checkout")
    args = parser.parse_args()
    codes = {"": str(Path(__file__).resolve().parents[1])}
    if args.baseline:
        codes[" [baseline]"] = str(Path(args.baseline).resolve())
    work = Path(tempfile.mkdtemp(prefix="syncd-bench-verify-"))
    print(f"creating {args.rows:,} source rows in MariaDB ...", flush=True)
    source = make_source(args.rows, args.prefix)
    third = DIFFERENCES // 3
    keys = {"inserted": scattered(args.rows, third, 1),  # removed now, inserted after the load
            "updated": scattered(args.rows, third, 2),
            "deleted": scattered(args.rows, DIFFERENCES - 2 * third, 3)}
    admin(source, f"CREATE TABLE late AS SELECT * FROM orders WHERE id IN {_in(keys['inserted'])}",
          f"DELETE FROM orders WHERE id IN {_in(keys['inserted'])}",
          "CREATE TABLE original AS SELECT * FROM orders WHERE id IN "
          f"{_in(keys['updated'] + keys['deleted'])}")
    floor: list[tuple[str, float, float]] = []
    rounds = [one_round(source, work / f"round{i}", keys, args.prefix,
                        dict(reversed(codes.items())) if i % 2 else codes, None if i else floor)
              for i in range(args.rounds)]
    for i, results in enumerate(rounds, 1):
        print(f"\nround {i} of {len(rounds)} (load average at its end {results[-1]})")
        show(results[:-1])
    if len(rounds) > 1:
        print(f"\nmedian of {len(rounds)} rounds (ratio: median of each round's own ratio)")
        cases = [{row[0]: row for row in r[:-1]} for r in rounds]
        show([(label, statistics.median(c[label][1] for c in cases),
               statistics.median(c[label][2] for c in cases), row[3],
               statistics.median(c[label][1] / r[0][1] for c, r in zip(cases, rounds)))
              for label, row in cases[0].items()])
    show_floor(floor, rounds[0][0][1])
    admin(MY_ADMIN, f"DROP DATABASE IF EXISTS {args.prefix}")


def _in(ids: list[int]) -> str:
    return f"({', '.join(map(str, ids))})"


def one_round(source: str, work: Path, keys: dict[str, list[int]], name: str,
              codes: dict[str, str], floor: list[Any] | None = None) -> list[Any]:
    """Full load, verify, the differences, verify --repair; the source restored after.

    ``codes``: the checkouts whose syncd runs the verify cases, by label suffix (the first
    one runs the load); each repair starts from the same local rows. ``floor``: filled
    with ``verify_floor.passes`` on the identical tables.
    """
    admin(PG_ADMIN, f"DROP DATABASE IF EXISTS {name}_local WITH (FORCE)",
          f"CREATE DATABASE {name}_local")
    local = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}_local"
    work.mkdir(parents=True)
    jobs = work / "jobs.toml"
    jobs.write_text(f'[sources.bench]\nurl = "{source}"\n\n[[jobs]]\nname = "orders"\n'
                    f'source = "bench"\ntable = "orders"\ncursor = "updated_at"\n')
    (work / "var").mkdir()
    envs = {suffix: dict(os.environ, SYNCD_DATABASE_URL=local, SYNCD_JOBS_FILE=str(jobs),
                         SYNCD_VAR_DIR=str(work / "var"), PYTHONPATH=code)
            for suffix, code in codes.items()}
    env = next(iter(envs.values()))
    syncd(env, "db", "upgrade")
    _, peak, _ = syncd(env, "run", "orders")
    results: list[Any] = [("syncd run: full load MariaDB -> PostgreSQL",
                           float(last_run(env)["duration_s"]), peak, "")]  # type: ignore[arg-type]
    for suffix, one in envs.items():
        results.append(verify_case(one, f"syncd verify: identical tables{suffix}"))
    if floor is not None:
        floor += passes(source, local)
    admin(source, "UPDATE orders SET note = CONCAT(IFNULL(note, ''), ' changed'), qty = -qty "
                  f"WHERE id IN {_in(keys['updated'])}",
          f"DELETE FROM orders WHERE id IN {_in(keys['deleted'])}",
          "INSERT INTO orders SELECT * FROM late")
    syncd(env, "run", "orders")  # the cursor did not move: it sees nothing
    incremental = last_run(env)
    print(f"incremental run after the differences: read {incremental['rows_read']}, "
          f"inserted {incremental['rows_inserted']}, updated {incremental['rows_updated']}")
    changed = _in(sum(keys.values(), []))
    admin(local, f"CREATE TABLE bench_before AS SELECT * FROM orders WHERE id IN {changed}")
    for n, (suffix, one) in enumerate(envs.items()):
        if n:  # the local rows as they were before the first repair
            admin(local, f"DELETE FROM orders WHERE id IN {changed}",
                  "INSERT INTO orders SELECT * FROM bench_before")
        results.append(verify_case(one, f"syncd verify --repair: {DIFFERENCES} differences"
                                   f"{suffix}", "--repair"))
    syncd(env, "verify", "orders")
    after = last_run(env)
    print(f"verify after the repair: {after['status']}, {after['rows_different']} different")
    admin(source, f"DELETE FROM orders WHERE id IN {_in(sum(keys.values(), []))}",
          "INSERT INTO orders SELECT * FROM original")
    admin(PG_ADMIN, f"DROP DATABASE IF EXISTS {name}_local WITH (FORCE)")
    results.append(round(os.getloadavg()[0], 1))
    return results


def verify_case(env: dict[str, str], label: str, *flags: str) -> tuple[str, float, int, str]:
    _, peak, _ = syncd(env, "verify", "orders", *flags, ok=(0, 1))
    run = last_run(env)
    found = run["verify"]
    notes = f"{run['rows_compared']:,} rows" if not flags else (
        f"{run['rows_different']} found, {run['rows_repaired']} repaired")
    notes += (f", {found['segments']} segments, "  # type: ignore[index]
              f"{found['segments_row_by_row']} row by row")  # type: ignore[index]
    return label, float(run["duration_s"]), peak, notes  # type: ignore[arg-type]


def show(results: list[Any]) -> None:
    load = results[0][1]
    print(f"{'case':<46} {'seconds':>8} {'vs load':>8} {'peak RSS':>10}  notes")
    for label, seconds, peak_kib, notes, *ratio in results:
        share = ratio[0] if ratio else seconds / load
        print(f"{label:<46} {seconds:8.2f} {share:7.0%} {peak_kib / 1024:7.0f} MiB  {notes}")


def show_floor(floor: list[tuple[str, float, float]], load: float) -> None:
    print("\none pass of checksums over the identical tables, each database alone "
          "(first round):")
    print(f"{'row text':<40} {'MariaDB':>8} {'Postgres':>9} {'both, 2 cores':>14} {'vs load':>8}")
    for label, mariadb, postgres in floor:
        both = (mariadb + postgres) / 2
        print(f"{label:<40} {mariadb:8.2f} {postgres:9.2f} {both:14.2f} {both / load:7.0%}")


if __name__ == "__main__":
    main()
