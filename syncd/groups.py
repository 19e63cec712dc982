"""Group jobs: one ``[[jobs]]`` entry with ``tables = [...]`` glob patterns.

A group expands into one table job per matching source table, named
``<group>.<table>`` (``<table>`` as the pattern writes it: ``orders`` for a
pattern without schema, ``shop.orders`` for ``shop.*``). Each table job is an
ordinary job: its own lock, checkpoint, history and page. The group's other
fields are the defaults of each; ``[jobs.overrides."<table>"]`` changes any of
them for one table. ``target`` is a pattern (``"{table}"``, ``"shop_{table}"``,
``"{schema}_{table}"``). ``cursor`` may list candidates: the first that exists
at the source is used (resolved when the run reaches the source: see
``resolve_table_job``); a table with none is loaded in full, skipped or refused
(``missing_cursor``).

Everything here is pure: listing the source's tables is ``syncd.group_tables``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Any

from syncd.engine.errors import ConfigError, shown
from syncd.jobs import JOB_NAME, LOCAL_NAME, MAX_NAME, JobSpec, Schedule, SourceSpec, _parse_job

TABLE_NAME = re.compile(r"^[A-Za-z0-9_$]{1,64}$")  # a table a group may name a job after
PATTERN = re.compile(r"^[A-Za-z0-9_$*?\[\]!-]{1,64}$")
GROUP_ONLY = {"tables", "overrides", "missing_cursor", "target", "cursor"}
NOT_OVERRIDDEN = {"name", "source", "tables", "overrides", "table", "schedule",
                  "verify_schedule"}
MAX_JOB_NAME = 100  # syncd_runs.job
MISSING_CURSOR = ("full", "skip", "fail")


class TableSkipped(ConfigError):
    """A table of a group that is not synced (no cursor column, missing_cursor = "skip")."""


@dataclass(frozen=True)
class GroupSpec:
    """A validated group job: its patterns, and what each table job is built from."""

    name: str
    source: SourceSpec
    patterns: tuple[str, ...]
    target: str  # pattern with {table} and {schema}
    cursor_candidates: tuple[str, ...]
    missing_cursor: str
    schedule: Schedule | None
    template: JobSpec  # the group's fields as one job (for timeout, mode, schedule...)
    raw: dict[str, Any]  # the fields every table job shares, as written
    overrides: dict[str, dict[str, Any]]
    label: str  # the jobs file, for messages
    sources: dict[str, SourceSpec]

    def matches(self, table: str) -> bool:
        """True if ``table`` ("name" or "schema.name") matches one of the patterns."""
        return any(_match(pattern, table) for pattern in self.patterns)

    def schemas(self) -> list[str | None]:
        """The schemas the patterns look in (None: the source's default schema)."""
        out: list[str | None] = []
        for pattern in self.patterns:
            schema = pattern.rpartition(".")[0] or None
            if schema not in out:
                out.append(schema)
        return out


def _match(pattern: str, table: str) -> bool:
    schema, _, name = pattern.rpartition(".")
    t_schema, _, t_name = table.rpartition(".")
    return schema == t_schema and fnmatchcase(t_name, name)


def parse_group(index: int, raw: dict[str, Any], label: str,
                sources: dict[str, SourceSpec]) -> GroupSpec:
    """Validate a ``[[jobs]]`` entry with ``tables``; ConfigError naming file, job and field."""
    name = raw.get("name")
    if not isinstance(name, str) or not JOB_NAME.match(name):
        _parse_job(index, raw, label, sources)  # says what is wrong with the name
    where = f'{label}: job "{name}"'
    if "table" in raw:
        raise ConfigError(f'{where}: field "tables": set "table" or "tables", not both')
    patterns = _patterns(raw.get("tables"), f'{where}: field "tables"')
    target = _target_pattern(raw.get("target", "{table}"), f'{where}: field "target"')
    candidates = _candidates(raw.get("cursor"), f'{where}: field "cursor"')
    missing = raw.get("missing_cursor", "full")
    if missing not in MISSING_CURSOR:
        raise ConfigError(f'{where}: field "missing_cursor": must be "full", "skip" or '
                          f'"fail", not {shown(missing)}')
    shared = {k: v for k, v in raw.items() if k not in GROUP_ONLY}
    sample = {**shared, "table": "t", "target": "t"}
    if candidates:
        sample["cursor"] = candidates[0]
    template = _parse_job(index, sample, label, sources)
    overrides = _overrides(raw.get("overrides", {}), patterns, where)
    group = GroupSpec(
        name=template.name, source=template.source, patterns=patterns, target=target,
        cursor_candidates=candidates, missing_cursor=str(missing),
        schedule=template.schedule, template=template, raw=shared, overrides=overrides,
        label=label, sources=sources)
    for table in overrides:  # each override is checked now, as its table job
        try:
            table_job(group, table)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(
                f'job "{name}": table "{table}": ',
                f'job "{name}": field "overrides": table "{table}": ', 1)) from exc
    return group


def _patterns(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f'{where}: must be a non-empty list of table patterns such as '
                          f'["shop.*", "orders", "cust_*"], not {shown(value)}')
    for pattern in value:
        parts = pattern.split(".")
        if len(parts) > 2 or not all(PATTERN.match(p) for p in parts):
            raise ConfigError(f'{where}: {shown(pattern)} is not a table pattern ("table", '
                              '"schema.table", with * ? [..] wildcards; letters, digits, "_", '
                              '"$" and "-" otherwise)')
        if len(parts) == 2 and any(c in parts[0] for c in "*?["):
            raise ConfigError(f'{where}: {shown(pattern)}: wildcards only in the table '
                              "name, not in the schema")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: lists a pattern twice")
    return tuple(value)


