"""Row by row: the rows of a few segments from both sides, compared value by value.

Source values first go through the type map's converter (what the sync would
have written: a zero date is NULL, a value the local type cannot hold is NULL
under ``on_unrepresentable = "null"``), then both sides through
``canonical.equal_form``. Keys are matched in that form too, so a key the local
database stores differently (a SQLite text decimal) is the same key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from syncd.engine.canonical import Rule, equal_form
from syncd.engine.values import Converter, Unrepresentable, ZeroDate

MISSING, EXTRA, CHANGED = "missing locally", "extra locally", "different"


class _Refused:
    """A source value the local type cannot hold: equal to nothing."""

    def __eq__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "<cannot be stored locally>"


@dataclass(frozen=True)
class Difference:
    """One row that differs: its key, how, the columns that differ, each side's raw key."""

    kind: str  # MISSING | EXTRA | CHANGED
    key: dict[str, str]  # the key as shown to a user
    columns: tuple[str, ...] = ()
    source_key: tuple[Any, ...] | None = None  # as the source sent it (to re-read it)
    local_key: tuple[Any, ...] | None = None  # as the local database sent it (to delete it)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "key": self.key}
        if self.columns:
            out["columns"] = list(self.columns)
        return out


@dataclass(frozen=True)
class RowRules:
    """How the rows of one job are compared: column names, rules, converters, key."""

    names: tuple[str, ...]
    rules: tuple[Rule, ...]
    convert: tuple[Converter | None, ...]  # source value -> what the sync writes
    key_index: tuple[int, ...]
    store_null: bool  # on_unrepresentable = "null"

    def source_form(self, row: Sequence[Any]) -> list[Any]:
        out = []
        for rule, convert, value in zip(self.rules, self.convert, row):
            if value is not None and convert is not None:
                try:
                    value = convert(value)
                except ZeroDate:
                    value = None
                except Unrepresentable:
                    value = None if self.store_null else _Refused()
            out.append(value if isinstance(value, _Refused) else equal_form(rule, value))
        return out

    def local_form(self, row: Sequence[Any]) -> list[Any]:
        return [equal_form(rule, value) for rule, value in zip(self.rules, row)]

    def key_of(self, form: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(form[i] for i in self.key_index)

    def shown(self, row: Sequence[Any]) -> dict[str, str]:
        return {self.names[i]: _show(row[i]) for i in self.key_index}


def compare_rows(rules: RowRules, source: Sequence[Sequence[Any]],
                 local: Sequence[Sequence[Any]]) -> list[Difference]:
    """Every key present on one side only, or with different values, in key order."""
    theirs: dict[tuple[Any, ...], tuple[Sequence[Any], list[Any]]] = {}
    for row in source:
        form = rules.source_form(row)
        theirs[rules.key_of(form)] = (row, form)
    out = []
    for row in local:
        form = rules.local_form(row)
        key = rules.key_of(form)
        found = theirs.pop(key, None)
        local_key = tuple(row[i] for i in rules.key_index)
        if found is None:
            out.append(Difference(EXTRA, rules.shown(row), local_key=local_key))
            continue
        source_row, source_form = found
        changed = tuple(name for name, a, b in zip(rules.names, source_form, form) if a != b)
        if changed:
            out.append(Difference(CHANGED, rules.shown(source_row), changed,
                                  source_key=tuple(source_row[i] for i in rules.key_index),
                                  local_key=local_key))
    for row, _form in theirs.values():
        out.append(Difference(MISSING, rules.shown(row),
                              source_key=tuple(row[i] for i in rules.key_index)))
    return sorted(out, key=lambda d: tuple(_order(v) for v in d.key.values()))


def _order(text: str) -> tuple[int, Any]:
    """Whole numbers in numeric order, before everything else in text order."""
    try:
        return 0, int(text)
    except ValueError:
        return 1, text


def _show(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if len(text) <= 100 else text[:100] + "..."
