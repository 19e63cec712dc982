"""MySQL -> PostgreSQL: each row's line of COPY text, written by the source server.

A Python driver parses every value of every row, and the values are then joined
into COPY text: most of a full load's Python work. When every column of the table
is one whose text MySQL writes the same inside ``CONCAT_WS`` as on the wire (the
families in ``LINE_FAMILIES``, with no converter beyond the type map's checks),
the source is asked for one value per row instead, the row's COPY line:
text columns escaped (backslash, tab, newline, carriage return), NULL as ``\\N``.

The type map's checks still decide: a value they might refuse is a NUL character
(in the line as it is) or a date with a zero month or day (the server starts that
row's line with a NUL character), so one scan of a batch's text finds them; such a
batch is decoded back into its values (the escaping is undone exactly) and converted
value by value, as without lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import ColumnElement, func, literal, or_
from sqlalchemy.sql.expression import ColumnClause

from syncd.engine.load import CopyData, decode_copy_line
from syncd.engine.typemap import ColumnPlan
from syncd.engine.values import mysql_date, no_nul

# Families whose MySQL text is the same in CONCAT_WS as in a result set, and that
# PostgreSQL reads from that text as the type map's own path writes it.
LINE_FAMILIES = {"int", "decimal", "string", "date", "datetime", "timestamp_utc", "year",
                 "enum", "set"}
_ESCAPED = {"string", "enum", "set"}  # families whose values may hold \ tab newline CR
_DATES = {"date", "datetime", "timestamp_utc"}
MARK = "\x00"  # first character of a line that the type map's checks must see


def lines_possible(plans: Sequence[ColumnPlan]) -> bool:
    """True if every column can travel inside the server's line."""
    return bool(plans) and all(
        p.source.dialect == "mysql" and p.family in LINE_FAMILIES and p.read == "raw"
        and p.convert in (None, no_nul, mysql_date) for p in plans)


def line_column(columns: Sequence[ColumnClause[Any]], plans: Sequence[ColumnPlan],
                charset: str) -> ColumnElement[Any]:
    """The select-list item: the row's COPY text line (without its newline)."""
    fields: list[ColumnElement[Any]] = []
    suspect: list[ColumnElement[Any]] = []
    for col, plan in zip(columns, plans):
        value: ColumnElement[Any] = col
        if plan.family in _ESCAPED:
            # In the connection's character set, as the server would send the value;
            # one collation for all, whatever the columns' own.
            value = func.convert(_Using(col, charset))
            for old, new in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
                value = func.replace(value, literal(old), literal(new))
        if plan.convert is mysql_date:
            suspect.append(or_(func.month(col) == 0, func.dayofmonth(col) == 0))
        fields.append(func.ifnull(value, literal("\\N")))
    line = func.concat_ws(literal("\t"), *fields)
    if suspect:
        line = func.concat(func.if_(or_(*suspect), literal(MARK), literal("")), line)
    return line.label("syncd_line")


class _Using(ColumnElement[Any]):
    """``col USING charset``: the argument of MySQL's CONVERT()."""

    inherit_cache = False

    def __init__(self, col: ColumnClause[Any], charset: str) -> None:
        self.col = col
        self.charset = charset


def _compile_using(element: _Using, compiler: Any, **kw: Any) -> str:
    charset = element.charset
    if not charset.replace("_", "").isalnum():
        raise ValueError(f"unexpected character set {charset!r}")
    return f"{compiler.process(element.col, **kw)} USING {charset}"


def _register() -> None:
    from sqlalchemy.ext.compiler import compiles

    compiles(_Using)(_compile_using)


_register()


def key_of_line(line: str, pk_index: Sequence[int], key_plans: Sequence[ColumnPlan],
                ) -> tuple[Any, ...]:
    """The primary key of a line, as the checkpoint keeps it."""
    values = decode_copy_line(line.removeprefix(MARK))
    return tuple(plan.key(values[i]) for plan, i in zip(key_plans, pk_index))


def batch_text(rows: Sequence[Sequence[Any]]) -> str | None:
    """The batch's COPY text, or None if a line carries the mark (checks must run)."""
    text = "\n".join(map(itemgetter(0), rows)) + "\n"
    return None if MARK in text else text


def batch_values(rows: Sequence[Sequence[Any]]) -> list[list[str | None]]:
    """The batch's rows as the values the server wrote (escaping undone, NULL as None)."""
    return [decode_copy_line(row[0].removeprefix(MARK)) for row in rows]


def copy_data(text: str, rows: int) -> CopyData:
    return CopyData(text, "text", rows)
