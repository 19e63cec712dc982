"""Pure query builders: Select objects, no connection needed (tested by compiling them).

Keyset predicates are written out as ``c > :c OR (c = :c AND pk > :pk)``, not as a
row-value comparison, because MariaDB uses an index only for the written-out form.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table


def keyset_after(columns: Sequence[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``columns``.

    (a, b, c) > (1, 2, 3) becomes a > 1 OR (a = 1 AND b > 2) OR (a = 1 AND b = 2 AND c > 3).
    """
    if len(columns) != len(values) or not columns:
        raise ValueError("keyset_after needs as many values as columns")
    terms = []
    for i, column in enumerate(columns):
        equal = [columns[j] == values[j] for j in range(i)]
        terms.append(and_(*equal, column > values[i]) if equal else column > values[i])
    return or_(*terms) if len(terms) > 1 else terms[0]


def incremental_batch(
    table: Table, columns: Sequence[str], cursor: str, pk: Sequence[str],
    after: Sequence[Any] | None, lower: Any, limit: int,
    read: Sequence[ColumnElement[Any]] | None = None,
) -> Select[Any]:
    """Next batch of changed rows in (cursor, pk) order.

    ``after``: the (cursor, *pk) of the last row read, or None on the first batch;
    ``lower``: on the first batch, read rows with cursor >= lower (None: from the start);
    ``read``: what to select for the columns (default: the columns themselves).
    """
    cur = table.c[cursor]
    order = [cur, *(table.c[name] for name in pk)]
    query = select(*(read or [table.c[name] for name in columns]))
    if after is not None:
        query = query.where(keyset_after(order, after))
    elif lower is not None:
        query = query.where(cur >= lower)
    else:
        query = query.where(cur.is_not(None))
    return query.order_by(*order).limit(limit)


