"""Value converters of the type map: one source value in, the local writer's value out.

A source value is what the source sends as text (MySQL's text protocol,
PostgreSQL's ``::text`` output), bytes for binary columns, or the value a
SQLite source stores. A converter returns what the local writer takes (text
for PostgreSQL's COPY, a bind parameter for MySQL and SQLite) or raises
``Unrepresentable`` naming the kind of value the local type cannot hold.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time
from decimal import Context, Decimal, InvalidOperation
from functools import partial
from operator import is_not
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

Converter = Callable[[Any], Any]

ZERO_DATE_PREFIX = "0000-00-00"
_PLAIN_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_FLOAT_SPECIAL = {"nan": "NaN", "infinity": "infinity", "-infinity": "-infinity",
                  "inf": "infinity", "-inf": "-infinity"}


class Unrepresentable(ValueError):
    """The local type cannot hold this value exactly; ``kind`` says what it is."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class ZeroDate(Exception):
    """A MySQL zero date: stored as NULL and counted as a warning (never an error)."""


def chain(*steps: Converter | None) -> Converter | None:
    """One converter running ``steps`` in order (None steps are left out)."""
    real = [s for s in steps if s is not None]
    if not real:
        return None
    if len(real) == 1:
        return real[0]

    def run(value: Any) -> Any:
        for step in real:
            value = step(value)
        return value

    return run


# --- text ---------------------------------------------------------------------------------

def no_nul(value: Any) -> Any:
    """PostgreSQL text cannot hold a NUL character."""
    if "\x00" in value:
        raise Unrepresentable("text with a NUL character")
    return value


def max_chars(limit: int) -> Converter:
    """Text of at most ``limit`` characters (a key column of a MySQL local table)."""

    def check(value: Any) -> Any:
        if len(value) > limit:
            raise Unrepresentable(f"text longer than {limit} characters")
        return value

    return check


def as_text(value: Any) -> Any:
    """A SQLite value of any storage class as text (floats by repr, bytes refused)."""
    if type(value) is str:
        return value
    if isinstance(value, bytes):
        raise Unrepresentable("binary value in a text column")
    return repr(value) if isinstance(value, float) else str(value)


# --- binary --------------------------------------------------------------------------------

def bytes_to_pg(value: Any) -> Any:
    """Bytes as bytea hex input."""
    if isinstance(value, str):
        raise Unrepresentable("text value in a binary column")
    return "\\x" + bytes(value).hex()


def pg_hex_to_bytes(value: Any) -> Any:
    """PostgreSQL's bytea text (hex format) as bytes."""
    return bytes.fromhex(value[2:])


def bits_from_bytes(width: int) -> Converter:
    """MySQL BIT(n) bytes as PostgreSQL bit(n) text ("0101...")."""

    def convert(value: Any) -> Any:
        return format(int.from_bytes(value, "big"), f"0{width}b")

    return convert


def int_from_bytes(value: Any) -> Any:
    """MySQL BIT(n) bytes as an integer."""
    return int.from_bytes(value, "big")


def int_from_bits(value: Any) -> Any:
    """PostgreSQL bit(n) text as an integer (MySQL BIT(n))."""
    return int(value, 2) if value else 0


# --- numbers -------------------------------------------------------------------------------

def to_int(value: Any) -> Any:
    """Integer text (or a SQLite integer) as int."""
    if type(value) is int:
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise Unrepresentable(f"{_kind(value)} in an integer column")


def int64(value: Any) -> Any:
    """An integer that fits a signed 64-bit column (SQLite INTEGER)."""
    number = to_int(value)
    if not -(2**63) <= number < 2**63:
        raise Unrepresentable("integer beyond 64 bits")
    return number


def is_int(value: Any) -> Any:
    """A SQLite source value stored in an INTEGER column must be an integer."""
    if type(value) is not int:
        raise Unrepresentable(f"{_kind(value)} in an INTEGER column")
    return value


def decimal_fits(precision: int, scale: int) -> Converter:
    """An exact number that DECIMAL(precision, scale) holds without rounding."""

    def check(value: Any) -> Any:
        text = value if isinstance(value, str) else _number_text(value)
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise Unrepresentable(f"{_kind(value)} in a numeric column") from None
        if not number.is_finite():
            raise Unrepresentable("NaN" if number.is_nan() else "infinity")
        digits = exact_normal(number).as_tuple()
        exponent = int(digits.exponent)
        fraction = max(0, -exponent)
        whole = len(digits.digits) + exponent if digits.digits != (0,) else 0
        if fraction > scale or whole > precision - scale:
            raise Unrepresentable(f"number beyond DECIMAL({precision},{scale})")
        return text if "e" not in text.lower() else format(number, "f")

    return check


