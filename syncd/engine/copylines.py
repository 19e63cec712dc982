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

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import ColumnElement, func, literal, or_, select
from sqlalchemy.sql.expression import ColumnClause, FromClause

from syncd.engine.errors import SyncError
from syncd.engine.load import CopyData, decode_copy_line
from syncd.engine.typemap import ColumnPlan
from syncd.engine.values import mysql_date, no_nul

# Families whose MySQL text is the same in CONCAT_WS as in a result set, and that
# PostgreSQL reads from that text as the type map's own path writes it.
LINE_FAMILIES = {"int", "decimal", "string", "date", "datetime", "timestamp_utc", "year",
                 "enum", "set"}
_ESCAPED = {"string", "enum", "set"}  # families whose values may hold \ tab newline CR
MARK = "\x00"  # first character of a line that the type map's checks must see
# Rows wider than this on average (MySQL's statistics) are read as values: the server's
# escaping of long texts costs more than Python's work per row saves (measured: rows of
# 100 bytes load 2x faster as lines, rows of 64 KB 2.4x slower).
WIDEST_LINE = 4096


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
    compiles(_GroupConcat)(_compile_group_concat)


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


# --- batches by key range, each one row of the server's making ------------------------------

FIRST_SPAN = 16  # keys in the first range: how wide rows are is not known yet
GROWTH = 8  # a range is at most this many times the previous one


@dataclass
class Grouped:
    """One batch read as one value: its lines joined by newlines (no final newline)."""

    text: str
    rows: int
    key: tuple[Any, ...]  # the range's last key: the checkpoint

    def line_rows(self) -> list[tuple[str]]:
        return [(line,) for line in self.text.split("\n")]


def ranges_possible(plans: Sequence[ColumnPlan], key: Sequence[str]) -> bool:
    """A single integer key: batches can be read as key ranges, each one grouped row."""
    by_name = {p.name: p for p in plans}
    return len(key) == 1 and by_name[key[0]].family == "int"


class _GroupConcat(ColumnElement[Any]):
    """``GROUP_CONCAT(expr SEPARATOR <newline>)``."""

    inherit_cache = False

    def __init__(self, expr: ColumnElement[Any]) -> None:
        self.expr = expr


def _compile_group_concat(element: _GroupConcat, compiler: Any, **kw: Any) -> str:
    return f"GROUP_CONCAT({compiler.process(element.expr, **kw)} SEPARATOR '\n')"


def read_ranges(run: Callable[[Any], list[Any]], table: FromClause, key: str,
                line: ColumnElement[Any], after: int | None, upto: int | None,
                batch_size: int, largest: int) -> Iterator[Grouped]:
    """The rows with ``after`` < key <= ``upto`` in ranges of the key, each range's lines
    grouped into one value by the server: nothing is parsed per row here.

    ``run(query)`` runs a query in the reading transaction (one snapshot) and returns its
    rows; ``largest`` is the most a grouped value may hold (the session's
    ``group_concat_max_len``: the batch's bytes at most, below ``max_allowed_packet``).
    A range's size follows the density of the keys and the width of the rows, so a batch
    holds about ``batch_size`` rows (more where the keys turn dense) and less than
    ``largest`` bytes: a range that reaches it is cut by the server, then halved and read
    again. After a gap in the keys, ranges start small again.
    """
    col = table.c[key]
    top = select(func.max(col))
    if after is not None:
        top = top.where(col > after)
    if upto is not None:
        top = top.where(col <= upto)
    last = run(top)[0][0]
    if last is None:
        return
    last = int(last)
    lo = int(after) if after is not None else _first(run, col, None) - 1
    span = start = min(FIRST_SPAN, batch_size)
    while lo < last:
        hi = min(last, lo + span)
        count, text = run(select(func.count(), _GroupConcat(line))
                          .select_from(table).where(col > lo, col <= hi))[0]
        count = int(count)
        if count and (text is None or len(text) >= largest
                      or text.count("\n") + 1 != count):
            if span == 1:  # one row is more than a value may hold
                raise SyncError(f"the row with {key} = {hi} is larger than MySQL lets one "
                                "value be (max_allowed_packet): raise max_allowed_packet")
            span = max(1, span // 2)  # cut at group_concat_max_len: smaller, again
            continue
        if count:
            yield Grouped(text, count, (hi,))
            width = max(1, len(text) // count)
            want = max(1, min(batch_size, largest // 2 // width))
            span = max(1, min(span * GROWTH, span * want // count))
            lo = hi
        else:  # a gap in the keys: on to the next key there is
            nxt = _first(run, col, hi)
            lo = last if nxt is None else max(hi, nxt - 1)
            span = start


def _first(run: Callable[[Any], list[Any]], col: Any, above: int | None) -> Any:
    query = select(func.min(col))
    if above is not None:
        query = query.where(col > above)
    value = run(query)[0][0]
    return None if value is None else int(value)


_register()
