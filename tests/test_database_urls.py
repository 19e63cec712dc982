"""Database URLs as people write them: ``postgres://``, plain ``postgresql://`` and ``mysql://``
work with the drivers syncd ships, for sources and for SYNCD_DATABASE_URL; every URL syncd
cannot use, and every database that refuses it, gives one line naming the source (or the
local database), the masked URL and the cause, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sample_tables import create_orders, table_rows
from test_sync import jobs_toml

from syncd.engine.urls import BadURL, database_url


def plain(url: str) -> str:
    """A test database URL as a user writes it: no driver, no options."""
    scheme, rest = url.split("://", 1)
    return scheme.split("+")[0] + "://" + rest.split("?")[0]


def error_line(proc) -> str:  # type: ignore[no-untyped-def]
    """The one error line of a failed command (and no traceback)."""
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("written,used", [
    ("postgres://u:p@h/db", "postgresql+psycopg2://u:p@h/db"),
    ("postgresql://u:p@h:5433/db", "postgresql+psycopg2://u:p@h:5433/db"),
    ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db"),
    ("mysql://u:p@h/db?charset=utf8mb4", "mysql+pymysql://u:p@h/db?charset=utf8mb4"),
    ("mariadb://u@h/db", "mariadb+pymysql://u@h/db"),
    ("sqlite:///var/x.sqlite", "sqlite+pysqlite:///var/x.sqlite"),
])
def test_urls_get_the_drivers_syncd_ships(written: str, used: str) -> None:
    assert database_url(written).render_as_string(hide_password=False) == used


@pytest.mark.parametrize("url,words", [
    ("http://x", 'unknown database kind "http"'),
    ("postgresx://h/db", "did you mean postgresql://?"),
    ("oracle://u:p@h/db", 'does not work with "oracle" databases'),
    ("mysql+mysqldb://h/db", 'with pymysql, which it ships, not with "mysqldb"'),
    ("postgresql+psycopg://h/db", 'not with "psycopg"'),
    ("://", "not a database URL"),
])
def test_urls_syncd_cannot_use_say_why(url: str, words: str) -> None:
    with pytest.raises(BadURL, match=words.replace("?", r"\?").replace("+", r"\+")):
        database_url(url)


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_plain_source_urls_work(databases, make_env, kind):
    source = databases.make(kind)
    create_orders(source, 30)
    written = plain(source)
    if kind == "postgres":
        written = written.replace("postgresql://", "postgres://")  # libpq's short form
    env = make_env(databases.sqlite(), jobs_toml(written))
    check = env.syncd("check")
    assert check.returncode == 0, check.stderr
    run = env.syncd("run", "orders")
    assert run.returncode == 0, run.stdout + run.stderr
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_plain_local_database_urls_work(databases, make_env, kind):
    source = databases.sqlite()
    create_orders(source, 30)
    local = databases.make(kind)
    written = plain(local)
    if kind == "postgres":
        written = written.replace("postgresql://", "postgres://")
    env = make_env(written, jobs_toml(source))  # syncd db upgrade on the plain URL
    run = env.syncd("run", "orders")
    assert run.returncode == 0, run.stdout + run.stderr
    assert table_rows(local, "orders") == table_rows(source, "orders")
    (row,) = json.loads(env.syncd("history", "--json", check=True).stdout)
    assert row["status"] == "succeeded"


def test_source_that_refuses_the_login_or_the_database(databases, make_env):
    mysql = databases.mysql()
    root = mysql.split("?")[0].rsplit("/", 1)[0]  # mysql+pymysql://root@127.0.0.1:3306
    pg = databases.postgres().rsplit("/", 1)[0]
    cases = [  # (url, masked url as shown, cause, hint)
        (root.replace("root@", "root:wrong-pw@") + "/mysql",
         root.replace("root@", "root:***@") + "/mysql",
         "Access denied for user 'root'", "check the user name and password"),
        (root + "/syncd_no_such_db", root + "/syncd_no_such_db",
         "Unknown database 'syncd_no_such_db' (MySQL error 1049)", "check the database name"),
        (pg + "/syncd_no_such_db", pg + "/syncd_no_such_db",
         'database "syncd_no_such_db" does not exist', "check the database name"),
    ]
    for url, shown, cause, hint in cases:
        env = make_env(databases.sqlite(), jobs_toml(url))
        env.extra_env["SYNCD_RETRY_ATTEMPTS"] = "3"
        check = env.syncd("check")
        assert check.returncode == 3, (url, check.stderr)
        line = error_line(check)
        assert line.startswith(f'error: {env.jobs_file}: source "src" ({shown}): '
                               "refused the connection: "), line
        assert cause in line and hint in line, line
        assert "wrong-pw" not in check.stdout + check.stderr

        run = env.syncd("run", "orders")  # recorded failed at once: no retry helps
        assert run.returncode == 1, (url, run.stdout, run.stderr)
        assert "Traceback" not in run.stdout + run.stderr
        summary = run.stdout.strip().splitlines()[-1]
        assert summary.startswith("run #") and " failed " in summary, summary
        assert f'source "src" ({shown}): refused the connection: ' in summary, summary
        assert cause in summary and "gave up" not in summary, summary
        (row,) = json.loads(env.syncd("history", "--json", check=True).stdout)
        assert row["status"] == "failed" and row["attempts"] == 1
        assert "wrong-pw" not in run.stdout + row["error"]


@pytest.mark.parametrize("url,words", [
    ("http://x", 'unknown database kind "http"'),
    ("oracle://u:pw@h/db", 'does not work with "oracle" databases'),
    ("mysql+mysqldb://h/db", "not with \"mysqldb\" (write mysql:// or mysql+pymysql://)"),
    ("postgresx://u:pw@h/db", "(did you mean postgresql://?)"),
])
def test_source_urls_syncd_cannot_use_are_bad_configuration(databases, make_env, url, words):
    env = make_env(databases.sqlite(), jobs_toml(url))
    shown = url.replace(":pw@", ":***@")
    for command in (("check",), ("run", "orders")):
        proc = env.syncd(*command)
        assert proc.returncode == 2, (command, proc.stderr)
        line = error_line(proc)
        assert line.startswith(f'error: {env.jobs_file}: source "src": field "url": '
                               f'"{shown}": '), line
        assert words in line and ":pw@" not in line, line


@pytest.mark.parametrize("url,words", [
    ("http://x", 'http://x (SYNCD_DATABASE_URL): unknown database kind "http"'),
    ("oracle://u:pw@h/db", 'oracle://u:***@h/db (SYNCD_DATABASE_URL): syncd does not work '
                           'with "oracle" databases'),
    ("mysql+mysqldb://u:pw@h/db", 'mysql+mysqldb://u:***@h/db (SYNCD_DATABASE_URL): syncd '
                                  'reads mysql databases with pymysql'),
    ("postgres://u:pw@h:notaport/db", "(SYNCD_DATABASE_URL): not a database URL"),
])
def test_local_database_urls_syncd_cannot_use(databases, make_env, url, words):
    env = make_env(url, jobs_toml(databases.sqlite()), migrate=False)
    for command in (("db", "upgrade"), ("history",), ("run", "orders"), ("jobs",)):
        proc = env.syncd(*command)
        assert proc.returncode == 2, (command, proc.stderr)
        line = error_line(proc)
        assert line.startswith("error: local database "), line
        assert words in line and ":pw@" not in line, line


def test_local_database_that_refuses_or_is_not_there(databases, make_env):
    root = databases.mysql().split("?")[0].rsplit("/", 1)[0]
    pg = databases.postgres().rsplit("/", 1)[0]
    cases = [
        (root.replace("root@", "root:wrong-pw@") + "/mysql", 2, "refused the connection: "
         "Access denied for user 'root'", root.replace("root@", "root:***@") + "/mysql"),
        (pg + "/syncd_no_such_db", 2, 'refused the connection: connection to server at '
         '"127.0.0.1", port 5432 failed: database "syncd_no_such_db" does not exist; check the '
         "database name", pg + "/syncd_no_such_db"),
        ("postgresql://postgres@127.0.0.1:1/x", 1, "Connection refused; is the server running",
         "postgresql://postgres@127.0.0.1:1/x"),
    ]
    for url, code, words, shown in cases:
        env = make_env(url, jobs_toml(databases.sqlite()), migrate=False)
        env.extra_env["SYNCD_RETRY_ATTEMPTS"] = "1"
        for command in (("history",), ("db", "upgrade")):
            proc = env.syncd(*command)
            assert proc.returncode == code, (url, command, proc.stderr)
            line = error_line(proc)
            assert shown + " (SYNCD_DATABASE_URL)" in line and words in line, line
            assert "wrong-pw" not in proc.stderr


def test_commands_before_db_upgrade_name_the_database_and_upgrade_says_what_it_did(
        databases, make_env):
    local = databases.postgres()
    env = make_env(local, jobs_toml(databases.sqlite()), migrate=False)
    proc = env.syncd("history")
    assert proc.returncode == 2
    line = error_line(proc)
    assert line.startswith(f"error: local database {local} (SYNCD_DATABASE_URL) has no syncd "
                           "tables"), line
    assert "run `syncd db upgrade`" in line
    first = env.syncd("db", "upgrade", check=True).stdout.strip()
    assert first.startswith(f"created syncd's tables in the local database {local} "
                            "(SYNCD_DATABASE_URL) (revision "), first
    again = env.syncd("db", "upgrade", check=True).stdout.strip()
    assert again.startswith(f"local database {local} (SYNCD_DATABASE_URL) is up to date"), again
    assert env.syncd("history", check=True).stdout.strip() == "no runs"


def test_default_local_database_is_named_by_its_path(databases, make_env, tmp_path):
    env = make_env(databases.sqlite(), jobs_toml(databases.sqlite()), migrate=False)
    environ = env.env
    del environ["SYNCD_DATABASE_URL"]  # the default: syncd.sqlite under SYNCD_VAR_DIR
    proc = subprocess.run([sys.executable, "-m", "syncd", "history"], env=environ,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    line = error_line(proc)
    assert f"sqlite:///{env.var_dir / 'syncd.sqlite'} (SYNCD_DATABASE_URL) has no syncd " \
        "tables" in line, line


SERVICES = {  # service: (command after the interpreter, exit code, the name it gives itself)
    "worker": (["-m", "celery", "-A", "syncd.worker", "worker"], 2, "syncd worker"),
    "beat": (["-m", "celery", "-A", "syncd.worker", "beat"], 2, "syncd beat"),
    "web app": (["-m", "gunicorn", "--bind", "127.0.0.1:0", "--no-control-socket",
                 "syncd.web:create_web_app()"], 3, "syncd web app"),
}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_services_with_a_local_database_url_syncd_cannot_use_stop_with_one_line(
        databases, make_env, service):
    args, code, name = SERVICES[service]
    env = make_env("oracle://u:pw@h/db", jobs_toml(databases.sqlite()), migrate=False)
    proc = subprocess.run([sys.executable, *args], env=env.env, cwd=env.tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    line = f"{name}: cannot start: local database oracle://u:***@h/db (SYNCD_DATABASE_URL): " \
           'syncd does not work with "oracle" databases'
    said = [x for x in proc.stderr.splitlines() if "cannot start" in x]
    assert len(said) == 1 and said[0].startswith(line), proc.stderr
    assert ":pw@" not in proc.stderr