def _target_pattern(value: Any, where: str) -> str:
    if not isinstance(value, str) or "{table}" not in value:
        raise ConfigError(f'{where}: must be a local table name pattern containing "{{table}}" '
                          f'(e.g. "shop_{{table}}"), not {shown(value)}')
    try:
        sample = value.format_map({"table": "t", "schema": "s"})
    except (KeyError, ValueError, IndexError, AttributeError) as exc:
        raise ConfigError(f'{where}: {shown(value)}: only {{table}} and {{schema}} may be '
                          "filled in") from exc
    if not LOCAL_NAME.match(sample) or sample.startswith("syncd_"):
        raise ConfigError(f'{where}: {shown(value)} does not make a local table name (letters, '
                          'digits and "_", at most 48, not starting with "syncd_")')
    return value


def _candidates(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(
            isinstance(v, str) and 0 < len(v) <= MAX_NAME for v in value):
        raise ConfigError(f"{where}: must be a column name or a list of candidate column "
                          f"names (the first that exists is used), not {shown(value)}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: lists a column twice")
    return tuple(value)


def _overrides(value: Any, patterns: tuple[str, ...], where: str) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict):
        raise ConfigError(f'{where}: field "overrides": must be tables such as '
                          '[jobs.overrides."orders"]')
    out: dict[str, dict[str, Any]] = {}
    for table, fields in value.items():
        here = f'{where}: field "overrides": table {shown(table)}'
        if not isinstance(fields, dict):
            raise ConfigError(f"{here}: must be a table of fields")
        if not any(_match(p, table) for p in patterns):
            raise ConfigError(f'{here}: matches none of the patterns of "tables" '
                              f"({', '.join(patterns)})")
        for key in sorted(NOT_OVERRIDDEN & set(fields)):
            raise ConfigError(f'{here}: field "{key}": cannot be changed for one table')
        out[table] = fields
    return out


def table_job(group: GroupSpec, table: str) -> JobSpec:
    """The job of one table of ``group`` ("name" or "schema.name"); ConfigError if the
    table does not match the group or makes no valid job or local table name."""
    where = f'{group.label}: job "{group.name}"'
    if not group.matches(table):
        raise ConfigError(f'{where}: table {shown(table)} matches none of the patterns of '
                          f"\"tables\" ({', '.join(group.patterns)})")
    schema, _, name = table.rpartition(".")
    if not TABLE_NAME.match(name):
        raise ConfigError(f"{where}: table {shown(table)}: a group only takes tables named "
                          'with letters, digits, "_" and "$" (list it as its own job)')
    job_name = f"{group.name}.{table}"
    if len(job_name) > MAX_JOB_NAME:
        raise ConfigError(f"{where}: table {shown(table)}: job name {shown(job_name)} is "
                          f"longer than {MAX_JOB_NAME} characters")
    fields = {**group.raw, **group.overrides.get(table, {})}
    missing = fields.pop("missing_cursor", group.missing_cursor)
    if missing not in MISSING_CURSOR:
        raise ConfigError(f'{where}: overrides."{table}": field "missing_cursor": must be '
                          f'"full", "skip" or "fail", not {shown(missing)}')
    candidates = group.cursor_candidates
    if "cursor" in fields:  # an override names its own cursor (or candidates)
        candidates = _candidates(fields["cursor"], f'{where}: overrides."{table}": field '
                                                   '"cursor"')
    target = fields.get("target", group.target)
    fields.update(table=table, target=target.format_map({"table": name, "schema": schema}))
    if candidates:
        fields["cursor"] = candidates[0]
    else:
        fields.pop("cursor", None)
    try:
        spec = _parse_job(0, fields, group.label, group.sources)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace(f'job "{group.name}": ',
                                           f'job "{group.name}": table "{table}": ', 1)) from exc
    return replace(spec, name=job_name, group=group.name, cursor_candidates=candidates,
                   missing_cursor=str(missing))


def resolve_table_job(spec: JobSpec, columns: list[str]) -> JobSpec:
    """A table job with its cursor chosen among the candidates that exist at the source
    (``columns``): the first that exists. With none, it is loaded in full
    (``missing_cursor = "full"``), TableSkipped ("skip") or ConfigError ("fail")."""
    if spec.group is None or not spec.cursor_candidates:
        return spec
    found = next((c for c in spec.cursor_candidates if c in columns), None)
    if found is not None or spec.mode == "full":
        return replace(spec, cursor=found)
    which = ", ".join(spec.cursor_candidates)
    if spec.missing_cursor == "skip":
        raise TableSkipped(f"skipped: no cursor column ({which}) in source table "
                           f'{spec.table} (missing_cursor = "skip")')
    if spec.missing_cursor == "fail":
        raise ConfigError(f'field "cursor": none of the columns {which} is in source table '
                          f'{spec.table} (missing_cursor = "fail")')
    return replace(spec, cursor=None, mode="full")


def missing_cursor_note(spec: JobSpec, columns: list[str]) -> str | None:
    """What ``syncd check`` says of a table job none of whose cursor candidates exists."""
    if spec.group is None or not spec.cursor_candidates or spec.mode == "full":
        return None
    if any(c in columns for c in spec.cursor_candidates):
        return None
    which = ", ".join(spec.cursor_candidates)
    action = {"full": "loaded in full at every run", "skip": "skipped",
              "fail": "refused: its runs fail"}[spec.missing_cursor]
    return f"no cursor column ({which}) in source table {spec.table}: {action}"
