"""Turning batches of source rows into the local writer's values, column by column.

Each column's converter comes from the type map (``typemap.plan_column``); only
columns that need one are touched, so most values pass through as the source
sent them. A value the local type cannot hold exactly fails the run, naming the
job, the column and the row's key, or becomes NULL with a warning when the job
says ``on_unrepresentable = "null"``. MySQL zero dates become NULL with a warning.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

from syncd.engine.errors import ValueUnrepresentable
from syncd.engine.spec import Progress
from syncd.engine.typemap import ColumnPlan
from syncd.engine.values import (
    Converter,
    Unrepresentable,
    ZeroDate,
    column_check,
    column_convert,
)


class RowConverter:
    """Converts batches of source rows (in plan order) for the local writer."""

    def __init__(self, job: str, plans: Sequence[ColumnPlan], primary_key: Sequence[str],
                 progress: Progress, on_unrepresentable: str = "fail") -> None:
        self.job = job
        self.plans = list(plans)
        self.names = [p.name for p in self.plans]
        self.pk_index = [self.names.index(name) for name in primary_key]
        self.progress = progress
        self.store_null = on_unrepresentable == "null"
        self.touched = [(i, p.convert) for i, p in enumerate(self.plans) if p.convert]
        # Columns whose converter only checks values (and can test a whole column), grouped.
        self.groups: dict[Converter, list[int]] = {}
        for i, convert in self.touched:
            if column_check(convert) is not None:
                self.groups.setdefault(convert, []).append(i)

    def __call__(self, rows: Sequence[Sequence[Any]],
                 trusted: Collection[Converter] = ()) -> list[Any]:
        """The rows ready for the writer (tuples or lists, in column order).

        ``trusted``: check-only converters whose columns are left as they are, because the
        caller checks the result itself (and converts again without them if it fails)."""
        failing = self._unproven(rows, trusted)
        touched = [(i, convert) for i, convert in self.touched if i in failing]
        if not touched:
            return [row if type(row) is tuple else tuple(row) for row in rows]
        out = [list(row) for row in rows]
        for i, convert in touched:
            try:
                for row in out:
                    value = row[i]
                    if value is not None:
                        row[i] = convert(value)
            except (Unrepresentable, ZeroDate):
                self._slow_column(out, rows, i, convert)
        return out

    def columns(self, rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
        """The rows' values ready for the writer, column by column (the same values as
        ``__call__``): a column that needs no conversion is passed on as it came."""
        columns: list[Sequence[Any]] = list(zip(*rows)) if rows else \
            [() for _ in self.names]
        failing = self._unproven(rows, ())
        for i, convert in self.touched:
            if i not in failing:
                continue
            whole = column_convert(convert)
            done = whole(columns[i]) if whole is not None else None
            if done is None:
                try:
                    done = [None if value is None else convert(value) for value in columns[i]]
                except (Unrepresentable, ZeroDate):
                    done = self._slow_values(rows, i, convert)
            columns[i] = done
        return columns

    def _unproven(self, rows: Sequence[Sequence[Any]], trusted: Collection[Converter],
                  ) -> set[int]:
        """The touched columns not shown to pass as they are: a column's converter that only
        checks is tested on all columns it serves at once, then (if that fails) column by
        column; the others are converted value by value."""
        grouped = {i for columns in self.groups.values() for i in columns}
        out = {i for i, _ in self.touched if i not in grouped}
        for convert, columns in self.groups.items():
            check = column_check(convert)
            if convert in trusted or check is None:
                continue
            if len(columns) > 1 and check(chain.from_iterable(map(itemgetter(*columns), rows))):
                continue
            out.update(i for i in columns if not check(map(itemgetter(i), rows)))
        return out

    def _slow_column(self, out: list[list[Any]], rows: Sequence[Sequence[Any]], i: int,
                     convert: Any) -> None:
        """Convert column ``i`` again value by value, handling each value that fails."""
        for row, value in zip(out, self._slow_values(rows, i, convert)):
            row[i] = value

    def _slow_values(self, rows: Sequence[Sequence[Any]], i: int, convert: Any) -> list[Any]:
        """Column ``i`` converted value by value, handling each value that fails."""
        name = self.names[i]
        out: list[Any] = []
        for source in rows:
            value = source[i]
            if value is None:
                out.append(None)
                continue
            try:
                out.append(convert(value))
            except ZeroDate:
                out.append(None)
                self.progress.warn(f'zero dates in column "{name}" stored as NULL')
            except Unrepresentable as exc:
                if not self.store_null:
                    raise ValueUnrepresentable(self._message(name, exc.kind, source)) from exc
                out.append(None)
                self.progress.warn(
                    f'column "{name}": {exc.kind} stored as NULL (on_unrepresentable = "null")')
        return out

    def _message(self, column: str, kind: str, row: Sequence[Any]) -> str:
        key = ", ".join(f"{self.names[j]}={_short(row[j])}" for j in self.pk_index)
        local = self.plans[self.names.index(column)].ddl
        return (
            f'job "{self.job}": column "{column}", row with {key}: {kind} cannot be stored '
            f'exactly in the local type {local}; nothing of this batch was written (set '
            'on_unrepresentable = "null" to store NULL instead and count a warning)'
        )


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 100 else text[:100] + "..."
