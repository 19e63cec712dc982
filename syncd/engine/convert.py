"""Turning source rows into values the local database accepts.

Naive DATETIME values are read in the source's time zone and stored in UTC;
MySQL zero dates (which PyMySQL returns as strings) become NULL with a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table
from sqlalchemy import types as sqltypes

from syncd.engine.schema import SourceTable
from syncd.engine.spec import Progress

Converter = Callable[[Any], Any]
ZERO_DATE_PREFIX = "0000-00-00"


class RowConverter:
    """Converts batches of source rows, counting zero dates in ``progress``."""

    def __init__(self, src: SourceTable, local: Table, source_tz: str, progress: Progress,
                 from_mysql: bool = True) -> None:
        self.progress = progress
        self.from_mysql = from_mysql
        self.names = list(src.columns)
        tz = ZoneInfo(source_tz)
        self.converters: list[Converter | None] = [
            self._converter(name, src.table.c[name].type, local.c[name].type, tz)
            for name in self.names
        ]
        self.identity = not any(self.converters)

    def _converter(self, name: str, source: Any, local: Any, tz: ZoneInfo) -> Converter | None:
        if isinstance(source, (sqltypes.DateTime, sqltypes.Date)):
            return self._dates(name, source, local, tz)
        if isinstance(local, sqltypes.String) and not isinstance(source, sqltypes.String):
            return _as_text
        if isinstance(local, sqltypes.Text) and not isinstance(source, sqltypes.String):
            return _as_text
        return None

    def _dates(self, name: str, source: Any, local: Any, tz: ZoneInfo) -> Converter | None:
        keep_aware = bool(getattr(local, "timezone", False))
        shift = isinstance(source, sqltypes.DateTime) and not getattr(source, "timezone", False) \
            and tz.key != "UTC"
        source_aware = bool(getattr(source, "timezone", False))
        if not shift and not self.from_mysql and source_aware == keep_aware:
            return None
        message = f'zero dates in column "{name}" stored as NULL'
        progress = self.progress

        def convert(value: Any) -> Any:
            if value is None:
                return None
            if isinstance(value, str):  # MySQL zero date
                progress.warn(message)
                return None
            if isinstance(value, datetime):
                if value.tzinfo is None and shift:
                    value = value.replace(tzinfo=tz).astimezone(UTC).replace(tzinfo=None)
                elif value.tzinfo is not None and not keep_aware:
                    value = value.astimezone(UTC).replace(tzinfo=None)
                elif value.tzinfo is None and keep_aware:
                    value = value.replace(tzinfo=UTC)
            return value

        return convert

    def __call__(self, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """The rows ready for the writer (lists or tuples, in column order)."""
        if self.identity:
            return [tuple(row) for row in rows]  # DBAPI drivers want tuples, not Row objects
        touched = [(i, c) for i, c in enumerate(self.converters) if c is not None]
        out = []
        for row in rows:
            values = list(row)
            for i, convert in touched:
                value = values[i]
                if value is not None:
                    values[i] = convert(value)
            out.append(values)
        return out


def _as_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (set, frozenset)):
        return ",".join(sorted(value))
    return str(value)