def exact_normal(number: Decimal) -> Decimal:
    """``number`` without trailing zeros, never rounded (``normalize()`` alone rounds to the
    context's 28 digits)."""
    return number.normalize(Context(prec=max(28, len(number.as_tuple().digits))))


def number_text(value: Any) -> Any:
    """A number as exact decimal text (SQLite's lossless form for DECIMAL)."""
    return value if isinstance(value, str) else _number_text(value)


def _number_text(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, Decimal)):
        return str(value)
    raise Unrepresentable(f"{_kind(value)} in a numeric column")


def float_special(value: Any) -> str | None:
    """"NaN" / "infinity" / "-infinity" when ``value`` is one, else None."""
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "infinity" if value > 0 else "-infinity"
        return None
    return _FLOAT_SPECIAL.get(str(value).lower())


def finite_float(value: Any) -> Any:
    """A float MySQL can store: no NaN, no infinity, no negative zero (MySQL drops its sign)."""
    special = float_special(value)
    if special is not None:
        raise Unrepresentable(special)
    if isinstance(value, float):
        if value == 0 and math.copysign(1, value) < 0:
            raise Unrepresentable("negative zero")
    elif value.startswith("-") and float(value) == 0:
        raise Unrepresentable("negative zero")
    return value


def sqlite_float(value: Any) -> Any:
    """A float for SQLite REAL: infinity is kept; SQLite stores NaN as NULL and -0.0 as 0."""
    special = float_special(value)
    if special == "NaN":
        raise Unrepresentable("NaN")
    if special is not None:
        return float("inf") if special == "infinity" else float("-inf")
    number = float(value)
    if number == 0 and math.copysign(1, number) < 0:
        raise Unrepresentable("negative zero")
    return number


def pg_float(value: Any) -> Any:
    """A float as PostgreSQL float input (repr: exact; NaN and infinity spelled out)."""
    if isinstance(value, float):
        return float_special(value) or repr(value)
    if isinstance(value, int):
        return str(value)
    return value


def pg_bool(value: Any) -> Any:
    """A SQLite 0/1 as PostgreSQL boolean text."""
    if value in (0, 1) and not isinstance(value, float):
        return "t" if value else "f"
    raise Unrepresentable(f"{_kind(value)} {str(value)[:20]!r} in a boolean column")


def bool_to_int(value: Any) -> Any:
    """PostgreSQL boolean text ("true"/"false", or "t"/"f" from a raw read) as 1/0."""
    if value in ("true", "t"):
        return 1
    if value in ("false", "f"):
        return 0
    raise Unrepresentable(f"{_kind(value)} {str(value)[:20]!r} in a boolean column")


# --- dates and times -------------------------------------------------------------------------

def mysql_date(value: Any) -> Any:
    """MySQL date text: zero dates raise ZeroDate, dates with a zero month or day are refused."""
    if value.startswith(ZERO_DATE_PREFIX):
        raise ZeroDate()
    if value[5:7] == "00" or value[8:10] == "00":
        raise Unrepresentable("date with a zero month or day")
    return value


def shift_to_utc(zone: str) -> Converter:
    """Naive date-time text read in ``zone``, as naive UTC text."""
    tz = ZoneInfo(zone)

    def shift(value: Any) -> Any:
        moment = datetime.fromisoformat(value).replace(tzinfo=tz).astimezone(UTC)
        return moment.replace(tzinfo=None).isoformat(" ")

    return shift


def plain_date(value: Any) -> Any:
    """A PostgreSQL date that MySQL and SQLite hold: no infinity, no BC, year up to 9999."""
    if value.endswith(" BC"):
        raise Unrepresentable("BC date")
    if not _PLAIN_DATE.match(value) or (len(value) > 10 and value[10] not in " T"):
        raise Unrepresentable("infinite date" if "infinity" in value else "date after 9999")
    return value


def utc_naive(value: Any) -> Any:
    """PostgreSQL timestamptz text (session time zone UTC) without its "+00"."""
    value = plain_date(value)
    return value[:-3] if value.endswith("+00") else value


def mysql_time_of_day(value: Any) -> Any:
    """A MySQL TIME that PostgreSQL's time holds: 00:00:00 to 24:00:00."""
    hours = value.split(":", 1)[0]
    if value.startswith("-") or int(hours) > 24 or (int(hours) == 24 and value.strip(
            "0:.") != "24"):
        raise Unrepresentable("TIME outside 00:00:00-24:00:00")
    return value


# --- whole columns ----------------------------------------------------------------------------

ColumnCheck = Callable[[Iterable[Any]], bool]
_NOT_NULL = partial(is_not, None)
# A MySQL date whose text starts with a zero date or has "00" as its month or its day;
# at the start of any value of a column joined by newlines (DOTALL: a value holding a
# newline can only add a match, never hide one).
_BAD_MYSQL_DATE = re.compile(r"\n(?:0000-00-00|.{5}00|.{8}00)", re.DOTALL)


