"""Split full loads: how a MariaDB -> PostgreSQL full load scales with worker processes.

    .venv/bin/python bench/bench_split.py                 # 1,000,000 and 4,000,000 rows
    .venv/bin/python bench/bench_split.py --rows 1000000  # one size only
    .venv/bin/python bench/bench_split.py --workers 1,2,4

Each case is ``syncd run JOB --full-refresh --jobs N`` (the ranges in N local processes,
the same range code a Celery worker runs; N = 1 is today's single reader). For each it
prints the wall time, the rate, the speed-up over one process, and where the CPU time
went: syncd's processes (the command and its range processes, from getrusage of the
children), the source server (mariadbd) and the local server (the postmaster with its
reaped backends), read from /proc/<pid>/stat before and after. The servers are shared
with whatever else runs on the machine: their figures include it.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def cpu_seconds(pid: int, children: bool) -> float:
    """utime + stime of ``pid`` (+ its reaped children's), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    used = int(fields[11]) + int(fields[12])
    if children:
        used += int(fields[13]) + int(fields[14])
    return used / TICKS


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
                    f"split_rows = {max(2, rows // 8)}\n")  # 16 ranges: 4 per process at 4
    return path


def measure(env: dict[str, str], workers: int) -> dict[str, float]:
    my_pid, pg_pid = server_pid("mariadbd"), server_pid("postgresql/15/main")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    my0, pg0 = cpu_seconds(my_pid, False), cpu_seconds(pg_pid, True)
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "syncd", "run", "orders", "--full-refresh",
                    "--jobs", str(workers)], env=env, cwd=PROJECT, check=True,
                   capture_output=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": wall,
            "python": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "source": cpu_seconds(my_pid, False) - my0,
            "local": cpu_seconds(pg_pid, True) - pg0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="1000000,4000000")
    parser.add_argument("--workers", default="1,2,4")
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
    execute(PG + "postgres", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    execute(MY, f"DROP DATABASE IF EXISTS {DB}")


if __name__ == "__main__":
    main()
