"""The jobs file: defaults, and a clear message for each mistake."""

from __future__ import annotations

from datetime import timedelta

import pytest

from syncd.engine.errors import ConfigError
from syncd.jobs import load_jobs, mask_url, parse_jobs

SOURCE = {"crm": {"url": "mysql+pymysql://reader:${PW}@crm-db:3306/crm"}}


def job(**over: object) -> dict[str, object]:
    base: dict[str, object] = {"name": "customers", "source": "crm", "table": "customers",
                               "cursor": "updated_at"}
    base.update(over)
    return base


def test_defaults_follow_the_design():
    jobs = parse_jobs({"sources": SOURCE, "jobs": [job()]}, "jobs.toml", {"PW": "s3cret"})
    spec = jobs.job("customers")
    assert (spec.target, spec.mode, spec.batch_size, spec.lookback, spec.deletes,
            spec.max_delete_ratio, spec.on_schema_change, spec.schedule, spec.timeout) == (
        "customers", "incremental", 10000, timedelta(minutes=1), "ignore", 0.5, "evolve",
        None, None)
    assert spec.source.url.endswith("reader:s3cret@crm-db:3306/crm")
    assert spec.source.masked_url == "mysql+pymysql://reader:***@crm-db:3306/crm"


def test_schema_qualified_table_and_schedules():
    jobs = parse_jobs({"sources": SOURCE, "jobs": [
        job(table="sales.orders", schedule="*/5 * * * *"),
        job(name="b", target="b", schedule="30s")]}, "jobs.toml", {"PW": "x"})
    spec = jobs.job("customers")
    assert spec.target == "orders" and spec.table_sync().schema == "sales"
    assert spec.schedule is not None and spec.schedule.cron == "*/5 * * * *"
    assert jobs.job("b").schedule.interval == timedelta(seconds=30)  # type: ignore[union-attr]


def test_empty_file_is_valid(tmp_path):
    path = tmp_path / "jobs.toml"
    path.write_text("")
    assert load_jobs(path, {}).jobs == {}


@pytest.mark.parametrize("over,needle", [
    ({"lookback": "soon"}, 'field "lookback"'),
    ({"mode": "sometimes"}, 'field "mode"'),
    ({"deletes": "all"}, 'field "deletes"'),
    ({"name": "Bad Name"}, 'field "name"'),
    ({"max_delete_ratio": 2}, 'field "max_delete_ratio"'),
    ({"columns": []}, 'field "columns"'),
    ({"timeout": "forever"}, 'field "timeout"'),
])
def test_each_mistake_names_file_job_and_field(over, needle):
    with pytest.raises(ConfigError) as err:
        parse_jobs({"sources": SOURCE, "jobs": [job(**over)]}, "jobs.toml", {"PW": "x"})
    assert str(err.value).startswith("jobs.toml: job") and needle in str(err.value)


def test_broken_toml_names_the_file(tmp_path):
    path = tmp_path / "jobs.toml"
    path.write_text("[[jobs]\nname=")
    with pytest.raises(ConfigError, match="jobs.toml: not valid TOML"):
        load_jobs(path, {})


def test_mask_url_hides_password_only():
    assert mask_url("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert mask_url("sqlite:///var/x.sqlite") == "sqlite:///var/x.sqlite"


def test_batch_bytes_defaults_to_32mb_and_reaches_the_engine():
    jobs = parse_jobs({"sources": SOURCE, "jobs": [job(), job(name="b", target="b",
                                                          batch_bytes="512KB")]},
                      "jobs.toml", {"PW": "x"})
    assert jobs.job("customers").table_sync().batch_bytes == 32 * 1024 * 1024
    assert jobs.job("b").table_sync().batch_bytes == 512 * 1024


@pytest.mark.parametrize("value", ["lots", "12 parsecs", "10", True, -5])
def test_batch_bytes_that_is_no_size_names_the_field(value):
    with pytest.raises(ConfigError, match='job "customers": field "batch_bytes"'):
        parse_jobs({"sources": SOURCE, "jobs": [job(batch_bytes=value)]}, "jobs.toml",
                   {"PW": "x"})
