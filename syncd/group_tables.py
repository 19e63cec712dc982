"""Expanding a group job against its source, and what the local database remembers of it.

A group is expanded when ``syncd check`` validates it, at every scheduled tick, and
when someone runs or triggers the whole group: its patterns are matched against the
source's tables (``information_schema`` / ``pg_catalog`` through SQLAlchemy's
inspector), and the tables found are recorded in ``syncd_group_tables``. A table that
appears later is picked up by the next expansion; one that disappears is kept there
with ``missing_since`` (a warning on the group, a metric), and its local table is
kept. ``syncd jobs``, the dashboard and the metrics read the recorded tables: they
never connect to a source.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, inspect, select

from syncd import SyncdState
from syncd.engine import connect_source
from syncd.engine.checks import reach
from syncd.engine.connect import translated_errors
from syncd.engine.errors import ConfigError, SourceRefused, SourceUnavailable
from syncd.groups import GroupSpec, resolve_table_job, table_job
from syncd.jobs import JobsFile, JobSpec
from syncd.models import GroupTable, utcnow

log = logging.getLogger(__name__)


@dataclass
class Expansion:
    """What one expansion of a group found."""

    group: GroupSpec
    jobs: list[JobSpec] = field(default_factory=list)  # one per table, in name order
    problems: list[str] = field(default_factory=list)  # tables that make no valid job
    missing: list[GroupTable] = field(default_factory=list)  # seen before, gone now

    def missing_lines(self) -> list[str]:
        """One warning per table gone from the source."""
        return [gone_line(row) for row in self.missing]


def gone_line(row: GroupTable) -> str:
    """The warning about one table gone from the source."""
    since = row.missing_since.strftime("%Y-%m-%d %H:%M UTC") if row.missing_since else "?"
    return (f"table {row.table_name} is gone from the source (since {since}); its local "
            f"table {row.target} is kept")


def source_tables(group: GroupSpec, engine: Engine) -> list[str]:
    """The source's tables that match the group's patterns ("name" or "schema.name")."""
    found: set[str] = set()
    with translated_errors(f'source "{group.source.name}"'), engine.connect() as conn:
        insp = inspect(conn)
        for schema in group.schemas():
            for name in insp.get_table_names(schema=schema):
                table = f"{schema}.{name}" if schema else name
                if group.matches(table):
                    found.add(table)
    return sorted(found)


def expand(group: GroupSpec, engine: Engine, jobs: JobsFile) -> Expansion:
    """The table jobs of ``group`` at its source now (nothing recorded)."""
    taken = {job.target: job.name for job in jobs.jobs.values()}
    out = Expansion(group)
    for table in source_tables(group, engine):
        try:
            job = table_job(group, table)
        except ConfigError as exc:
            out.problems.append(str(exc))
            continue
        if job.target in taken:
            out.problems.append(
                f'{group.label}: job "{group.name}": table "{table}": local table '
                f'"{job.target}" is already the target of job "{taken[job.target]}" '
                '(set "target", e.g. "{schema}_{table}")')
            continue
        taken[job.target] = job.name
        out.jobs.append(job)
    return out


def record(state: SyncdState, expansion: Expansion) -> None:
    """Remember the tables found; mark those gone (``expansion.missing`` is filled)."""
    group = expansion.group.name
    now = utcnow()
    found = {job.table: job for job in expansion.jobs}
    with state.sessions.begin() as session:
        rows = {row.table_name: row for row in session.scalars(
            select(GroupTable).where(GroupTable.group_name == group))}
        for table, job in found.items():
            row = rows.get(table)
            if row is None:
                session.add(GroupTable(group_name=group, table_name=table, job=job.name,
                                       target=job.target, first_seen_at=now, last_seen_at=now))
                continue
            row.last_seen_at, row.missing_since = now, None
            row.job, row.target = job.name, job.target
        for table, row in rows.items():
            if table not in found and expansion.group.matches(table):
                row.missing_since = row.missing_since or now
                expansion.missing.append(row)
        session.flush()
        session.expunge_all()
    for row in expansion.missing:
        log.warning('job "%s": %s', group, gone_line(row))


def expand_group(state: SyncdState, jobs: JobsFile, group: GroupSpec) -> Expansion:
    """Reach the group's source, expand the group and record what it found.

    Raises SourceUnavailable / SourceRefused naming the source when it cannot be reached.
    """
    source = connect_source(group.source.url)
    try:
        where = f'source "{group.source.name}" ({group.source.masked_url})'
        try:
            reach(source)
        except (SourceUnavailable, SourceRefused) as exc:
            raise type(exc)(f"{where}: {exc}") from exc
        expansion = expand(group, source, jobs)
    finally:
        source.dispose()
    record(state, expansion)
    return expansion


def recorded_tables(state: SyncdState, group: str) -> list[GroupTable]:
    """The tables the group's last expansions found, gone ones included, by name."""
    with state.sessions() as session:
        rows = list(session.scalars(select(GroupTable).where(GroupTable.group_name == group)
                                    .order_by(GroupTable.table_name)))
        session.expunge_all()
    return rows


def recorded_jobs(state: SyncdState, jobs: JobsFile) -> dict[str, dict[str, JobSpec]]:
    """Per group, the table jobs of the tables its last expansion found (not the gone)."""
    out: dict[str, dict[str, JobSpec]] = {}
    for name, group in sorted(jobs.groups.items()):
        specs: dict[str, JobSpec] = {}
        for row in recorded_tables(state, name):
            if row.missing_since is not None:
                continue
            try:
                specs[row.job] = table_job(group, row.table_name)
            except ConfigError:  # the jobs file changed since: the next expansion says why
                continue
        out[name] = specs
    return out


def missing_counts(state: SyncdState, jobs: JobsFile) -> dict[str, int]:
    """Per group, how many of its tables are gone from the source."""
    return {name: sum(1 for row in recorded_tables(state, name) if row.missing_since)
            for name in sorted(jobs.groups)}


def group_summary(state: SyncdState, group: GroupSpec) -> dict[str, Any]:
    """The group's own line for ``syncd jobs`` and the dashboard (JSON-able)."""
    rows = recorded_tables(state, group.name)
    return {
        "name": group.name,
        "group": True,
        "source": group.source.name,
        "tables": list(group.patterns),
        "target": group.target,
        "schedule": group.schedule.text if group.schedule else None,
        "table_jobs": [row.job for row in rows if row.missing_since is None],
        "warnings": [gone_line(row) for row in rows if row.missing_since is not None],
    }


def resolve_at_source(spec: JobSpec, engine: Engine) -> JobSpec:
    """A table job with its cursor chosen among the candidates its source table has."""
    schema, _, table = spec.table.rpartition(".")
    with translated_errors(f"source table {spec.table}"), engine.connect() as conn:
        insp = inspect(conn)
        if not insp.has_table(table, schema=schema or None):
            return spec  # the engine says the table is not there, naming the tables it has
        columns = [c["name"] for c in insp.get_columns(table, schema=schema or None)]
    return resolve_table_job(spec, columns)
