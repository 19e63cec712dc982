"""The cases of the round-trip matrix: a column type of a source database and its values.

Each case is one column: its DDL at the source, the values inserted (SQL
literals), and how two values are compared (``canon``). ``refused`` names the
local databases that cannot hold some of the values exactly, with the words
the run's error must contain; every other local database must hold them exactly
(or in the representation the README's type table documents, which ``canon``
accepts and nothing else).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Any


def _text(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes) else str(v)


def _int(v: Any) -> Any:
    if isinstance(v, bytes):  # MySQL BIT as bytes
        return int.from_bytes(v, "big")
    text = str(v)
    if text in ("t", "f", "true", "false"):  # PostgreSQL boolean
        return int(text in ("t", "true"))
    return int(text)


def _bits(v: Any) -> Any:
    """MySQL BIT (bytes), PostgreSQL bit(n) ("0101"), or an integer."""
    if isinstance(v, bytes):
        return int.from_bytes(v, "big")
    if isinstance(v, str) and set(v) <= {"0", "1"}:
        return int(v, 2)
    return int(v)


def _dec(v: Any) -> Any:
    d = Decimal(_text(v))
    exact = Context(prec=max(28, len(d.as_tuple().digits)))  # normalize() alone rounds
    return ("nan",) if d.is_nan() else (d, d.normalize(exact).as_tuple())


def _float8(v: Any) -> Any:
    return repr(float(_text(v)))


def _float4(v: Any) -> Any:
    return struct.pack(">f", float(_text(v)))


def _bytes(v: Any) -> Any:
    if isinstance(v, str) and v.startswith("\\x"):
        return bytes.fromhex(v[2:])
    return bytes(v)


def _datetime(v: Any) -> Any:
    moment = datetime.fromisoformat(_text(v))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _time(v: Any) -> Any:
    text = _text(v)
    sign = -1 if text.startswith("-") else 1
    hours, minutes, seconds = text.lstrip("-").split(":")
    return sign * (int(hours) * 3600_000_000 + int(minutes) * 60_000_000
                   + round(Decimal(seconds) * 1_000_000))


def _lower(v: Any) -> Any:
    return _text(v).lower()


@dataclass(frozen=True)
class Case:
    """One column type of one source database, with its values."""

    id: str
    ddl: str
    values: tuple[str, ...]
    canon: Any = _text
    refused: dict[str, str] = field(default_factory=dict)  # local kind -> words of the error


def case(id: str, ddl: str, *values: str, canon: Any = _text, **refused: str) -> Case:
    return Case(id, ddl, tuple(values), canon, dict(refused))


MB2_MYSQL = "REPEAT(UNHEX('00FF'), 1048576)"
MB2_PG = "decode(repeat('00ff', 1048576), 'hex')"

MYSQL_CASES = [
    case("tinyint", "TINYINT", "-128", "127", "0", canon=_int),
    case("tinyint_unsigned", "TINYINT UNSIGNED", "0", "255", canon=_int),
    case("smallint", "SMALLINT", "-32768", "32767", canon=_int),
    case("smallint_unsigned", "SMALLINT UNSIGNED", "65535", canon=_int),
    case("mediumint", "MEDIUMINT", "-8388608", "8388607", canon=_int),
    case("mediumint_unsigned", "MEDIUMINT UNSIGNED", "16777215", canon=_int),
    case("int", "INT", "-2147483648", "2147483647", canon=_int),
    case("int_unsigned", "INT UNSIGNED", "4294967295", canon=_int),
    case("bigint", "BIGINT", "-9223372036854775808", "9223372036854775807", canon=_int),
    case("bigint_unsigned", "BIGINT UNSIGNED", "9007199254740993", "9223372036854775807",
         canon=_int),
    case("bigint_unsigned_max", "BIGINT UNSIGNED", "18446744073709551615", canon=_int,
         sqlite="integer beyond 64 bits"),
    case("boolean", "BOOLEAN", "0", "1", "-5", canon=_int),
    case("tinyint1", "TINYINT(1)", "1", "0", "127", canon=_int),
    case("decimal_38_10", "DECIMAL(38,10)", "12345678901234567890.1234567890",
         "-0.0000000001", "0", canon=_dec),
    case("decimal_65_30", "DECIMAL(65,30)",
         "99999999999999999999999999999999999.999999999999999999999999999999",
         "-0.000000000000000000000000000001", canon=_dec),
    case("float", "FLOAT", "3.14159274", "-1.17549435e-38", "3.4028234e+38", "1.4e-45", "0",
         canon=_float4),
    case("double", "DOUBLE", "PI()", "5e-324", "1.7976931348623157e308",
         "2.2250738585072014e-308", "0.1", "-1e-300", canon=_float8),
    case("char", "CHAR(10)", "'abc'", "''", "'ü😀'"),
    case("varchar", "VARCHAR(50)", "'tab\\there'", "'😀 4-byte'", "'quote \" \\\\ back'",
         "'\\\\N'", "''", "'line\\nbreak\\r'"),
    case("text", "TEXT", "'ünïcødé ✓ 😀'", "CONCAT('x', REPEAT('y', 60000))"),
    case("text_nul", "TEXT", "'a\\0b'", postgres="text with a NUL character"),
    case("binary", "BINARY(4)", "x'00ff0001'", canon=_bytes),
    case("varbinary", "VARBINARY(10)", "x''", "x'00'", canon=_bytes),
    case("blob", "LONGBLOB", "x'deadbeef'", MB2_MYSQL, canon=_bytes),
    case("date", "DATE", "'2024-02-29'", "'1000-01-01'", "'9999-12-31'"),
    case("datetime6", "DATETIME(6)", "'2024-03-31 02:30:00.123456'", "'1000-01-01 00:00:00'",
         "'9999-12-31 23:59:59.999999'", "'2024-10-27 02:30:00'", canon=_datetime),
    case("timestamp6", "TIMESTAMP(6) NULL", "'2024-03-31 01:30:00.5'",
         "'2024-10-27 00:59:59.999999'", "'2038-01-19 03:14:07'", canon=_datetime),
    case("time6", "TIME(6)", "'12:34:56.789'", "'00:00:00'", "'23:59:59.999999'", canon=_time),
    case("time_range", "TIME", "'-12:00:00'", "'838:59:59'", canon=_time,
         postgres="TIME outside 00:00:00-24:00:00"),
    case("year", "YEAR", "2024", "1901", "2155", "0", canon=_int),
    case("json", "JSON", "'{\"b\": 1, \"a\": [1, 2.50]}'", "'null'", "'\"123\"'",
         "'0.1000000000000000055511151231257827'", "'[]'"),
    case("uuid", "UUID", "'f47ac10b-58cc-4372-a567-0e02b2c3d479'", canon=_lower),
    case("inet6", "INET6", "'::1'", "'2001:db8::ff00:42:8329'", "'::ffff:192.0.2.1'"),
    case("enum", "ENUM('ä','b','ℂ😀')", "'ä'", "'ℂ😀'"),
    case("set", "SET('x','y','ž')", "'x,ž'", "''", "'y'"),
    case("bit8", "BIT(8)", "b'11111111'", "b'00000001'", canon=_bits),
    case("bit64", "BIT(64)", "b'1000000000000000000000000000000000000000000000000000000000000001'",
         canon=_bits, sqlite="integer beyond 64 bits"),
]

PG_CASES = [
    case("int2", "smallint", "-32768", "32767", canon=_int),
    case("int4", "integer", "-2147483648", "2147483647", canon=_int),
    case("int8", "bigint", "-9223372036854775808", "9223372036854775807", canon=_int),
    case("numeric_38_10", "numeric(38,10)", "12345678901234567890.1234567890", "-0.0000000001",
         "0", canon=_dec),
    case("numeric", "numeric", "123456789012345678901234567890.123456789", "0.5", canon=_dec),
    case("numeric_tiny", "numeric", "1e-42", canon=_dec, mysql="number beyond DECIMAL(65,30)"),
    case("numeric_nan", "numeric", "'NaN'", canon=_dec, mysql="NaN"),
    case("real", "real", "3.14", "1.17549435e-38", "3.4028235e+38", "1e-45", canon=_float4),
    case("real_negative_zero", "real", "'-0'", canon=_float4, mysql="negative zero",
         sqlite="negative zero"),
    case("double", "double precision", "pi()", "5e-324", "1.7976931348623157e308",
         "2.2250738585072014e-308", "0.1", canon=_float8),
    case("double_negative_zero", "double precision", "'-0'", canon=_float8,
         mysql="negative zero", sqlite="negative zero"),
    case("double_nan", "double precision", "'NaN'", canon=_float8, mysql="NaN", sqlite="NaN"),
    case("double_infinity", "double precision", "'Infinity'", "'-Infinity'", canon=_float8,
         mysql="infinity"),
    case("boolean", "boolean", "true", "false", canon=_int),
    case("char", "char(5)", "'ab'", "'abcde'"),
    case("varchar", "varchar(20)", "'😀 4-byte'", "''", "E'tab\\there\\r\\n'", "'\\N'"),
    case("text", "text", "'ünïcødé ✓'", "repeat('x', 70000)", "'quote \" back\\'"),
    case("bytea", "bytea", "'\\x00ff'", "''", MB2_PG, canon=_bytes),
    case("date", "date", "'2024-02-29'", "'0001-01-01'", "'9999-12-31'"),
    case("date_infinity", "date", "'infinity'", "'-infinity'", mysql="infinite date",
         sqlite="infinite date"),
    case("date_bc", "date", "'0044-03-15 BC'", mysql="BC date", sqlite="BC date"),
    case("timestamp", "timestamp(6)", "'2024-03-31 02:30:00.123456'", "'2000-01-01 00:00:00'",
         canon=_datetime),
    case("timestamp_infinity", "timestamp", "'infinity'", mysql="infinite date",
         sqlite="infinite date"),
    case("timestamptz", "timestamptz", "'2024-03-31 00:59:59.999999+00'",
         "'2024-03-31 03:30:00+02'", "'2024-10-27 02:30:00+01'", "'2024-10-27 02:30:00+02'",
         canon=_datetime),
    case("time", "time", "'12:34:56.789'", "'24:00:00'", "'00:00:00'", canon=_time),
    case("timetz", "timetz", "'12:00:00+02'", "'23:59:59.5-05:30'"),
    case("interval", "interval", "'1 mon'", "'1 year 2 mons 3 days 04:05:06.789'",
         "'-1 days'"),
    case("json", "json", "'{\"b\":1, \"a\":[1,2.50]}'", "'null'", "'\"123\"'",
         "'0.1000000000000000055511151231257827'"),
    case("jsonb", "jsonb", "'{\"b\": 1, \"a\": [1, 2.50]}'", "'null'", "'\"123\"'"),
    case("uuid", "uuid", "'f47ac10b-58cc-4372-a567-0e02b2c3d479'", canon=_lower),
    case("inet", "inet", "'192.168.0.1/24'", "'::1'"),
    case("cidr", "cidr", "'10.0.0.0/8'"),
    case("macaddr", "macaddr", "'08:00:2b:01:02:03'"),
    case("money", "money", "1234.56", "-0.01", canon=lambda v: _dec(_text(v).replace(
        "$", "").replace(",", ""))),
    case("xml", "xml", "'<a>x &amp; y</a>'"),
    case("int4range", "int4range", "'[1,10)'", "'empty'"),
    case("int_array", "integer[]", "'{1,2,3}'", "'{}'", "'{{1,2},{3,4}}'"),
    case("text_array", "text[]", r"""'{"a b",NULL,"c\"d"}'"""),
    case("bit8", "bit(8)", "B'10101010'", "B'00000001'", canon=_bits),
    case("varbit", "varbit(16)", "B'101'", "B'0001'"),
    case("enum", "syncd_mood", "'ok'", "'😀'"),
]
PG_TYPES = "CREATE TYPE syncd_mood AS ENUM ('sad', 'ok', '😀')"

SQLITE_CASES = [
    case("integer", "INTEGER", "-9223372036854775808", "9223372036854775807", canon=_int),
    case("real", "REAL", "0.1", "5e-324", "1.7976931348623157e308", "-0.0", canon=_float8),
    case("text", "TEXT", "'ü😀'", "''", "'tab\there'"),
    case("text_nul", "TEXT", "'a' || char(0) || 'b'", postgres="text with a NUL character"),
    case("blob", "BLOB", "x'00ff'", "x''", canon=_bytes),
    case("decimal", "DECIMAL(10,2)", "12.25", "7", canon=_dec),
    case("boolean", "BOOLEAN", "0", "1", canon=_int),
    case("datetime", "DATETIME", "'2024-01-01 12:00:00.000000'", "'2024-03-31 02:30:00.5'",
         canon=_datetime),
    case("date", "DATE", "'2024-02-29'"),
    case("json", "JSON", "'{\"a\": 1}'", "'null'"),
]

CASES = {"mysql": MYSQL_CASES, "postgres": PG_CASES, "sqlite": SQLITE_CASES}
