"""What "equal" means, per type family: the canonical form of a value on either side.

``syncd verify`` compares a local table with its source. A value reaches the
local database through the type map (``typemap.plan_column``): read as the
source's own text, converted, stored in the local type, which may show it
differently (``7`` stored in ``numeric(10,2)`` reads back ``7.00``). Every rule
here maps a value of either side, in any of the forms it can take (the source's
text, the converter's output, the local database's text, a SQLite value), to one
canonical form:

- ``canonical_text(rule, value, style)``: the text that the checksum hashes. The
  same text is computed in SQL by ``checksum.py`` for MySQL/MariaDB and
  PostgreSQL; for SQLite this function itself is registered on the connection.
  Only floats depend on ``style`` (the other database's way of writing them).
- ``equal_form(rule, value)``: what two rows are compared by, value by value,
  when their checksums differ. It is exact: floats by their bits, JSON as
  documents (numbers as decimals), decimals by value (scale does not count),
  date-times to the microsecond in UTC, NULL never equal to an empty string.

A checksum that differs for equal values only costs a row-by-row comparison;
the row-by-row comparison alone decides what is reported as different.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Context, Decimal, InvalidOperation, localcontext
from typing import Any

from syncd.engine.typemap import ColumnPlan
from syncd.engine.values import ZERO_DATE_PREFIX, float_special, number_text

NULL_MARK = "N"  # the checksum text of NULL (no canonical text is this)


@dataclass(frozen=True)
class Rule:
    """How one column's values are compared: its canonical family and details."""

    name: str  # int, uint, bits, decimal, float8, float4, text, json, uuid, binary,
    #            date, datetime, time
    width: int = 0  # bits: the width of a PostgreSQL bit(n) column
    scale: int | None = None  # decimal: both sides write this many decimals (None: trimmed)

    @property
    def prefixed(self) -> bool:
        """Free text: its length goes before it in the row's checksum text."""
        return self.name in ("text", "json")


_RULE_OF_FAMILY = {
    "int": "int", "year": "int", "bool": "int", "decimal": "decimal", "money": "decimal",
    "float8": "float8", "float4": "float4", "string": "text", "enum": "text", "set": "text",
    "pgtext": "text", "inet": "text", "any": "text", "varbit": "text", "binary": "binary",
    "date": "date", "datetime": "datetime", "timestamp_utc": "datetime",
    "timestamptz": "datetime", "time": "time", "pgtime": "time", "json": "json",
    "jsonb": "json", "uuid": "uuid", "unsupported": "binary",
}


def rule_for(plan: ColumnPlan, local_scale: int | None = None) -> Rule:
    """The comparison rule of a column copied by ``plan``.

    ``local_scale``: the scale the local column declares (decimal). When the source
    writes the same number of decimals, decimals are compared as written (cheaper in
    SQL than trimming zeros); otherwise without trailing zeros.
    """
    if plan.family == "bit":
        if plan.source.dialect == "mysql":
            return Rule("uint")
        return Rule("bits", plan.source.precision or plan.source.length or 1)
    if plan.family == "decimal" and local_scale is not None and (
            plan.source.dialect == "sqlite" or plan.source.scale == local_scale):
        return Rule("decimal", scale=local_scale)
    return Rule(_RULE_OF_FAMILY.get(plan.family, "text"))


# --- canonical text (checksums) ------------------------------------------------------------

def canonical_text(rule: Rule, value: Any, style: str = "postgresql") -> str | None:
    """The checksum text of ``value`` (None for NULL); ``style``: how floats are written."""
    if value is None:
        return None
    if rule.name in ("float8", "float4"):
        return float_text(_float(rule, value), style)
    return _TEXT[rule.name](value, rule)


def row_text(rules: list[Rule], values: Any, style: str) -> str:
    """The checksum text of a row: each value, "N" for NULL; free text preceded by its
    length as a field of its own (so a "|" inside it cannot shift the fields)."""
    parts = []
    for rule, value in zip(rules, values):
        text = canonical_text(rule, value, style)
        if text is None:
            parts.append(NULL_MARK)
        elif rule.prefixed:
            parts += [str(len(text)), text]
        else:
            parts.append(text)
    return "|".join(parts)


def _as_str(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "surrogateescape")
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _int_text(value: Any, rule: Rule) -> str:
    if isinstance(value, str) and value in ("t", "f", "true", "false"):
        return "1" if value in ("t", "true") else "0"
    return str(int(_as_str(value)))


def _uint_text(value: Any, rule: Rule) -> str:
    """MySQL BIT(n): bytes at the source, bit text in PostgreSQL, an integer elsewhere."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return str(int.from_bytes(bytes(value), "big"))
    if isinstance(value, str):
        return str(int(value, 2)) if value else "0"
    return str(int(value))


def _bits_text(value: Any, rule: Rule) -> str:
    """PostgreSQL bit(n): its "0101" text (MySQL BIT(n) locally: bytes or an integer)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = int.from_bytes(bytes(value), "big")
    if isinstance(value, int):
        return format(value, f"0{rule.width}b")
    return str(value)