def keyset_upto(columns: Sequence[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows up to ``values`` included, in the order of ``columns`` (the end of a key range).

    (a, b) <= (1, 2) becomes a < 1 OR (a = 1 AND b <= 2).
    """
    if len(columns) != len(values) or not columns:
        raise ValueError("keyset_upto needs as many values as columns")
    terms = []
    last = len(columns) - 1
    for i, column in enumerate(columns):
        equal = [columns[j] == values[j] for j in range(i)]
        bound = column <= values[i] if i == last else column < values[i]
        terms.append(and_(*equal, bound) if equal else bound)
    return or_(*terms) if len(terms) > 1 else terms[0]


def full_scan(table: Table, columns: Sequence[str], pk: Sequence[str],
              after: Sequence[Any] | None,
              read: Sequence[ColumnElement[Any]] | None = None,
              upto: Sequence[Any] | None = None) -> Select[Any]:
    """All rows in primary-key order, after ``after`` (a resumed full load) and up to
    ``upto`` included (one key range of a split load)."""
    keys = [table.c[name] for name in pk]
    query = select(*(read or [table.c[name] for name in columns]))
    if after is not None:
        query = query.where(keyset_after(keys, after))
    if upto is not None:
        query = query.where(keyset_upto(keys, upto))
    return query.order_by(*keys)


def key_batch(table: Table, pk: Sequence[str], after: Sequence[Any] | None,
              limit: int) -> Select[Any]:
    """The next ``limit`` primary keys of ``table`` in key order."""
    keys = [table.c[name] for name in pk]
    query = select(*keys)
    if after is not None:
        query = query.where(keyset_after(keys, after))
    return query.order_by(*keys).limit(limit)


def keys_in(table: Table, pk: Sequence[str], keys: Sequence[Sequence[Any]]) -> ColumnElement[bool]:
    """Predicate: the row's primary key is one of ``keys``."""
    if len(pk) == 1:
        return table.c[pk[0]].in_([k[0] for k in keys])
    return tuple_(*(table.c[name] for name in pk)).in_([tuple(k) for k in keys])


def existing_keys(table: Table, pk: Sequence[str], keys: Sequence[Sequence[Any]],
                  read: Sequence[ColumnElement[Any]] | None = None) -> Select[Any]:
    """Which of ``keys`` exist in ``table``."""
    return select(*(read or [table.c[name] for name in pk])).where(keys_in(table, pk, keys))


def keys_listed(table: Table, pk: Sequence[str],
                keys: Sequence[Sequence[Any]]) -> ColumnElement[bool]:
    """Predicate: the row's primary key is one of ``keys`` (``keys_in``, cheaper to build).

    A one-column integer key is written as literals (each made by ``int``): runs of
    consecutive keys as ``BETWEEN`` ranges, which hold exactly those keys and cost the
    database one index range each, the other keys as one ``IN`` list. Ten thousand bound
    parameters would cost more to compile and escape than the database takes to answer.
    """
    if len(pk) == 1 and all(type(k[0]) is int for k in keys):
        column = table.c[pk[0]]
        ranges, singles = integer_runs(sorted(int(k[0]) for k in keys))
        parts = [column.between(literal_column(str(low)), literal_column(str(high)))
                 for low, high in ranges]
        if singles:
            numbers = ", ".join(map(str, singles))
            parts.append(column.op("IN")(literal_column(f"({numbers})")))
        return or_(*parts) if parts else false()
    return keys_in(table, pk, keys)


def integer_runs(numbers: Sequence[int], shortest: int = 3,
                 ) -> tuple[list[tuple[int, int]], list[int]]:
    """Sorted distinct integers as runs of consecutive values (at least ``shortest``
    long, as (first, last)) and the values outside such runs.

    A slice whose ends are as far apart as its length is one run: halving the slices
    that are not finds the runs in a few steps when the keys are dense.
    """
    runs: list[list[int]] = []  # [first index, end index]
    pending = [(0, len(numbers))]
    while pending:
        lo, hi = pending.pop()
        if hi - lo == 0:
            continue
        if numbers[hi - 1] - numbers[lo] == hi - 1 - lo:
            if runs and numbers[runs[-1][1] - 1] + 1 == numbers[lo]:
                runs[-1][1] = hi
            else:
                runs.append([lo, hi])
            continue
        mid = (lo + hi) // 2
        pending += [(mid, hi), (lo, mid)]  # the lower half first
    ranges: list[tuple[int, int]] = []
    singles: list[int] = []
    for lo, hi in runs:
        if hi - lo >= shortest:
            ranges.append((numbers[lo], numbers[hi - 1]))
        else:
            singles.extend(numbers[lo:hi])
    return ranges, singles


def count_null_cursor(table: Table, cursor: str) -> Select[Any]:
    """How many rows have a NULL cursor (incremental runs cannot see them)."""
    return select(func.count()).select_from(table).where(table.c[cursor].is_(None))


def max_cursor(table: Table, cursor: str) -> Select[Any]:
    """The highest cursor value of the table."""
    return select(func.max(table.c[cursor]))


def row_count(table: Table) -> Select[Any]:
    """Number of rows."""
    return select(func.count()).select_from(table)


_MYSQL_TABLES = sql_table("TABLES", sql_column("TABLE_SCHEMA"), sql_column("TABLE_NAME"),
                          sql_column("TABLE_ROWS"), sql_column("AVG_ROW_LENGTH"),
                          schema="information_schema")


def mysql_row_width(source: Table) -> Select[Any]:
    """MySQL's estimates of the rows and the average row's bytes, from its statistics
    (no row: a view)."""
    t = _MYSQL_TABLES.c
    schema = source.schema if source.schema is not None else func.database()
    return select(t.TABLE_ROWS, t.AVG_ROW_LENGTH).where(t.TABLE_SCHEMA == schema,
                                                        t.TABLE_NAME == source.name)


def diff_counts(new: Table, old: Table, pk: Sequence[str], columns: Sequence[str],
                as_text: Collection[str] = ()) -> Select[Any]:
    """One row: the rows of ``new``, of ``old``, matched by key, and matched but changed,
    when ``new`` replaces ``old`` (inserted = new - matched, deleted = old - matched): one
    join instead of three.

    ``as_text``: columns compared as text (types without an equality operator).
    """
    join_on = and_(*(new.c[name] == old.c[name] for name in pk))
    shared = [name for name in columns if name in old.c and name not in pk]

    def value(table: Table, name: str) -> Any:
        return cast(table.c[name], Text) if name in as_text else table.c[name]

    changed = or_(*(value(new, n).is_distinct_from(value(old, n)) for n in shared)) if shared \
        else ~true()
    matched = select(func.count().label("matched"),
                     func.coalesce(func.sum(case((changed, 1), else_=0)), 0).label("changed")
                     ).select_from(new.join(old, join_on)).subquery()
    return select(select(func.count()).select_from(new).scalar_subquery(),
                  select(func.count()).select_from(old).scalar_subquery(),
                  matched.c.matched, matched.c.changed)
