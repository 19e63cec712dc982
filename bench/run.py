"""syncd against the local limit and the tools an operator would pick instead, in one run.

    .venv/bin/python bench/run.py              # 1,000,000 rows, 3 rounds (about an hour)
    .venv/bin/python bench/run.py --quick      # 20,000 rows, 1 round (a few minutes)
    .venv/bin/python bench/run.py --only "postgresql->postgresql" --no-peers --keep
                                               # the cases named (by name or pair) alone;
                                               # --keep leaves the source tables for the next
    .venv/bin/python bench/run.py --only sqlite --baseline /path/to/other/checkout
                                               # every syncd case also run from that checkout

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
from benchlib import MY, PG, Figure, drop_databases, execute, scalar
from report import targets, write_results

HERE = Path(__file__).resolve().parent


def database_names(prefix: str) -> tuple[str, str, str, str]:
    """The bench's databases: MariaDB source, PostgreSQL source, local, peers' target."""
    return f"{prefix}_src", f"{prefix}_pgsrc", f"{prefix}_local", f"{prefix}_peer"


def built(src: str, n: int, wide_rows: int, blob_rows: int) -> bool:
    """True if a kept source (``--keep``) has the tables of these sizes."""
    try:
        found = scalar(MY + src, "SELECT CONCAT_WS(',', (SELECT COUNT(*) FROM orders), "
                                 "(SELECT COUNT(*) FROM orders4m), (SELECT COUNT(*) FROM wide), "
                                 "(SELECT COUNT(*) FROM blobs))")
    except Exception:  # noqa: BLE001  (no such database or table: build it)
        return False
    return found == f"{n},{4 * n},{wide_rows},{blob_rows}"


def build_sources(n: int, wide_rows: int, blob_rows: int, work: Path, names: tuple[str, ...],
                  reuse: bool) -> Path:
    """The MariaDB tables (orders, orders4m, wide, blobs), the PostgreSQL copy of orders,
    and orders as a TSV file (the limit's input). Returns the TSV path."""
    SRC, PGSRC, LOCAL, PEER = names  # noqa: N806
    tsv = work / "orders.tsv"
    if reuse and built(SRC, n, wide_rows, blob_rows):
        print("  kept source tables reused", flush=True)
        drop_databases(LOCAL, PEER)
        execute(MY, f"CREATE DATABASE {PEER}", f"CREATE DATABASE {LOCAL}")
        for name in (LOCAL, PEER):
            execute(PG + "postgres", f"CREATE DATABASE {name}")
        with tsv.open("wb") as out:
            subprocess.run([*cases.MARIADB_BATCH, "-e", cases.ORDERS_TSV_QUERY.format(db=SRC)],
                           stdout=out, check=True)
        return tsv
    drop_databases(SRC, PGSRC, LOCAL, PEER)
    execute(MY, f"CREATE DATABASE {SRC}", f"CREATE DATABASE {PEER}", f"CREATE DATABASE {LOCAL}")
    for name in (PGSRC, LOCAL, PEER):
        execute(PG + "postgres", f"CREATE DATABASE {name}")
    my = MY + SRC
    for table, rows in (("orders", n), ("orders4m", 4 * n)):
        print(f"  {table}: {rows:,} rows", flush=True)
        execute(my, cases.ORDERS_DDL.format(table=table), cases.orders_insert(table, 1, rows))
    print(f"  wide: {wide_rows:,} rows of 30 columns", flush=True)
    execute(my, cases.WIDE_DDL, cases.wide_insert(wide_rows))
    print(f"  blobs: {blob_rows:,} rows of 64 KB texts", flush=True)
    execute(my, "CREATE TABLE blobs (id BIGINT PRIMARY KEY, body LONGTEXT, "
                "updated_at DATETIME(6))")
    for start in range(1, blob_rows + 1, 2000):
        end = min(blob_rows, start + 1999)
        execute(my, "INSERT INTO blobs SELECT seq, CONCAT(REPEAT(MD5(seq), 2047), "
                    f"LPAD(seq, 32, '0')), NOW(6) FROM seq_{start}_to_{end}")
    with tsv.open("wb") as out:
        subprocess.run([*cases.MARIADB_BATCH, "-e", cases.ORDERS_TSV_QUERY.format(db=SRC)],
                       stdout=out, check=True)
    execute(PG + PGSRC, cases.PG_ORDERS_DDL.format(table="orders"))
    subprocess.run([*cases.PSQL_DB(PGSRC), "-c", f"\\copy orders FROM '{tsv}'"], check=True)
    return tsv


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--wide-rows", type=int, default=None, help="default: rows / 4")
    parser.add_argument("--blob-rows", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="20,000 rows, 1 round")
    parser.add_argument("--no-peers", action="store_true", help="syncd and the limits only")
    parser.add_argument("--note", default="", help="a line about the machine's load")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="measure only the cases whose name or pair contains TEXT "
                             "(repeatable; case-insensitive)")
    parser.add_argument("--prefix", default="syncd_bench10",
                        help="prefix of the bench's database names")
    parser.add_argument("--keep", action="store_true",
                        help="keep the source tables for the next run, reuse kept ones")
    parser.add_argument("--baseline", type=Path, default=None, metavar="CHECKOUT",
                        help="also run every syncd case with the syncd package of CHECKOUT")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.rounds, args.blob_rows = min(args.rows, 20_000), 1, 500
    wide_rows = args.wide_rows or max(1, args.rows // 4)
    work = Path(tempfile.mkdtemp(prefix="syncd-bench-"))
    started = time.time()
    print(f"building source tables ({args.rows:,} rows) ...", flush=True)
    names = database_names(args.prefix)
    SRC, PGSRC, LOCAL, PEER = names  # noqa: N806
    tsv = build_sources(args.rows, wide_rows, args.blob_rows, work, names, args.keep)
    env = cases.Env(work=work, tsv=tsv, rows=args.rows, wide_rows=wide_rows,
                    blob_rows=args.blob_rows, src=SRC, pgsrc=PGSRC, local=LOCAL, peer=PEER,
                    baseline=args.baseline.resolve() if args.baseline else None)
    peers = not args.no_peers
    figures: list[Figure] = cases.all_cases(env, peers)
    if args.only:
        wanted = [text.lower() for text in args.only]
        figures = [f for f in figures if any(w in f"{f.name} {f.pair}".lower() for w in wanted)]
    if env.baseline:
        figures = [g for f in figures for g in ([f, cases.baseline_of(f)] if f.group == "syncd"
                                                 else [f])]
    used = {f.name for f in figures if not f.skipped}
    env.dlt_python = ensure_dlt() if any(n.startswith("dlt") for n in used) else None
    env.pgloader = ensure_pgloader() if "pgloader" in used else False
    for f in figures:
        if f.name.startswith("dlt") and not env.dlt_python or \
                f.name == "pgloader" and not env.pgloader:
            f.skipped = "not installed"
    print("loading the tables the incremental and reconcile cases start from ...", flush=True)
    cases.prepare_syncd(env, {f.name for f in figures})
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
    md = write_results(HERE / "results", figures, results, meta, quick=args.quick,
                       partial=bool(args.only or args.baseline))
    print()
    print(md)
    cases.cleanup(env)
    drop_databases(*((LOCAL, PEER) if args.keep else names))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
