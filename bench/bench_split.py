"""Split full loads: how a MariaDB -> PostgreSQL full load scales with worker processes.

    .venv/bin/python bench/bench_split.py                 # 1,000,000 and 4,000,000 rows
    .venv/bin/python bench/bench_split.py --rows 1000000  # one size only
    .venv/bin/python bench/bench_split.py --workers 1,2,4

Each case is ``syncd run JOB --full-refresh --jobs N`` (the ranges in N local processes,
the same range code a Celery worker runs; N = 1 is today's single reader). For each it
prints the wall time, the rate, the speed-up over one process, and where the CPU time
went: syncd's processes (the command and its range processes: getrusage of the
children), the source server and the local server (the CPU of their sessions on the bench
databases: see ``Sessions``), so other work on the machine is left out of all three.
"cores busy" is their sum over the wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from benchlib import MY, PG, execute, scalar  # noqa: E402
from cases import ORDERS_DDL, orders_insert  # noqa: E402

DB = "syncd_bench_split"
PROJECT = BENCH.parent
TICKS = os.sysconf("SC_CLK_TCK")


def server_pid(pattern: str) -> int:
    out = subprocess.run(["pgrep", "-o", "-f", pattern], capture_output=True, text=True)
    return int(out.stdout.split()[0])


def prepare(rows: int) -> None:
    execute(PG + "postgres", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)",
            f"CREATE DATABASE {DB}")
    execute(MY, f"DROP DATABASE IF EXISTS {DB}", f"CREATE DATABASE {DB}")
    source = MY + DB
    execute(source, ORDERS_DDL.format(table="orders"))
    for start in range(1, rows + 1, 500_000):
        execute(source, orders_insert("orders", start, min(start + 499_999, rows)))
    execute(source, "ANALYZE TABLE orders")


def jobs_file(tmp: Path, rows: int) -> Path:
    path = tmp / "jobs.toml"
    path.write_text(f'[sources.src]\nurl = "{MY}{DB}"\n\n[[jobs]]\nname = "orders"\n'
                    'source = "src"\ntable = "orders"\nmode = "full"\n'
                    f"split_rows = {max(2, rows // 4)}\n")  # 8 ranges: 2 per process at 4
    return path


class Sessions(threading.Thread):
    """CPU of the servers' sessions on the bench databases, sampled every 0.1 s from /proc
    while they live: PostgreSQL backends (pg_stat_activity's pid, all their CPU) and
    MariaDB connection threads (information_schema.PROCESSLIST's TID, their CPU from the
    first sample on: MariaDB reuses threads). A session's last 0.1 s is missed."""

    def __init__(self, my_pid: int) -> None:
        super().__init__(daemon=True)
        self.my_pid = my_pid
        self.pg: dict[int, float] = {}
        self.my_first: dict[tuple[int, int], float] = {}
        self.my_last: dict[tuple[int, int], float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        pg = sa.create_engine(PG + "postgres", poolclass=sa.pool.NullPool)
        my = sa.create_engine(MY, poolclass=sa.pool.NullPool)
        with pg.connect() as pg_conn, my.connect() as my_conn:
            while not self.stop.is_set():
                self._sample(pg_conn, my_conn)
                self.stop.wait(0.1)
        pg.dispose()
        my.dispose()

    def _sample(self, pg_conn: sa.Connection, my_conn: sa.Connection) -> None:
        pids = pg_conn.exec_driver_sql(
            f"SELECT pid FROM pg_stat_activity WHERE datname = '{DB}'").scalars().all()
        pg_conn.rollback()
        for pid in pids:
            used = _cpu_or_none(f"/proc/{pid}/stat")
            if used is not None:
                self.pg[pid] = used
        threads = my_conn.exec_driver_sql(
            f"SELECT ID, TID FROM information_schema.PROCESSLIST WHERE DB = '{DB}'").all()
        my_conn.rollback()
        for conn_id, tid in threads:
            used = _cpu_or_none(f"/proc/{self.my_pid}/task/{tid}/stat")
            if used is not None:
                self.my_first.setdefault((conn_id, tid), used)
                self.my_last[(conn_id, tid)] = used

    def local(self) -> float:
        return sum(self.pg.values())

    def source(self) -> float:
        return sum(last - self.my_first[key] for key, last in self.my_last.items())


def _cpu_or_none(path: str) -> float | None:
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def measure(env: dict[str, str], workers: int) -> dict[str, float]:
    # every case is a first load: no old table to count the new one against
    execute(PG + DB, "DROP TABLE IF EXISTS orders", "DROP TABLE IF EXISTS orders__syncd_staging",
            "DELETE FROM syncd_checkpoints")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sessions = Sessions(server_pid("mariadbd"))
    sessions.start()
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "syncd", "run", "orders", "--full-refresh",
                    "--jobs", str(workers)], env=env, cwd=PROJECT, check=True,
                   capture_output=True)
    wall = time.monotonic() - start
    sessions.stop.set()
    sessions.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": wall,
            "python": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "source": sessions.source(), "local": sessions.local()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="1000000,4000000")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    args = parser.parse_args()
    sizes = [int(r) for r in args.rows.split(",")]
    counts = [int(w) for w in args.workers.split(",")]
    print(f"{'rows':>10} {'procs':>5} {'wall s':>8} {'rows/s':>9} {'speed-up':>8} "
          f"{'python cpu s':>12} {'source cpu s':>12} {'local cpu s':>11} {'cores busy':>10}")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")},
               "SYNCD_DATABASE_URL": f"{PG}{DB}", "SYNCD_VAR_DIR": str(tmp / "var")}
        for rows in sizes:
            prepare(rows)
            env["SYNCD_JOBS_FILE"] = str(jobs_file(tmp, rows))
            subprocess.run([sys.executable, "-m", "syncd", "db", "upgrade"], env=env,
                           cwd=PROJECT, check=True, capture_output=True)
            first = None
            for workers in counts:
                m = measure(env, workers)
                loaded = scalar(f"{PG}{DB}", "SELECT COUNT(*) FROM orders")
                assert loaded == rows, f"{loaded} rows loaded of {rows}"
                first = first or m["wall"]
                busy = (m["python"] + m["source"] + m["local"]) / m["wall"]
                print(f"{rows:>10,} {workers:>5} {m['wall']:>8.1f} {rows / m['wall']:>9,.0f} "
                      f"{first / m['wall']:>7.2f}x {m['python']:>12.1f} {m['source']:>12.1f} "
                      f"{m['local']:>11.1f} {busy:>10.2f}", flush=True)
    if not args.keep:
        execute(PG + "postgres", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        execute(MY, f"DROP DATABASE IF EXISTS {DB}")


if __name__ == "__main__":
    main()