def _column_no_nul(values: Iterable[Any]) -> bool:
    try:
        return "\x00" not in "".join(filter(_NOT_NULL, values))
    except TypeError:  # a value that is not text: value by value
        return False


def _column_mysql_date(values: Iterable[Any]) -> bool:
    try:
        return _BAD_MYSQL_DATE.search("\n" + "\n".join(filter(_NOT_NULL, values))) is None
    except TypeError:
        return False


_COLUMN_CHECKS: dict[Converter, ColumnCheck] = {no_nul: _column_no_nul,
                                                mysql_date: _column_mysql_date}


def column_check(convert: Converter) -> ColumnCheck | None:
    """For a converter that only checks values (returns each value it accepts as it is): a
    test of a whole column, at C speed, true only if the converter accepts every value of it
    (NULLs aside). False says nothing: the column is then converted value by value."""
    return _COLUMN_CHECKS.get(convert)


ColumnConvert = Callable[[Sequence[Any]], Sequence[Any] | None]
_INT_TEXT = frozenset({str, int})  # int() of these is exactly what to_int returns


def _column_to_int(values: Sequence[Any]) -> Sequence[Any] | None:
    types = set(map(type, values))
    try:
        if types <= _INT_TEXT:
            return list(map(int, values))
        if types <= _INT_TEXT | {type(None)}:
            return [None if value is None else int(value) for value in values]
    except ValueError:
        pass
    return None


def _column_int64(values: Sequence[Any]) -> Sequence[Any] | None:
    out = _column_to_int(values)
    if out is None:
        return None
    numbers = list(filter(_NOT_NULL, out))
    if numbers and not (-(2**63) <= min(numbers) and max(numbers) < 2**63):
        return None
    return out


def _column_number_text(values: Sequence[Any]) -> Sequence[Any] | None:
    return values if set(map(type, values)) <= {str, type(None)} else None


_COLUMN_CONVERTS: dict[Converter, ColumnConvert] = {
    to_int: _column_to_int, int64: _column_int64, number_text: _column_number_text}


def column_convert(convert: Converter) -> ColumnConvert | None:
    """For some converters: a whole column converted at once, mostly in C; it returns what
    the converter returns for each value (NULLs stay NULL), or None when some value needs
    the converter itself (the column is then converted value by value)."""
    return _COLUMN_CONVERTS.get(convert)


# --- keys ------------------------------------------------------------------------------------

def key_parser(family: str) -> Converter:
    """Source value -> typed Python value, for keyset parameters and checkpoints."""
    return _KEYS.get(family, same)


def same(value: Any) -> Any:
    """The value as it is."""
    return value


def _key_datetime(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if value.startswith(ZERO_DATE_PREFIX):
        return None
    return datetime.fromisoformat(value)


def _key_date(value: Any) -> Any:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _key_time(value: Any) -> Any:
    return time.fromisoformat(value) if isinstance(value, str) else value


def _key_bytes(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("\\x"):
        return bytes.fromhex(value[2:])
    return value


_KEYS: dict[str, Converter] = {
    "int": lambda v: int(v) if isinstance(v, str) else v,
    "decimal": lambda v: Decimal(v) if isinstance(v, str) else v,
    "float": lambda v: float(v) if isinstance(v, str) else v,
    "datetime": _key_datetime,
    "date": _key_date,
    "time": _key_time,
    "binary": _key_bytes,
    "uuid": lambda v: UUID(v) if isinstance(v, str) else v,
    "bool": lambda v: v in ("true", "t") if isinstance(v, str) else bool(v),
}


def _kind(value: Any) -> str:
    return {str: "text", bytes: "binary value", int: "integer", float: "float"}.get(
        type(value), type(value).__name__)


def canonical(family: str) -> Converter:
    """A value of either database, read or converted, in one comparable form (keys)."""
    return _CANON.get(family, _canon_text)


def _canon_text(value: Any) -> Any:
    return bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else str(value)


def _canon_datetime(value: Any) -> Any:
    if isinstance(value, str):
        if value.startswith(ZERO_DATE_PREFIX):
            return value
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _canon_bytes(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("\\x"):
        return bytes.fromhex(value[2:])
    return bytes(value) if isinstance(value, (bytearray, memoryview)) else value


_CANON: dict[str, Converter] = {
    "int": lambda v: int(str(v)), "year": lambda v: int(str(v)),
    "decimal": lambda v: exact_normal(Decimal(str(v))),
    "money": lambda v: exact_normal(Decimal(str(v))),
    "float4": float, "float8": float,
    "datetime": _canon_datetime, "timestamp_utc": _canon_datetime,
    "timestamptz": _canon_datetime,
    "date": lambda v: date.fromisoformat(v) if isinstance(v, str) else v,
    "binary": _canon_bytes,
    "uuid": lambda v: str(v).lower(),
}
