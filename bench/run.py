"""syncd against the local limit and the tools an operator would pick instead, in one run.

    .venv/bin/python bench/run.py              # 1,000,000 rows, 3 rounds (about an hour)
    .venv/bin/python bench/run.py --quick      # 20,000 rows, 1 round (a few minutes)
    .venv/bin/python bench/run.py --only "syncd full load (" --no-peers --rounds 1
                                               # the cases named so, with the limits

Needs the local PostgreSQL (postgres, trust) and MariaDB (root, no password), and the
clients psql, pg_dump, mariadb, mariadb-dump, sqlite3. pgloader (Debian package) and
dlt (PyPI, installed by this script into bench/.venv-dlt) are measured when they can
be had, else reported "not installed". Writes bench/results/latest.md and .json.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cases
from benchlib import MY, PG, Figure, drop_databases, execute
from report import targets, write_results

HERE = Path(__file__).resolve().parent


def database_names(prefix: str) -> tuple[str, str, str, str]:
    """The source, PostgreSQL source, local and peer databases of a run."""
    return f"{prefix}_src", f"{prefix}_pgsrc", f"{prefix}_local", f"{prefix}_peer"


def build_sources(n: int, wide_rows: int, blob_rows: int, work: Path,
                  names: tuple[str, str, str, str], tables: set[str]) -> Path:
    """The MariaDB tables (orders and those of ``tables``: orders4m, wide, blobs), the
    PostgreSQL copy of orders, and orders as a TSV file (the limit's input). Returns the
    TSV path."""
    SRC, PGSRC, LOCAL, PEER = names  # noqa: N806
    drop_databases(SRC, PGSRC, LOCAL, PEER)
    execute(MY, f"CREATE DATABASE {SRC}", f"CREATE DATABASE {PEER}", f"CREATE DATABASE {LOCAL}")
    for name in (PGSRC, LOCAL, PEER):
        execute(PG + "postgres", f"CREATE DATABASE {name}")
    my = MY + SRC
    for table, rows in (("orders", n), ("orders4m", 4 * n)):
        if table in tables or table == "orders":
            print(f"  {table}: {rows:,} rows", flush=True)
            execute(my, cases.ORDERS_DDL.format(table=table),
                    cases.orders_insert(table, 1, rows))
    if "wide" in tables:
        print(f"  wide: {wide_rows:,} rows of 30 columns", flush=True)
        execute(my, cases.WIDE_DDL, cases.wide_insert(wide_rows))
    if "blobs" in tables:
        _build_blobs(my, blob_rows)
    tsv = work / "orders.tsv"
    with tsv.open("wb") as out:
        subprocess.run([*cases.MARIADB_BATCH, "-e", cases.ORDERS_TSV_QUERY.format(db=SRC)],
                       stdout=out, check=True)
    execute(PG + PGSRC, cases.PG_ORDERS_DDL.format(table="orders"))
    subprocess.run([*cases.PSQL_DB(PGSRC), "-c", f"\\copy orders FROM '{tsv}'"], check=True)
    return tsv


def _build_blobs(my: str, blob_rows: int) -> None:
    print(f"  blobs: {blob_rows:,} rows of 64 KB texts", flush=True)
    execute(my, "CREATE TABLE blobs (id BIGINT PRIMARY KEY, body LONGTEXT, "
                "updated_at DATETIME(6))")
    for start in range(1, blob_rows + 1, 2000):
        end = min(blob_rows, start + 1999)
        execute(my, "INSERT INTO blobs SELECT seq, CONCAT(REPEAT(MD5(seq), 2047), "
                    f"LPAD(seq, 32, '0')), NOW(6) FROM seq_{start}_to_{end}")


def ensure_dlt() -> Path | None:
    """bench/.venv-dlt with dlt 1.31 and connectorx (created when missing)."""
    venv = HERE / ".venv-dlt"
    python = venv / "bin" / "python"
    if python.exists():
        return python
    print("  installing dlt into bench/.venv-dlt ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *cases.DLT_PACKAGES],
                       check=True, capture_output=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"  dlt not installed: {exc}")
        shutil.rmtree(venv, ignore_errors=True)
        return None
    return python


def ensure_pgloader() -> bool:
    if shutil.which("pgloader"):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("  installing pgloader (apt-get) ...", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "pgloader"], capture_output=True)
    return shutil.which("pgloader") is not None


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    versions = []
    for cmd in (["psql", "--version"], ["mariadb", "--version"]):
        try:
            versions.append(subprocess.run(cmd, capture_output=True, text=True).stdout.strip())
        except OSError:
            pass
    return (f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}; "
            + "; ".join(versions))


def selected(figures: list[Figure], only: list[str]) -> list[Figure]:
    """The limits and the cases whose "name pair" holds one of ``only`` (all if empty)."""
    return [f for f in figures if not only or f.group == "limit"
            or any(part in f"{f.name} {f.pair}" for part in only)]


def tables_of(figures: list[Figure]) -> set[str]:
    """The source tables the cases read besides orders."""
    names = " ".join(f.name for f in figures)
    return {table for table, word in (("orders4m", "incremental"), ("wide", "30-column"),
                                      ("blobs", "64 KB")) if word in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--wide-rows", type=int, default=None, help="default: rows / 4")
    parser.add_argument("--blob-rows", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="20,000 rows, 1 round")
    parser.add_argument("--no-peers", action="store_true", help="syncd and the limits only")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="only the cases whose name or pair holds TEXT (and the limits); "
                             "may be repeated")
    parser.add_argument("--db-prefix", default="syncd_bench10",
                        help="names of the databases the run creates and drops")
    parser.add_argument("--baseline", type=Path, default=None, metavar="DIR",
                        help="also run the MariaDB -> PostgreSQL full loads with the syncd "
                             "code in DIR (another checkout): before and after in one run")
    parser.add_argument("--note", default="", help="a line about the machine's load")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.rounds, args.blob_rows = min(args.rows, 20_000), 1, 500
    wide_rows = args.wide_rows or max(1, args.rows // 4)
    work = Path(tempfile.mkdtemp(prefix="syncd-bench-"))
    started = time.time()
    names = database_names(args.db_prefix)
    env = cases.Env(work=work, tsv=work / "orders.tsv", rows=args.rows, wide_rows=wide_rows,
                    blob_rows=args.blob_rows, src=names[0], pgsrc=names[1], local=names[2],
                    peer=names[3], baseline=args.baseline and args.baseline.resolve())
    peers = not args.no_peers
    wanted = selected(cases.all_cases(env, peers), args.only)
    print(f"building source tables ({args.rows:,} rows) ...", flush=True)
    build_sources(args.rows, wide_rows, args.blob_rows, work, names, tables_of(wanted))
    peer_names = " ".join(f.name for f in wanted if f.group == "peer")
    env.dlt_python = ensure_dlt() if "dlt" in peer_names else None
    env.pgloader = ensure_pgloader() if "pgloader" in peer_names else False
    print("preparing the local databases ...", flush=True)
    cases.prepare_syncd(env, jobs=any(word in f.name for f in wanted
                                      for word in ("incremental", "reconcile")))
    figures = selected(cases.all_cases(env, peers), args.only)
    for round_no in range(1, args.rounds + 1):
        for figure in figures:
            if figure.skipped:
                continue
            print(f"round {round_no}/{args.rounds}: {figure.name} ...", end=" ", flush=True)
            try:
                sample = cases.measure(env, figure, round_no)
            except Exception as exc:  # noqa: BLE001  (a peer that fails is reported, not fatal)
                figure.skipped = f"failed: {str(exc).strip()[:300]}"
                print(figure.skipped)
                continue
            figure.samples.append(sample)
            print(f"{sample.seconds:.2f}s, {sample.peak_kib / 1024:.0f} MiB", flush=True)
    results = targets(figures)
    meta = {"rows": args.rows, "wide_rows": wide_rows, "blob_rows": args.blob_rows,
            "rounds": args.rounds, "machine": machine(), "note": args.note,
            "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
            "minutes": round((time.time() - started) / 60, 1)}
    md = write_results(HERE / "results", figures, results, meta,
                       quick=args.quick or bool(args.only))
    print()
    print(md)
    cases.cleanup(env)
    drop_databases(*names)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