def _decimal_text(value: Any, rule: Rule) -> str:
    text = value if isinstance(value, str) else number_text(value)
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    if number.is_nan():
        return "NaN"
    if number.is_infinite():
        return "Infinity" if number > 0 else "-Infinity"
    if rule.scale is not None:
        with localcontext(Context(prec=max(len(number.as_tuple().digits), 1) + rule.scale)):
            fixed = number.quantize(Decimal(1).scaleb(-rule.scale))
        return format(abs(fixed) if fixed == 0 else fixed, "f") if fixed == number else text
    if number == 0:
        return "0"
    digits = format(number, "f")  # exact: normalize() would round to 28 digits
    return digits.rstrip("0").rstrip(".") if "." in digits else digits


def _binary_text(value: Any, rule: Rule) -> str:
    if isinstance(value, str):
        return value[2:].lower() if value.startswith("\\x") else value.encode().hex()
    return bytes(value).hex()


def _date_text(value: Any, rule: Rule) -> str | None:
    text = _as_str(value)
    return None if text.startswith(ZERO_DATE_PREFIX) else text


def _datetime_text(value: Any, rule: Rule) -> str | None:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC, always six decimals (as MariaDB writes a
    DATETIME(6): the cheapest form in its SQL); infinite, BC or five-digit years as
    their own text."""
    text = _as_str(value)
    if text.startswith(ZERO_DATE_PREFIX):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} {moment.hour:02d}:"
            f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}")


_TIME = re.compile(r"(-?)(\d+):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$")


def _time_text(value: Any, rule: Rule) -> str:
    """``[-]HH:MM:SS.ffffff`` (MySQL TIME ranges beyond 24 hours kept)."""
    text = _as_str(value)
    match = _TIME.match(text)
    if not match:
        return text
    sign, hours, minutes, seconds, fraction = match.groups()
    return f"{sign}{int(hours):02d}:{minutes}:{seconds}.{(fraction or '').ljust(6, '0')}"


_TEXT: dict[str, Callable[[Any, Rule], str | None]] = {
    "int": _int_text, "uint": _uint_text, "bits": _bits_text, "decimal": _decimal_text,
    "text": lambda v, r: _as_str(v), "json": lambda v, r: _as_str(v),
    "uuid": lambda v, r: _as_str(v).lower(), "binary": _binary_text, "date": _date_text,
    "datetime": _datetime_text, "time": _time_text,
}


# --- floats --------------------------------------------------------------------------------

def _float(rule: Rule, value: Any) -> float:
    special = float_special(value)
    if special is not None:
        return {"NaN": float("nan"), "infinity": float("inf"),
                "-infinity": float("-inf")}[special]
    number = float(_as_str(value))
    if rule.name == "float4":  # the exact value of the 4-byte float, however it was written
        number = struct.unpack(">f", struct.pack(">f", number))[0]
    return number


def float_text(number: float, style: str) -> str:
    """A float as PostgreSQL or MySQL/MariaDB write it (shortest digits), "e+" as "e".

    PostgreSQL uses an exponent below 1e-4 and from 1e15; MariaDB below 1e-15, and
    from 1e15 only when the digits would need trailing zeros.
    """
    if number != number:
        return "NaN"
    if number in (float("inf"), float("-inf")):
        return "Infinity" if number > 0 else "-Infinity"
    sign = "-" if str(number).startswith("-") else ""
    digits, point = _shortest(abs(number))
    if digits == "0":
        return sign + "0"
    if style == "mysql":
        exponential = point < -14 or (point > 15 and point > len(digits))
        exp_text = str(point - 1)
    else:
        exponential = point - 1 < -4 or point - 1 >= 15
        exp_text = f"{point - 1:+03d}".replace("+", "")
    if exponential:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{exp_text}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _shortest(number: float) -> tuple[str, int]:
    """The shortest digits that read back as ``number``, and the decimal point's position."""
    mantissa, _, exponent = f"{number!r}".partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    point = len(whole) + (int(exponent) if exponent else 0)
    if not digits:
        return "0", 1
    point -= len(whole + fraction) - len((whole + fraction).lstrip("0"))
    return digits.rstrip("0") or "0", point


# --- equality ------------------------------------------------------------------------------

def equal_form(rule: Rule, value: Any) -> Any:
    """What a value is compared by, row by row (None for NULL)."""
    if value is None:
        return None
    if rule.name in ("float8", "float4"):
        return repr(_float(rule, value))
    if rule.name == "json":
        return _document(_as_str(value))
    return canonical_text(rule, value)


def _document(text: str) -> Any:
    """A JSON document in a comparable form (objects by key, numbers as decimals)."""
    try:
        parsed = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        return ("text", text)
    return ("json", _normal(parsed))


def _normal(node: Any) -> Any:
    if isinstance(node, dict):
        return ("object", tuple(sorted((k, _normal(v)) for k, v in node.items())))
    if isinstance(node, list):
        return ("array", tuple(_normal(v) for v in node))
    if isinstance(node, Decimal):
        return ("number", _decimal_text(node, Rule("decimal")))
    return (type(node).__name__, node)
