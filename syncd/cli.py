"""The ``syncd`` command (DESIGN section 6).

Exit codes: 0 ok, 1 run failed, 2 bad configuration or unknown job,
3 skipped (already running) or source unreachable (``check``).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click
from sqlalchemy import select

from syncd import SyncdState, create_app, get_state
from syncd.cli_notify import notify
from syncd.cli_services import trigger, up
from syncd.cli_users import tokens, users
from syncd.cli_verify import verify
from syncd.engine.errors import ConfigError, SourceUnavailable, one_line

EXIT_FAILED, EXIT_CONFIG, EXIT_SKIPPED, EXIT_UNREACHABLE = 1, 2, 3, 3


class Context:
    """Lazily built app and state, so `syncd --help` needs no database."""

    def __init__(self) -> None:
        self._app: Any = None
        self.web = True  # False: a command that needs no web pages (faster start)

    @property
    def app(self) -> Any:
        if self._app is None:
            self._app = create_app(web=self.web)
        return self._app

    @property
    def state(self) -> SyncdState:
        return get_state(self.app)


pass_ctx = click.make_pass_decorator(Context, ensure=True)


def fail(message: str, code: int) -> None:
    """Print an error (one line, long values cut) to stderr and exit with ``code``."""
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(code)


def load_jobs_or_exit(state: SyncdState) -> Any:
    """The jobs in force; a rejected jobs file is reported on stderr.

    Exits 2 with the validation message when no jobs file ever validated.
    """
    force = state.jobs_in_force()
    if force.rejected is not None:
        if force.jobs is None:
            fail(f"{force.rejected} ({force.explanation()})", EXIT_CONFIG)
        click.echo(f"warning: jobs file rejected: {force.rejected}", err=True)
        click.echo(f"warning: {force.explanation()}", err=True)
    return force.jobs


@click.group()
def cli() -> None:
    """syncd: keep local tables in step with remote databases."""
    # A rejected jobs file is reported by each command in its own words; the log line
    # meant for worker and beat logs would only repeat it.
    quiet = logging.getLogger("syncd.jobs")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False


@cli.group()
def db() -> None:
    """syncd's own tables in the local database."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Create or upgrade syncd's tables (alembic upgrade head)."""
    from syncd.db import upgrade

    upgrade(ctx.state.engine)
    click.echo("local database is up to date")


@cli.command()
@pass_ctx
def check(ctx: Context) -> None:
    """Validate the jobs file and reach every source (exit 2 bad config, 3 unreachable)."""
    force = ctx.state.jobs_in_force()
    if force.rejected is not None:
        fail(f"{force.rejected} ({force.explanation()})", EXIT_CONFIG)
    jobs = force.require()
    problems: list[tuple[int, str]] = []
    for source in jobs.sources.values():
        source_jobs = [j for j in jobs.jobs.values() if j.source.name == source.name]
        if source_jobs:
            problems += _check_source(jobs.path, source, source_jobs,
                                      ctx.state.engine.dialect.name)
    for _, message in problems:
        click.echo(f"error: {one_line(message)}", err=True)
    if problems:
        sys.exit(max(code for code, _ in problems))
    click.echo(f"{len(jobs.jobs)} job(s) ok")


def _check_source(path: str, source: Any, source_jobs: list[Any], local: str,
                  ) -> list[tuple[int, str]]:
    """Reach one source and check its jobs' tables (and that every column type maps into
    the ``local`` database): (exit code, message) of each problem."""
    from syncd.engine.checks import check_job, open_source, reach

    where = f'{path}: source "{source.name}" ({source.masked_url})'
    try:
        engine = open_source(source.url)
    except ConfigError as exc:
        return [(EXIT_CONFIG, f"{where}: {exc}")]
    problems: list[tuple[int, str]] = []
    try:
        reach(engine)
        for job in source_jobs:
            try:
                for warning in check_job(job.table_sync(), engine, local):
                    click.echo(one_line(f'warning: job "{job.name}": {warning}'))
                if job.lookback_auto:
                    click.echo(lookback_line(job, engine))
                click.echo(one_line(f'ok: job "{job.name}" ({source.masked_url} {job.table})'))
            except ConfigError as exc:
                problems.append((EXIT_CONFIG, f'{path}: job "{job.name}": {exc}'))
    except SourceUnavailable as exc:
        problems.append((EXIT_UNREACHABLE, f"{where}: unreachable: {exc}"))
    except ConfigError as exc:
        problems.append((EXIT_CONFIG, f"{where}: {exc}"))
    finally:
        engine.dispose()
    return problems


def lookback_line(job: Any, engine: Any) -> str:
    """What ``syncd check`` says of a job with ``lookback = "auto"``."""
    from syncd.engine.lookback import check_auto, duration_words

    problem = check_auto(job.table_sync(), engine)
    if problem is None:
        return (f'ok: job "{job.name}": lookback = "auto": the source shows its open '
                "transactions")
    return (f'warning: job "{job.name}": lookback = "auto" falls back to the fixed lookback '
            f"of {duration_words(job.lookback)}: {problem}")


@cli.command("jobs")
@click.option("--json", "as_json", is_flag=True, help="print a JSON array")
@pass_ctx
def jobs_cmd(ctx: Context, as_json: bool) -> None:
    """List jobs with schedule, paused flag, last run and next run."""
    from syncd.status import job_overview

    jobs = load_jobs_or_exit(ctx.state)
    rows = job_overview(ctx.state, jobs)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no jobs defined")
    for row in rows:
        last = row["last_run"]
        last_text = f"#{last['id']} {last['status']} {last['finished_at'] or ''}" if last else "-"
        click.echo(
            f"{row['name']:<20} {row['mode']:<12} {row['schedule'] or 'manual only':<24} "
            f"{'PAUSED ' if row['paused'] else ''}last: {last_text}  next: {row['next_run'] or '-'}"
        )


@cli.command()
@click.argument("job")
@click.option("--full-refresh", is_flag=True, help="reset the checkpoint and reload the table")
@pass_ctx
def run(ctx: Context, job: str, full_refresh: bool) -> None:
    """Run one sync now in this process (no broker)."""
    from syncd.progress import terminal_progress
    from syncd.retry import LocalUnavailable
    from syncd.runner import RunRequest, describe, run_job

    ctx.web = False
    state = ctx.state
    jobs = load_jobs_or_exit(state)
    try:
        jobs.job(job)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    _check_before_run(jobs.path, jobs.job(job), ctx.state.engine.dialect.name)
    request = RunRequest(job=job, trigger="cli", full_refresh=full_refresh, started_by="cli")
    with terminal_progress(enabled=sys.stdout.isatty()) as hook:
        try:
            result = run_job(state, request, on_progress=hook)
        except ConfigError as exc:
            fail(str(exc), EXIT_CONFIG)
        except LocalUnavailable as exc:  # before a run row could be written
            click.echo(f"run {job}: failed -- {one_line(str(exc))}")
            sys.exit(EXIT_FAILED)
    assert result is not None
    click.echo(describe(result))
    if result.status == "skipped":
        sys.exit(EXIT_SKIPPED)
    if result.status != "succeeded":
        sys.exit(EXIT_FAILED)


def _check_before_run(path: str, job: Any, local: str) -> None:
    """Exit 2, writing nothing, if the job's table, columns or key are wrong at the source.

    An unreachable source is not decided here: the run records it (with retries).
    """
    from syncd.engine.checks import check_job, open_source, reach

    where = f'{path}: source "{job.source.name}" ({job.source.masked_url})'
    try:
        engine = open_source(job.source.url)
    except ConfigError as exc:
        fail(f"{where}: {exc}", EXIT_CONFIG)
    try:
        try:
            reach(engine)
        except ConfigError as exc:
            fail(f"{where}: {exc}", EXIT_CONFIG)
        check_job(job.table_sync(), engine, local)
    except SourceUnavailable:
        pass
    except ConfigError as exc:
        fail(f'{path}: job "{job.name}": {exc}', EXIT_CONFIG)
    finally:
        engine.dispose()


@cli.command()
@click.argument("job", required=False)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100000))
@click.option("--status", type=click.Choice(
    ["queued", "running", "succeeded", "failed", "skipped", "abandoned", "cancelled"]))
@click.option("--json", "as_json", is_flag=True, help="print only a JSON array")
@pass_ctx
def history(ctx: Context, job: str | None, limit: int, status: str | None, as_json: bool) -> None:
    """Recent runs, newest first."""
    from syncd.models import SyncRun
    from syncd.runner import describe

    query = select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)
    if job:
        query = query.where(SyncRun.job == job)
    if status:
        query = query.where(SyncRun.status == status)
    with ctx.state.sessions() as session:
        runs = list(session.scalars(query))
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in runs], indent=2))
        return
    if not runs:
        click.echo("no runs")
    for r in runs:
        started = r.started_at or r.queued_at
        click.echo(f"{started:%Y-%m-%d %H:%M:%S}Z [{r.trigger}] {describe(r)}")


def _set_paused(ctx: Context, job: str, paused: bool) -> None:
    from syncd.runner import set_paused

    jobs = load_jobs_or_exit(ctx.state)
    try:
        jobs.job(job)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    set_paused(ctx.state, job, paused, by="cli")
    click.echo(f"{job}: {'paused' if paused else 'resumed'}")


@cli.command()
@click.argument("job")
@pass_ctx
def pause(ctx: Context, job: str) -> None:
    """Pause a job: its scheduled runs do nothing (manual runs still work)."""
    _set_paused(ctx, job, True)


@cli.command()
@click.argument("job")
@pass_ctx
def resume(ctx: Context, job: str) -> None:
    """Resume a paused job."""
    _set_paused(ctx, job, False)


cli.add_command(trigger)
cli.add_command(up)
cli.add_command(users)
cli.add_command(tokens)
cli.add_command(notify)
cli.add_command(verify)


def main() -> None:
    """Entry point of the ``syncd`` console script."""
    from sqlalchemy.exc import DBAPIError

    from syncd.engine.connect import is_transient, short

    try:
        cli(prog_name="syncd")
    except DBAPIError as exc:
        message = short(exc)
        if is_transient(exc):
            fail(f"local database unreachable: {message}", EXIT_FAILED)
        hint = ""
        if "syncd_" in str(exc.orig):
            hint = " (run `syncd db upgrade` to create syncd's tables)"
        fail(f"local database: {message}{hint}", EXIT_CONFIG)
