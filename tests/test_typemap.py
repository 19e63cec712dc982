"""The type map as pure functions (no database), and `syncd check` refusing a type it cannot map."""

from __future__ import annotations

import pytest
from sample_tables import execute
from test_sync import jobs_toml

from syncd.engine import values as v
from syncd.engine.catalog import SourceColumn
from syncd.engine.errors import ConfigError
from syncd.engine.typemap import plan_column


def mysql(kind: str, spelling: str, **kw: object) -> SourceColumn:
    return SourceColumn(name="c", dialect="mysql", kind=kind, spelling=spelling, **kw)  # type: ignore[arg-type]


def pg(kind: str, spelling: str, **kw: object) -> SourceColumn:
    return SourceColumn(name="c", dialect="postgresql", kind=kind, spelling=spelling, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("column,local,ddl", [
    (mysql("decimal", "decimal(38,10)", precision=38, scale=10), "postgresql", "numeric(38,10)"),
    (mysql("decimal", "decimal(38,10)", precision=38, scale=10), "sqlite", "TEXT"),
    (mysql("bigint", "bigint(20) unsigned", unsigned=True), "postgresql", "numeric(20,0)"),
    (mysql("bigint", "bigint(20) unsigned", unsigned=True), "sqlite", "INTEGER"),
    (mysql("int", "int(10) unsigned", unsigned=True), "postgresql", "bigint"),
    (mysql("tinyint", "tinyint(1)"), "postgresql", "smallint"),
    (mysql("double", "double"), "postgresql", "double precision"),
    (mysql("float", "float"), "postgresql", "real"),
    (mysql("datetime", "datetime(6)", precision=6), "postgresql",
     "timestamp(6) without time zone"),
    (mysql("time", "time(6)", precision=6), "postgresql", "time(6) without time zone"),
    (mysql("json", "json"), "postgresql", "json"),
    (mysql("json", "json"), "sqlite", "TEXT"),
    (mysql("bit", "bit(8)", precision=8), "postgresql", "bit(8)"),
    (mysql("enum", "enum('a','b')"), "mysql", "enum('a','b')"),
    (mysql("set", "set('x','y')"), "mysql", "set('x','y')"),
    (mysql("double", "double"), "mysql", "double"),
    (pg("numeric", "numeric"), "mysql", "decimal(65,30)"),
    (pg("interval", "interval"), "postgresql", "interval"),
    (pg("interval", "interval"), "mysql", "longtext"),
    (pg("timetz", "time with time zone"), "postgresql", "time with time zone"),
    (pg("array", "integer[]"), "postgresql", "integer[]"),
    (pg("array", "integer[]"), "sqlite", "TEXT"),
    (pg("jsonb", "jsonb"), "mysql", "json"),
    (pg("timestamptz", "timestamp with time zone"), "mysql", "datetime(6)"),
    (pg("text", "text"), "mysql", "longtext"),
])
def test_local_type_of_each_source_type(column: SourceColumn, local: str, ddl: str) -> None:
    assert plan_column(column, local).ddl == ddl


def test_text_key_column_of_a_mysql_local_table_is_an_indexable_varchar() -> None:
    plan = plan_column(pg("text", "text"), "mysql", key_column=True)
    assert plan.ddl == "varchar(768)"
    assert plan.convert is not None
    with pytest.raises(v.Unrepresentable, match="text longer than 768 characters"):
        plan.convert("x" * 769)


def test_values_are_read_as_the_source_writes_them() -> None:
    assert plan_column(pg("date", "date"), "mysql").read == "text"  # keeps 'infinity', BC
    assert plan_column(pg("bpchar", "character(5)"), "mysql").read == "raw"  # keeps padding
    assert plan_column(pg("inet", "inet"), "mysql").read == "raw"  # no /32 added
    assert plan_column(pg("money", "money"), "mysql").read == "money"  # not locale text
    assert plan_column(mysql("float", "float"), "postgresql").read == "double"  # not 6 digits


@pytest.mark.parametrize("convert,value,kind", [
    (v.decimal_fits(65, 30), "1e-42", "number beyond DECIMAL(65,30)"),
    (v.decimal_fits(10, 2), "123456789.1", "number beyond DECIMAL(10,2)"),
    (v.decimal_fits(10, 2), "NaN", "NaN"),
    (v.finite_float, "Infinity", "infinity"),
    (v.finite_float, "-0", "negative zero"),
    (v.sqlite_float, "NaN", "NaN"),
    (v.no_nul, "a\x00b", "text with a NUL character"),
    (v.plain_date, "0044-03-15 BC", "BC date"),
    (v.plain_date, "infinity", "infinite date"),
    (v.mysql_time_of_day, "-12:00:00", "TIME outside 00:00:00-24:00:00"),
    (v.mysql_time_of_day, "24:00:01", "TIME outside 00:00:00-24:00:00"),
    (v.int64, "18446744073709551615", "integer beyond 64 bits"),
])
def test_converters_refuse_what_the_local_type_cannot_hold(convert: v.Converter, value: str,
                                                           kind: str) -> None:
    with pytest.raises(v.Unrepresentable) as raised:
        convert(value)
    assert raised.value.kind == kind


@pytest.mark.parametrize("convert,value,out", [
    (v.decimal_fits(10, 2), "12345678.10", "12345678.10"),
    (v.decimal_fits(65, 30), "-0.000000000000000000000000000001",
     "-0.000000000000000000000000000001"),
    (v.mysql_time_of_day, "24:00:00", "24:00:00"),
    (v.bits_from_bytes(8), b"\x05", "00000101"),
    (v.utc_naive, "2024-03-31 01:00:00+00", "2024-03-31 01:00:00"),
    (v.pg_float, 5e-324, "5e-324"),
    (v.bool_to_int, "true", 1),
    (v.shift_to_utc("Europe/Berlin"), "2024-07-01 12:00:00", "2024-07-01 10:00:00"),
])
def test_converters_keep_values_exactly(convert: v.Converter, value: object, out: object) -> None:
    assert convert(value) == out


def test_a_type_that_cannot_be_mapped_is_refused() -> None:
    with pytest.raises(ConfigError, match='column "c": type geometry cannot be copied into a '
                                          "PostgreSQL local database"):
        plan_column(mysql("geometry", "geometry"), "postgresql")


def test_check_refuses_a_column_type_it_cannot_map(databases, make_env):  # type: ignore[no-untyped-def]
    src = databases.mysql()
    execute(src, "CREATE TABLE places (id INT PRIMARY KEY, updated_at DATETIME, spot POINT)")
    env = make_env(databases.postgres(), jobs_toml(src, name="places", table="places"))

    check = env.syncd("check")
    run = env.syncd("run", "places")

    assert check.returncode == 2, check.stdout + check.stderr
    expected = 'job "places": column "spot": type point cannot be copied into a PostgreSQL'
    assert expected in check.stderr + check.stdout
    assert run.returncode == 2 and expected in run.stderr
    assert "Traceback" not in check.stderr + run.stderr


def test_decimal_checks_count_every_digit_of_long_numbers() -> None:
    """Decimal's normalize() rounds to 28 digits: 40 digits must not pass as fewer."""
    fits = v.decimal_fits(65, 30)
    with pytest.raises(v.Unrepresentable, match=r"beyond DECIMAL\(65,30\)"):
        fits("1." + "0" * 38 + "1")  # 39 fraction digits
    assert fits("1" * 35 + "." + "1" * 30) == "1" * 35 + "." + "1" * 30
    canon = v.canonical("decimal")
    assert canon("1." + "0" * 38 + "1") != canon("1")
    assert canon("12345678901234567890.1234567890000") == canon("12345678901234567890.123456789")
