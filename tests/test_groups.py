"""Group jobs: ``tables = [...]`` patterns expanded into table jobs at the source, with
overrides, cursor candidates, ``missing_cursor``, a target pattern, and tables that
appear or disappear between two expansions."""

from __future__ import annotations

import json

import pytest
from celery_helpers import running_services, runs, wait_for
from conftest import engine_for, rows_of

from syncd.engine.errors import ConfigError
from syncd.jobs import parse_jobs_text


def jobs_text(url: str, extra: str = "") -> str:
    return (f'[sources.src]\nurl = "{url}"\n\n'
            '[[jobs]]\nname = "shop"\nsource = "src"\ntables = ["o*", "cust*", "tags"]\n'
            'target = "shop_{table}"\ncursor = ["updated_at", "modified_at"]\n' + extra)


def execute(url: str, *statements: str) -> None:
    engine = engine_for(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


def make_shop(url: str) -> None:
    execute(
        url,
        "CREATE TABLE orders (id INT PRIMARY KEY, note VARCHAR(20), updated_at TIMESTAMP NULL)",
        "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(20), modified_at "
        "TIMESTAMP NULL)",
        "CREATE TABLE tags (id INT PRIMARY KEY, label VARCHAR(20))",
        "CREATE TABLE misc (id INT PRIMARY KEY)",
        "INSERT INTO orders VALUES (1, 'a', '2026-01-01 00:00:00'), (2, 'b', "
        "'2026-01-02 00:00:00')",
        "INSERT INTO customers VALUES (1, 'ann', '2026-01-01 00:00:00')",
        "INSERT INTO tags VALUES (1, 'x'), (2, 'y'), (3, 'z')",
    )


def history(env) -> list[dict]:
    proc = env.syncd("history", "--json", "--limit", "100", check=True)
    return json.loads(proc.stdout)


@pytest.mark.parametrize("source_kind,local_kind", [("postgres", "mysql"), ("mysql", "postgres")])
def test_group_expands_with_overrides_and_candidates(databases, make_env, source_kind,
                                                     local_kind):
    source, local = databases.make(source_kind), databases.make(local_kind)
    make_shop(source)
    env = make_env(local, jobs_text(source, '[jobs.overrides."tags"]\nmode = "full"\n'
                                            'target = "labels"\n'))

    check = env.syncd("check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert 'ok: job "shop": 3 table(s) match o*, cust*, tags' in check.stdout
    assert 'ok: job "shop.customers" (customers -> shop_customers, incremental, cursor ' \
           'modified_at)' in check.stdout
    assert 'ok: job "shop.tags" (tags -> labels, full)' in check.stdout

    proc = env.syncd("run", "shop")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = {r["job"]: r for r in history(env)}
    assert set(runs) == {"shop.orders", "shop.customers", "shop.tags"}
    assert {r["status"] for r in runs.values()} == {"succeeded"}
    assert rows_of(local, "shop_orders") == rows_of(source, "orders")
    assert rows_of(local, "shop_customers") == rows_of(source, "customers")
    assert rows_of(local, "labels") == rows_of(source, "tags")
    assert runs["shop.customers"]["cursor_after"] is not None  # modified_at was the cursor

    listing = env.syncd("jobs", check=True).stdout
    assert "shop" in listing and "3 table(s)" in listing
    assert "  shop.orders" in listing and "  shop.tags" in listing

    one = env.syncd("run", "shop.orders")
    assert one.returncode == 0, one.stdout + one.stderr
    assert one.stdout.strip().splitlines()[-1].startswith("run #")
    assert [r["job"] for r in history(env)][0] == "shop.orders"
    of_group = json.loads(env.syncd("history", "shop", "--json", check=True).stdout)
    assert sorted(r["job"] for r in of_group) == sorted(
        ["shop.orders", "shop.orders", "shop.customers", "shop.tags"])


def test_tables_added_and_dropped_between_expansions(databases, make_env):
    source, local = databases.postgres(), databases.mysql()
    make_shop(source)
    env = make_env(local, jobs_text(source))
    env.syncd("run", "shop", check=True)

    execute(source, "CREATE TABLE order_lines (id INT PRIMARY KEY, updated_at TIMESTAMP)",
            "INSERT INTO order_lines VALUES (7, '2026-01-03 00:00:00')",
            "DROP TABLE customers")
    proc = env.syncd("run", "shop")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "table customers is gone from the source" in proc.stderr
    assert "its local table shop_customers is kept" in proc.stderr
    assert rows_of(local, "shop_order_lines") == [(7, rows_of(source, "order_lines")[0][1])]
    assert len(rows_of(local, "shop_customers")) == 1  # kept

    listed = json.loads(env.syncd("jobs", "--json", check=True).stdout)
    group = next(row for row in listed if row["name"] == "shop")
    assert group["group"] is True
    assert "shop.order_lines" in group["table_jobs"]
    assert "shop.customers" not in group["table_jobs"]
    assert any("customers is gone" in w for w in group["warnings"])

    app = env.app()
    from prometheus_client import generate_latest

    from syncd.web.metrics import metrics_registry

    with app.app_context():
        from syncd import get_state

        text = generate_latest(metrics_registry(get_state(app))).decode()
    assert 'syncd_group_tables_missing{job="shop"} 1.0' in text


@pytest.mark.parametrize("mode,status,code", [("full", "succeeded", 0), ("skip", "skipped", 3),
                                              ("fail", "failed", 2)])
def test_missing_cursor(databases, make_env, mode, status, code):
    source, local = databases.mysql(), databases.postgres()
    make_shop(source)
    env = make_env(local, jobs_text(source, f'missing_cursor = "{mode}"\n'))
    check = env.syncd("check")
    assert check.returncode == (2 if mode == "fail" else 0), check.stdout + check.stderr
    said = {"full": "no cursor column (updated_at, modified_at) in source table tags: loaded "
                    "in full at every run",
            "skip": "no cursor column (updated_at, modified_at) in source table tags: skipped",
            "fail": "none of the columns updated_at, modified_at is in source table tags"}
    assert said[mode] in check.stdout + check.stderr
    proc = env.syncd("run", "shop.tags")
    assert proc.returncode == code, proc.stdout + proc.stderr
    if mode == "fail":
        assert "none of the columns updated_at, modified_at is in source table tags" in \
            proc.stderr
        assert history(env) == []
        return
    run = history(env)[0]
    assert run["status"] == status
    if mode == "full":
        assert rows_of(local, "shop_tags") == rows_of(source, "tags")
    else:
        assert "no cursor column (updated_at, modified_at)" in run["error"]


def test_group_validation_refuses_bad_fields():
    base = '[sources.src]\nurl = "postgresql://u@h/db"\n[[jobs]]\nname = "g"\nsource = "src"\n'

    def error(text: str) -> str:
        with pytest.raises(ConfigError) as exc:
            parse_jobs_text(base + text, "jobs.toml", {})
        return str(exc.value)

    assert 'field "target"' in error('tables = ["*"]\nmode = "full"\n'
                                     'target = "x\\"; drop table t; --{table}"\n')
    assert "only {table} and {schema}" in error('tables = ["*"]\nmode = "full"\n'
                                                'target = "{table}{evil}"\n')
    assert "matches none of the patterns" in error(
        'tables = ["o*"]\nmode = "full"\n[jobs.overrides."tags"]\nmode = "full"\n')
    assert 'not both' in error('tables = ["*"]\ntable = "x"\nmode = "full"\n')
    assert 'only for a job with "tables"' in error('table = "x"\nmode = "full"\n'
                                                  'missing_cursor = "skip"\n')
    assert 'field "max_connections"' in str(pytest.raises(ConfigError, parse_jobs_text,
                                            '[sources.s]\nurl = "postgresql://u@h/d"\n'
                                            'max_connections = 0\n', "jobs.toml", {}).value)
    jobs = parse_jobs_text(base + 'tables = ["shop.*"]\nmode = "full"\n'
                           'target = "{schema}_{table}"\n', "jobs.toml", {})
    assert jobs.job("g.shop.orders").target == "shop_orders"
    with pytest.raises(ConfigError, match="matches none"):
        jobs.job("g.crm.orders")
    with pytest.raises(ConfigError, match="is a group of tables"):
        jobs.job("g")


@pytest.mark.parametrize("source_kind,local_kind", [("postgres", "postgres"), ("mysql", "mysql")])
def test_table_without_primary_key_is_loaded_in_full(databases, make_env, source_kind,
                                                     local_kind):
    source, local = databases.make(source_kind), databases.make(local_kind)
    execute(source, "CREATE TABLE tags (a INT, label VARCHAR(20), updated_at TIMESTAMP NULL)",
            "INSERT INTO tags VALUES (1, 'x', NULL), (1, 'x', NULL), (2, NULL, NULL)")
    env = make_env(local, jobs_text(source))
    check = env.syncd("check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert ('warning: job "shop.tags": source table tags has no primary key: loaded in full '
            "at every run, without resume") in check.stdout

    first = env.syncd("run", "shop.tags")
    assert first.returncode == 0, first.stdout + first.stderr
    execute(source, "DELETE FROM tags WHERE a = 2", "INSERT INTO tags VALUES (3, 'z', NULL)")
    second = env.syncd("run", "shop.tags")
    assert second.returncode == 0, second.stdout + second.stderr
    latest = history(env)[0]
    assert latest["warnings"] == [
        {"message": "no primary key: loaded in full, without resume", "count": 1}]
    assert (latest["rows_read"], latest["rows_inserted"], latest["rows_deleted"]) == (3, 3, 3)
    assert sorted(rows_of(local, "shop_tags", "a")) == sorted(rows_of(source, "tags", "a"))


@pytest.fixture
def services():  # type: ignore[no-untyped-def]
    yield from running_services()


def test_scheduled_ticks_pick_up_a_new_table_and_report_a_dropped_one(databases, make_env,
                                                                      services):
    source, local = databases.postgres(), databases.postgres()
    make_shop(source)
    env = make_env(local, jobs_text(source, 'schedule = "2s"\n'))
    services.worker(env, 2)
    beat = services.beat(env)

    def succeeded(job: str) -> list[dict]:
        return [r for r in runs(local, job) if r["trigger"] == "schedule"
                and r["status"] == "succeeded"]

    def reported() -> bool:
        listed = json.loads(env.syncd("jobs", "--json", check=True).stdout)
        group = next(row for row in listed if row["name"] == "shop")
        return any("table customers is gone" in w for w in group["warnings"])

    wait_for(lambda: succeeded("shop.customers") and succeeded("shop.tags"), 60,
             lambda: f"no scheduled runs of the table jobs: {runs(local)}")
    assert "Sending due task sync-shop (syncd.sync_group)" in beat.log
    execute(source, "CREATE TABLE order_lines (id INT PRIMARY KEY, updated_at TIMESTAMP)",
            "INSERT INTO order_lines VALUES (7, '2026-01-03 00:00:00')",
            "DROP TABLE customers")
    wait_for(lambda: succeeded("shop.order_lines"), 60,
             lambda: f"the new table was not picked up: {runs(local)}")
    wait_for(reported, 30, "the dropped table was not reported")
    assert rows_of(local, "shop_order_lines")[0][0] == 7
    assert len(rows_of(local, "shop_customers")) == 1  # kept
