"""The cases of bench/run.py: the limits, the peers and syncd, each one measured round."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchlib import MARIADB, MY, PG, PSQL, Figure, Sample, execute, run_pipeline, scalar

ORDERS_DDL = ("CREATE TABLE {table} (id BIGINT PRIMARY KEY, customer VARCHAR(100), "
              "amount DECIMAL(12,4), qty INT, note TEXT, updated_at DATETIME(6), "
              "KEY ix_{table}_updated_at_id (updated_at, id))")
PG_ORDERS_DDL = ("CREATE TABLE {table} (id BIGINT PRIMARY KEY, customer VARCHAR(100), "
                 "amount NUMERIC(12,4), qty INT, note TEXT, updated_at TIMESTAMP(6))")
WIDE_DDL = ("CREATE TABLE wide (id BIGINT PRIMARY KEY, "
            + ", ".join(f"i{n} INT, s{n} VARCHAR(40), d{n} DECIMAL(10,2)" for n in range(9))
            + ", t TEXT, updated_at DATETIME(6))")
ORDERS_TSV_QUERY = ("SELECT id, customer, amount, qty, IFNULL(note, '\\\\N'), updated_at "
                    "FROM {db}.orders")
MARIADB_BATCH = [*MARIADB, "--batch", "--skip-column-names", "--quick"]
DLT_PACKAGES = ["dlt[postgres,sql_database]==1.31.0", "connectorx==0.4.6", "pymysql==1.2.4",
                "pyarrow", "sqlalchemy==2.1.9"]
SQLA_ROWS = 100_000  # the SQLAlchemy loop runs at a few thousand rows/s: measured on these


def PSQL_DB(db: str) -> list[str]:  # noqa: N802
    return [*PSQL, "-d", db]


def orders_insert(table: str, start: int, end: int) -> str:
    return (f"INSERT INTO {table} SELECT seq, CONCAT('customer ', MOD(seq, 97)), "
            "MOD(seq * 7919, 10000000) / 10000, MOD(seq, 500), "
            "IF(MOD(seq, 7) = 0, NULL, CONCAT('note for order ', seq, ' with some text')), "
            "TIMESTAMP('2026-01-01 00:00:00') + INTERVAL (seq DIV 3) SECOND "
            f"+ INTERVAL MOD(seq, 1000) MICROSECOND FROM seq_{start}_to_{end}")


def wide_insert(rows: int) -> str:
    cols = ", ".join(f"MOD(seq * {n + 3}, 100000), CONCAT('value ', seq, ' of column {n}'), "
                     f"MOD(seq * {n + 7}, 1000000) / 100" for n in range(9))
    return (f"INSERT INTO wide SELECT seq, {cols}, CONCAT('text of row ', seq), "
            f"TIMESTAMP('2026-01-01') + INTERVAL seq SECOND FROM seq_1_to_{rows}")


@dataclass
class Env:
    work: Path
    tsv: Path
    rows: int
    wide_rows: int
    blob_rows: int
    src: str
    pgsrc: str
    local: str
    peer: str
    dlt_python: Path | None = None
    pgloader: bool = False
    baseline: Path | None = None  # another checkout of syncd, measured beside this one

    def locals(self) -> dict[str, str]:
        return {"postgresql": PG + self.local, "mariadb": MY + self.local,
                "sqlite": f"sqlite:///{self.work / 'local.sqlite'}"}


JOBS = """
[sources.my]
url = "{my}"
[sources.pg]
url = "{pg}"

[[jobs]]
name = "my_orders"
source = "my"
table = "orders"
cursor = "updated_at"
lookback = "0s"

[[jobs]]
name = "my_orders4m"
source = "my"
table = "orders4m"
cursor = "updated_at"
lookback = "0s"

[[jobs]]
name = "my_orders_reconcile"
source = "my"
table = "orders"
target = "orders_reconcile"
cursor = "updated_at"
lookback = "0s"
deletes = "reconcile"

