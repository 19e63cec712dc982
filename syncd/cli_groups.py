"""The ``syncd`` command for group jobs (``tables = [...]``): run, trigger, check, list.

``syncd run shop`` expands the group at its source and runs each table job in turn
in this process; ``syncd run shop.orders`` is an ordinary run of one table.
Exit code of a group run: 1 if a table failed, else 2 if one was refused as bad
configuration, else 3 if one was skipped, else 0; 130 after Ctrl-C.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import click

from syncd import SyncdState
from syncd.engine.errors import ConfigError, SourceRefused, SourceUnavailable, one_line
from syncd.group_tables import (
    Expansion,
    expand,
    expand_group,
    group_summary,
    record,
    recorded_jobs,
)
from syncd.groups import GroupSpec, TableSkipped, missing_cursor_note

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_SKIPPED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
SEVERITY = {EXIT_OK: 0, EXIT_SKIPPED: 1, EXIT_CONFIG: 2, EXIT_FAILED: 3}  # a group run's exit


def expanded_or_exit(state: SyncdState, jobs: Any, group: GroupSpec) -> Expansion:
    """Expand the group at its source, printing its problems and gone tables; exit 3 if
    the source cannot be reached."""
    try:
        expansion = expand_group(state, jobs, group)
    except (SourceUnavailable, SourceRefused) as exc:
        click.echo(f'error: job "{group.name}": {one_line(str(exc))}', err=True)
        sys.exit(EXIT_SKIPPED)
    except ConfigError as exc:
        click.echo(f'error: job "{group.name}": {one_line(str(exc))}', err=True)
        sys.exit(EXIT_CONFIG)
    for problem in expansion.problems:
        click.echo(f"error: {one_line(problem)}", err=True)
    for line in expansion.missing_lines():
        click.echo(f'warning: job "{group.name}": {line}', err=True)
    if not expansion.jobs:
        click.echo(f'warning: job "{group.name}": no source table matches '
                   f"{', '.join(group.patterns)}", err=True)
    return expansion


def run_group(state: SyncdState, jobs: Any, group: GroupSpec, full_refresh: bool) -> None:
    """Run every table job of the group now, one after the other; exit with the worst.

    Ctrl-C cancels the run in progress (at its next batch boundary) and the tables after it.
    """
    from syncd.progress import CtrlC, terminal_progress

    expansion = expanded_or_exit(state, jobs, group)
    code = EXIT_CONFIG if expansion.problems else EXIT_OK
    ctrl_c = CtrlC()
    with terminal_progress(enabled=sys.stdout.isatty()) as hook, ctrl_c.installed():
        for spec in expansion.jobs:
            code = max(code, _run_table(state, spec.name, full_refresh, hook, ctrl_c),
                       key=SEVERITY.__getitem__)
            if ctrl_c.pressed:
                sys.exit(EXIT_INTERRUPTED)
    sys.exit(code)


def _run_table(state: SyncdState, job: str, full_refresh: bool, hook: Any, ctrl_c: Any) -> int:
    """Run one table job of a group; its exit code."""
    from syncd.runner import RunRequest, describe, run_job

    request = RunRequest(job=job, trigger="cli", full_refresh=full_refresh, started_by="cli")
    try:
        run = run_job(state, request, on_progress=hook, interrupted=ctrl_c)
    except ConfigError as exc:
        click.echo(f"error: {one_line(str(exc))}", err=True)
        return EXIT_CONFIG
    assert run is not None
    click.echo(describe(run))
    if run.status == "succeeded":
        return EXIT_OK
    return EXIT_SKIPPED if run.status == "skipped" else EXIT_FAILED


def trigger_group(state: SyncdState, jobs: Any, group: GroupSpec, full_refresh: bool) -> None:
    """Queue a run of every table job of the group; the run ids alone on the last line."""
    from syncd.tasks import enqueue_run

    expansion = expanded_or_exit(state, jobs, group)
    ids = []
    for spec in expansion.jobs:
        run_id = enqueue_run(state, spec.name, "cli", full_refresh=full_refresh,
                             started_by="cli")
        click.echo(f"queued {'full refresh' if full_refresh else 'sync'} of job {spec.name} "
                   f"as run #{run_id}")
        ids.append(str(run_id))
    click.echo(f"follow them with: syncd history (or the page of job {group.name})")
    click.echo(" ".join(ids))


def check_groups(path: str, groups: list[GroupSpec], jobs: Any, engine: Any, local: str,
                 state: SyncdState) -> list[tuple[int, str]]:
    """``syncd check`` of the groups of one reachable source: each table job folded under
    its group; (exit code, message) of each problem."""
    problems: list[tuple[int, str]] = []
    for group in groups:
        expansion = expand(group, engine, jobs)
        record(state, expansion)
        click.echo(f'ok: job "{group.name}": {len(expansion.jobs)} table(s) match '
                   f"{', '.join(group.patterns)}")
        problems += [(EXIT_CONFIG, problem) for problem in expansion.problems]
        for line in expansion.missing_lines():
            click.echo(one_line(f'warning: job "{group.name}": {line}'))
        for spec in expansion.jobs:
            problems += _check_table(path, spec, engine, local)
    return problems


def _check_table(path: str, spec: Any, engine: Any, local: str) -> list[tuple[int, str]]:
    from syncd.engine.checks import check_job
    from syncd.group_tables import resolve_at_source

    try:
        note = _table_note(spec, engine)
        try:
            resolved = resolve_at_source(spec, engine)
        except TableSkipped:  # missing_cursor = "skip": not an error
            click.echo(one_line(f'  warning: job "{spec.name}": {note}'))
            return []
        for warning in check_job(resolved.table_sync(), engine, local):
            click.echo(one_line(f'  warning: job "{spec.name}": {warning}'))
        how = resolved.mode
        if resolved.mode == "incremental" and resolved.cursor:
            how += f", cursor {resolved.cursor}"
        click.echo(one_line(f'  ok: job "{spec.name}" ({spec.table} -> {spec.target}, {how})'))
        if note:
            click.echo(one_line(f'  warning: job "{spec.name}": {note}'))
    except ConfigError as exc:
        return [(EXIT_CONFIG, f'{path}: job "{spec.name}": {exc}')]
    return []


def _table_note(spec: Any, engine: Any) -> str | None:
    from sqlalchemy import inspect

    schema, _, table = spec.table.rpartition(".")
    with engine.connect() as conn:
        insp = inspect(conn)
        columns = [c["name"] for c in insp.get_columns(table, schema=schema or None)]
        key = insp.get_pk_constraint(table, schema=schema or None).get("constrained_columns")
    if not key and not spec.primary_key:
        return (f"source table {spec.table} has no primary key: loaded in full at every run, "
                f'without resume (set "primary_key" in [jobs.overrides."{spec.table}"] to '
                "sync it incrementally)")
    return missing_cursor_note(spec, columns)


def list_groups(state: SyncdState, jobs: Any, as_json: bool) -> list[dict[str, Any]]:
    """``syncd jobs``: each group, its table jobs (as last expanded) folded under it."""
    from syncd.status import job_overview

    rows: list[dict[str, Any]] = []
    table_jobs = recorded_jobs(state, jobs)
    for name, group in sorted(jobs.groups.items()):
        summary = group_summary(state, group)
        tables = job_overview(state, replace(jobs, jobs=table_jobs.get(name, {}), groups={}))
        for row in tables:
            row["group"] = name
        summary["jobs"] = tables
        rows.append(summary)
        if as_json:
            continue
        schedule = group.schedule.text if group.schedule else "manual only"
        count = len(summary["table_jobs"])
        click.echo(f"{name:<20} {'group':<12} {schedule:<24} {count} table(s): "
                   f"{', '.join(group.patterns)}"
                   + ("" if count else " (not expanded yet: run syncd check)"))
        for warning in summary["warnings"]:
            click.echo(f"  warning: {warning}")
        for row in tables:
            last = row["last_run"]
            last_text = (f"#{last['id']} {last['status']} {last['finished_at'] or ''}"
                         if last else "-")
            click.echo(f"  {row['name']:<30} {row['mode']:<12} "
                       f"{'PAUSED ' if row['paused'] else ''}last: {last_text}")
    return rows