[[jobs]]
name = "pg_orders"
source = "pg"
table = "orders"
target = "pg_orders"
mode = "full"

[[jobs]]
name = "my_wide"
source = "my"
table = "wide"
mode = "full"

[[jobs]]
name = "my_blobs"
source = "my"
table = "blobs"
mode = "full"
"""


def syncd_env(env: Env, local: str, reader: str = "auto") -> dict[str, str]:
    jobs = env.work / "jobs.toml"
    if not jobs.exists():
        jobs.write_text(JOBS.format(my=MY + env.src, pg=PG + env.pgsrc))
    out = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCD_", "CELERY_"))}
    out.update(SYNCD_DATABASE_URL=env.locals()[local], SYNCD_JOBS_FILE=str(jobs),
               SYNCD_VAR_DIR=str(env.work / f"var-{local}"), SYNCD_MYSQL_READER=reader)
    return out


BASELINE = " [baseline]"  # a case measured with the code of Env.baseline


def syncd_run(env: Env, local: str, job: str, *args: str, reader: str = "auto",
              code: Path | None = None) -> Sample:
    """`syncd run`: the run's own duration, the process's wall time and peak RSS (``code``:
    the syncd checkout to run instead of this one)."""
    environ = syncd_env(env, local, reader)
    if code is not None:
        environ["PYTHONPATH"] = str(code)
    sample = run_pipeline([[sys.executable, "-m", "syncd", "run", job, *args]], env=environ)
    started, finished, status, error = _last_run(env.locals()[local])
    if status != "succeeded":
        raise RuntimeError(f"syncd run {job}: {status}: {error}")
    if local == "mariadb":  # MariaDB's syncd_runs keeps whole seconds: the process's time
        sample.note = "process wall time"
    else:
        sample.seconds = finished - started
    return sample


def _last_run(url: str) -> tuple[float, float, str, str]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT started_at, finished_at, status, error FROM syncd_runs "
                "ORDER BY id DESC LIMIT 1").one()
    finally:
        engine.dispose()
    started, finished = (v if not isinstance(v, str) else _parse(v) for v in row[:2])
    return started.timestamp(), finished.timestamp(), row[2], row[3] or ""


def _parse(value: str):  # type: ignore[no-untyped-def]
    from datetime import datetime

    return datetime.fromisoformat(value)


def prepare_syncd(env: Env, jobs: bool = True) -> None:
    """Migrations in every local database; the tables incremental and reconcile start from
    (``jobs``)."""
    for local in env.locals():
        subprocess.run([sys.executable, "-m", "syncd", "db", "upgrade"],
                       env=syncd_env(env, local), check=True, capture_output=True)
    for job in ("my_orders", "my_orders4m", "my_orders_reconcile") if jobs else ():
        syncd_run(env, "postgresql", job)


def all_cases(env: Env, peers: bool) -> list[Figure]:
    n = env.rows
    figures = [
        Figure("COPY of a CSV file into PostgreSQL", "limit", "file->postgresql", n),
        Figure("LOAD DATA of the same file into MariaDB", "limit", "file->mariadb", n),
        Figure("sqlite3 .import of the same file", "limit", "file->sqlite", n),
    ]
    if peers:
        figures += [
            Figure("mariadb --batch | psql COPY", "peer", "mariadb->postgresql", n),
            Figure("pg_dump | psql", "peer", "postgresql->postgresql", n),
            Figure("mariadb-dump | mariadb", "peer", "mariadb->mariadb", n),
            Figure("pgloader", "peer", "mariadb->postgresql", n,
                   skipped="" if env.pgloader else "not installed"),
            Figure("dlt sql_database, default backend", "peer", "mariadb->postgresql", n,
                   skipped="" if env.dlt_python else "not installed"),
            Figure("dlt sql_database, connectorx, no compression", "peer",
                   "mariadb->postgresql", n, skipped="" if env.dlt_python else "not installed"),
            Figure("SQLAlchemy Core upsert loop", "peer", "mariadb->postgresql",
                   min(n, SQLA_ROWS)),
        ]
    figures += [
        Figure("syncd full load (PyMySQL)", "syncd", "mariadb->postgresql", n),
        Figure("syncd full load (fast reader)", "syncd", "mariadb->postgresql", n),
        Figure("syncd full load", "syncd", "postgresql->postgresql", n),
        Figure("syncd full load", "syncd", "mariadb->mariadb", n),
        Figure("syncd full load", "syncd", "postgresql->mariadb", n),
        Figure("syncd full load", "syncd", "mariadb->sqlite", n),
        Figure("syncd full load, 30-column table", "syncd", "mariadb->postgresql",
               env.wide_rows),
        Figure("syncd full load, 64 KB rows", "syncd", "mariadb->postgresql", env.blob_rows),
        *baseline_cases(env),
        Figure(f"syncd incremental, 1,000 changed of {n:,}", "syncd", "mariadb->postgresql",
               1000),
        Figure(f"syncd incremental, 1,000 changed of {4 * n:,}", "syncd",
               "mariadb->postgresql", 1000),
        Figure(f"syncd reconcile, 1,000 deleted of {n:,}", "syncd", "mariadb->postgresql",
               1000),
    ]
    return figures


def baseline_cases(env: Env) -> list[Figure]:
    """The MariaDB -> PostgreSQL full loads again, run by the code of ``env.baseline``."""
    if env.baseline is None:
        return []
    names = ("syncd full load (PyMySQL)", "syncd full load (fast reader)",
             "syncd full load, 30-column table")
    return [Figure(name + BASELINE, "baseline", "mariadb->postgresql",
                   env.wide_rows if "30-column" in name else env.rows) for name in names]


def measure(env: Env, fig: Figure, round_no: int) -> Sample:
    """One round of one case (its reset is not timed)."""
    name, pair = fig.name, fig.pair
    if fig.group in ("syncd", "baseline"):
        return _syncd_case(env, fig, round_no)
    if pair == "file->postgresql":
        _reset_pg(env.peer)
        return run_pipeline([[*PSQL_DB(env.peer), "-c", f"\\copy orders FROM '{env.tsv}'"]])
    if pair == "file->mariadb":
        _reset_my(env.peer)
        return run_pipeline([[*MARIADB, "--local-infile=1", env.peer, "-e",
                              f"LOAD DATA LOCAL INFILE '{env.tsv}' INTO TABLE orders"]])
    if pair == "file->sqlite":
        db = env.work / "limit.sqlite"
        db.unlink(missing_ok=True)
        subprocess.run(["sqlite3", str(db), "CREATE TABLE orders (id INTEGER PRIMARY KEY, "
                        "customer TEXT, amount TEXT, qty INTEGER, note TEXT, updated_at TEXT)"],
                       check=True)
        return run_pipeline([["sqlite3", str(db), "-cmd", ".mode tabs",
                              f".import {env.tsv} orders"]])
    if name.startswith("mariadb --batch"):
        _reset_pg(env.peer)
        return run_pipeline([[*MARIADB_BATCH, "-e", ORDERS_TSV_QUERY.format(db=env.src)],
                             [*PSQL_DB(env.peer), "-c", "COPY orders FROM STDIN"]])
    if name.startswith("pg_dump"):
        execute(PG + env.peer, "DROP TABLE IF EXISTS orders")
        return run_pipeline([["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "-t", "orders",
                              env.pgsrc], PSQL_DB(env.peer)])
    if name.startswith("mariadb-dump"):
        execute(MY + env.peer, "DROP TABLE IF EXISTS orders")
        return run_pipeline([["mariadb-dump", "-h127.0.0.1", "-uroot", env.src, "orders"],
                             [*MARIADB, env.peer]])
    if name == "pgloader":
        execute(PG + env.peer, "DROP TABLE IF EXISTS orders", "DROP SCHEMA IF EXISTS "
                f"{env.src} CASCADE")
        load = env.work / "orders.load"
        load.write_text(f"LOAD DATABASE FROM mysql://root@127.0.0.1:3306/{env.src}\n"
                        f"INTO postgresql://postgres@127.0.0.1:5432/{env.peer}\n"
                        "INCLUDING ONLY TABLE NAMES MATCHING 'orders';\n")
        return run_pipeline([["pgloader", "--quiet", str(load)]])
    if name.startswith("dlt"):
        backend = "connectorx" if "connectorx" in name else "sqlalchemy"
        execute(PG + env.peer, f"DROP SCHEMA IF EXISTS dlt_{backend} CASCADE",
                f"DROP SCHEMA IF EXISTS dlt_{backend}_staging CASCADE")
        script = Path(__file__).parent / "peers" / "dlt_load.py"
        return run_pipeline([[str(env.dlt_python), str(script), backend, MY + env.src,
                              # dlt insists on a password; trust authentication ignores it
                              f"postgresql://postgres:unused@127.0.0.1:5432/{env.peer}",
                              "orders",
                              str(env.work / f"dlt-{backend}")]])
    if name.startswith("SQLAlchemy"):
        script = Path(__file__).parent / "peers" / "sqla_loop.py"
        return run_pipeline([[sys.executable, str(script), MY + env.src, PG + env.peer,
                              "orders", str(fig.rows)]])
    raise ValueError(name)


def _syncd_case(env: Env, fig: Figure, round_no: int) -> Sample:
    source, local = fig.pair.split("->")
    name = fig.name
    if "incremental" in name:
        table, job = ("orders4m", "my_orders4m") if "4," in name or "4m" in name else \
            ("orders", "my_orders")
        execute(MY + env.src, f"UPDATE {table} SET qty = qty + 1, updated_at = NOW(6) "
                              f"WHERE id BETWEEN {round_no * 2000} AND {round_no * 2000 + 999}")
        sample = syncd_run(env, local, job)
        _expect(env, local, "rows_updated", 1000)
        return sample
    if "reconcile" in name:
        first = env.rows // 2 + round_no * 2000
        execute(MY + env.src, f"DELETE FROM orders WHERE id BETWEEN {first} AND {first + 999}")
        try:
            sample = syncd_run(env, local, "my_orders_reconcile")
            _expect(env, local, "rows_deleted", 1000)
        finally:
            execute(MY + env.src, orders_insert("orders", first, first + 999))
        return sample
    reader = "pymysql" if "PyMySQL" in name else "auto"
    if "30-column" in name:
        job = "my_wide"
    elif "64 KB" in name:
        job = "my_blobs"
    elif source == "postgresql":
        job = "pg_orders"
    else:
        job = "my_orders"
    target = {"my_wide": "wide", "my_blobs": "blobs", "pg_orders": "pg_orders"}.get(job,
                                                                                  "orders")
    _drop_local(env, local, target)
    code = env.baseline if name.endswith(BASELINE) else None
    return syncd_run(env, local, job, "--full-refresh", reader=reader, code=code)


def _expect(env: Env, local: str, column: str, value: int) -> None:
    got = scalar(env.locals()[local], f"SELECT {column} FROM syncd_runs ORDER BY id DESC LIMIT 1")
    if got != value:
        raise RuntimeError(f"{column} = {got}, expected {value}")


def _drop_local(env: Env, local: str, table: str) -> None:
    if local in ("sqlite", "postgresql"):
        execute(env.locals()[local], f'DROP TABLE IF EXISTS "{table}"')
    else:
        execute(env.locals()[local], f"DROP TABLE IF EXISTS `{table}`")


def _reset_pg(db: str) -> None:
    execute(PG + db, "DROP TABLE IF EXISTS orders", PG_ORDERS_DDL.format(table="orders"))


def _reset_my(db: str) -> None:
    execute(MY + db, "DROP TABLE IF EXISTS orders", ORDERS_DDL.format(table="orders"))


def cleanup(env: Env) -> None:
    (env.work / "local.sqlite").unlink(missing_ok=True)
