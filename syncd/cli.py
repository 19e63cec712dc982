"""The ``syncd`` command (DESIGN section 6).

Exit codes: 0 ok, 1 run failed, 2 bad configuration or unknown job,
3 skipped (already running) or source unreachable (``check``).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

import click
from sqlalchemy import select

from syncd import SyncdState, create_app, get_state
from syncd.cli_notify import notify
from syncd.cli_services import trigger, up
from syncd.cli_users import tokens, users
from syncd.cli_verify import verify
from syncd.engine.errors import ConfigError, SourceRefused, SourceUnavailable, one_line

EXIT_FAILED, EXIT_CONFIG, EXIT_SKIPPED, EXIT_UNREACHABLE = 1, 2, 3, 3
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it
QUICK_EXIT: list[Any] = []  # what `syncd run` closes before it ends the process at once
# What SQLite, PostgreSQL and MySQL say about a syncd table or column that is not there.
MISSING_TABLES = re.compile(
    r"no such (?:table|column): syncd_|relation \"syncd_\w+\" does not exist|"
    r"column syncd_\w+\.\w+ does not exist|Table '[^']*syncd_\w+' doesn't exist|"
    r"Unknown column '(?:syncd_\w+\.)?\w+'")


class Context:
    """Lazily built app and state, so `syncd --help` needs no database."""

    def __init__(self) -> None:
        self._app: Any = None
        self._state: SyncdState | None = None
        self.web = True  # False: a command that needs no web pages (faster start)
        self.bare = False  # True: a command that needs neither Flask nor Celery (`run`)

    @property
    def app(self) -> Any:
        if self._app is None:
            self._app = create_app(web=self.web)
        return self._app

    @property
    def state(self) -> SyncdState:
        if self._state is None:
            self._state = self._bare_state() if self.bare else get_state(self.app)
        return self._state

    @staticmethod
    def _bare_state() -> SyncdState:
        from config import Config

        return SyncdState(Config())


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

    before, after = upgrade(ctx.state.engine)
    where = local_database()
    if before is None:
        click.echo(f"created syncd's tables in the local database {where} (revision {after})")
    elif before != after:
        click.echo(f"upgraded syncd's tables in the local database {where} from revision "
                   f"{before} to {after}")
    else:
        click.echo(f"local database {where} is up to date (revision {after})")


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
        source_jobs += [g for g in jobs.groups.values() if g.source.name == source.name]
        if source_jobs:
            problems += _check_source(jobs.path, source, source_jobs,
                                      ctx.state.engine.dialect.name, ctx.state, jobs)
    for _, message in problems:
        click.echo(f"error: {one_line(message)}", err=True)
    if problems:
        sys.exit(max(code for code, _ in problems))
    groups = f" and {len(jobs.groups)} group(s)" if jobs.groups else ""
    click.echo(f"{len(jobs.jobs)} job(s){groups} ok")


def _check_source(path: str, source: Any, source_jobs: list[Any], local: str,
                  state: SyncdState, jobs: Any) -> list[tuple[int, str]]:
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
        from syncd.cli_groups import check_groups
        from syncd.groups import GroupSpec

        groups = [g for g in source_jobs if isinstance(g, GroupSpec)]
        for job in [j for j in source_jobs if not isinstance(j, GroupSpec)]:
            try:
                for warning in check_job(job.table_sync(), engine, local):
                    click.echo(one_line(f'warning: job "{job.name}": {warning}'))
                if job.lookback_auto:
                    click.echo(lookback_line(job, engine))
                click.echo(one_line(f'ok: job "{job.name}" ({source.masked_url} {job.table})'))
            except ConfigError as exc:
                problems.append((EXIT_CONFIG, f'{path}: job "{job.name}": {exc}'))
        problems += check_groups(path, groups, jobs, engine, local, state)
    except (SourceUnavailable, SourceRefused) as exc:
        text = str(exc)
        if not text.startswith(("unreachable", "refused")):
            text = f"unreachable: {text}"
        problems.append((EXIT_UNREACHABLE, f"{where}: {text}"))
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
    from syncd.cli_groups import list_groups
    from syncd.status import job_overview

    jobs = load_jobs_or_exit(ctx.state)
    rows = job_overview(ctx.state, jobs)
    if as_json:
        click.echo(json.dumps(rows + list_groups(ctx.state, jobs, as_json=True), indent=2))
        return
    if not rows and not jobs.groups:
        click.echo("no jobs defined")
    for row in rows:
        last = row["last_run"]
        last_text = f"#{last['id']} {last['status']} {last['finished_at'] or ''}" if last else "-"
        click.echo(
            f"{row['name']:<20} {row['mode']:<12} {row['schedule'] or 'manual only':<24} "
            f"{'PAUSED ' if row['paused'] else ''}last: {last_text}  next: {row['next_run'] or '-'}"
        )
    list_groups(ctx.state, jobs, as_json=False)


@cli.command()
@click.argument("job")
@click.option("--full-refresh", is_flag=True, help="reset the checkpoint and reload the table")
@click.option("--jobs", "processes", type=click.IntRange(1, 256), default=1, show_default=True,
              help="a full load bigger than the job's split_rows is loaded in key ranges by "
                   "this many processes")
@pass_ctx
def run(ctx: Context, job: str, full_refresh: bool, processes: int) -> None:
    """Run one sync now in this process (no broker); Ctrl-C cancels it (exit 130)."""
    try:
        _run_now(ctx, job, full_refresh, processes)
    except KeyboardInterrupt:  # before the run started, or while it was being recorded
        click.echo(f"run {job}: stopped by Ctrl-C; see syncd history {job}")
        sys.exit(EXIT_INTERRUPTED)


def _run_now(ctx: Context, job: str, full_refresh: bool, processes: int = 1) -> None:
    from syncd.progress import CtrlC, terminal_progress
    from syncd.retry import LocalUnavailable
    from syncd.runner import RunRequest, describe, run_job

    ctx.bare = True  # a run in this process: no web app, no broker
    state = ctx.state
    QUICK_EXIT.append(state.engine)
    jobs = load_jobs_or_exit(state)
    if job in jobs.groups:
        from syncd.cli_groups import run_group

        run_group(state, jobs, jobs.groups[job], full_refresh)
    try:
        jobs.job(job)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    spec = jobs.job(job)
    creates = full_refresh or not _has_table(state, spec.target)
    checked = _check_before_run(jobs.path, spec, state.engine.dialect.name,
                                unique_key=creates, keep=state.sources,
                                reflected=state.reflected)
    QUICK_EXIT.extend(state.sources.values())
    if creates and checked:  # the whole table was just grouped by the job's key: not again
        state.keys_checked.add(spec.name)
    request = RunRequest(job=job, trigger="cli", full_refresh=full_refresh, started_by="cli",
                         split_workers=processes)
    ctrl_c = CtrlC()
    with terminal_progress(enabled=sys.stdout.isatty()) as hook, ctrl_c.installed():
        try:
            result = run_job(state, request, on_progress=hook, interrupted=ctrl_c)
        except ConfigError as exc:
            fail(str(exc), EXIT_CONFIG)
        except LocalUnavailable as exc:  # before a run row could be written
            click.echo(f"run {job}: failed -- {one_line(str(exc))}")
            sys.exit(EXIT_FAILED)
    assert result is not None
    click.echo(describe(result))
    if result.status == "skipped":
        sys.exit(EXIT_SKIPPED)
    if result.status == "cancelled" and ctrl_c.pressed:
        sys.exit(EXIT_INTERRUPTED)
    if result.status != "succeeded":
        sys.exit(EXIT_FAILED)


def _has_table(state: SyncdState, name: str) -> bool:
    """True if the local table exists; False when unknown (the run finds out and says)."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import DBAPIError

    try:
        with state.engine.connect() as conn:
            return bool(inspect(conn).has_table(name))
    except DBAPIError:
        return False


def _check_before_run(path: str, job: Any, local: str, unique_key: bool = True,
                      keep: dict[str, Any] | None = None,
                      reflected: dict[str, Any] | None = None) -> bool:
    """Exit 2, writing nothing, if the job's table, columns or key are wrong at the source.

    A source that cannot be reached or refuses the connection is not decided here: the
    run records it (an unreachable one after its retries) and exits 1. ``unique_key``
    False: a key the source does not declare unique is left to the run, which checks
    the rows it reads (the whole table is grouped only before a run creates the table).
    ``keep``: where the source engine is kept for the run when the check passed (its
    connection and what it learned of the source are used again); ``reflected``: where
    the source table it reflected is kept for the run (``syncd.runner.Reflected``).
    True if the job was checked (False: the source could not be asked, or the table is skipped).
    """
    from syncd.engine.checks import check_job, open_source, reach

    where = f'{path}: source "{job.source.name}" ({job.source.masked_url})'
    try:
        engine = open_source(job.source.url)
    except ConfigError as exc:
        fail(f"{where}: {exc}", EXIT_CONFIG)
    kept = False
    try:
        try:
            reach(engine)
        except ConfigError as exc:
            fail(f"{where}: {exc}", EXIT_CONFIG)
        if job.group is not None:  # a table of a group: its cursor among the candidates
            from syncd.group_tables import resolve_at_source
            from syncd.groups import TableSkipped

            try:
                job = resolve_at_source(job, engine)
            except TableSkipped:
                return False  # the run records it skipped
        table = job.table_sync()
        seen: list[Any] = []
        check_job(table, engine, local, unique_key=unique_key, seen=seen)
        if keep is not None:
            keep[job.source.url] = engine
            kept = True
            if reflected is not None:
                from syncd.runner import Reflected

                reflected[job.name] = Reflected(table, seen[0])
        return True
    except (SourceUnavailable, SourceRefused):
        return False
    except ConfigError as exc:
        fail(f'{path}: job "{job.name}": {exc}', EXIT_CONFIG)
        return False
    finally:
        if not kept:
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
        _known_job_or_exit(ctx.state, job)
        query = query.where(_runs_of(ctx.state, job))
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


def _runs_of(state: SyncdState, job: str) -> Any:
    """Runs of ``job``; of a group: the runs of its table jobs."""
    from syncd.models import SyncRun

    try:
        group = job in state.jobs().groups
    except ConfigError:
        group = False
    return SyncRun.job.startswith(job + ".", autoescape=True) if group else SyncRun.job == job


def _known_job_or_exit(state: SyncdState, job: str) -> None:
    """Exit 2, listing the jobs, unless ``job`` is in the jobs file or has runs in the history."""
    from syncd.models import SyncRun

    with state.sessions() as session:
        if session.scalar(select(SyncRun.id).where(SyncRun.job == job).limit(1)) is not None:
            return
        in_history = set(session.scalars(select(SyncRun.job).distinct()))
    try:
        jobs = state.jobs()
    except ConfigError:
        known = sorted(in_history)
        where = "the history (the jobs file does not validate)"
    else:
        if job in jobs.jobs or job in jobs.groups:
            return
        try:
            jobs.job(job)  # a table of a group
            return
        except ConfigError:
            pass
        known = sorted(set(jobs.jobs) | set(jobs.groups) | in_history)
        where = jobs.path
    listed = ", ".join(known[:50]) + (f" and {len(known) - 50} more" if len(known) > 50 else "")
    fail(f'{where}: no job named "{job}" (jobs: {listed or "none"})', EXIT_CONFIG)


@cli.command()
@click.argument("run_id", type=int)
@click.option("--wait", "wait_seconds", type=click.IntRange(0), default=None, metavar="SECONDS",
              help="wait until the run has stopped (at most SECONDS), then print its summary")
@pass_ctx
def cancel(ctx: Context, run_id: int, wait_seconds: int | None) -> None:
    """Cancel a queued or running run: it stops at the next batch boundary, its checkpoint
    committed (exit 0 cancelled or already finished, 2 unknown run)."""
    import time

    from syncd.cancel import request_cancel
    from syncd.runner import describe
    from syncd.web.history import get_run

    outcome = request_cancel(ctx.state, run_id, by="cli")
    if outcome.run is None:
        fail(f"no run #{run_id}", EXIT_CONFIG)
    click.echo(outcome.sentence())
    if outcome.done != "requested" or wait_seconds is None:
        return
    deadline = time.monotonic() + wait_seconds
    while (run := get_run(ctx.state, run_id)) is not None and run.status == "running":
        if time.monotonic() > deadline:
            fail(f"run #{run_id} is still running after {wait_seconds}s (a batch in progress "
                 "ends first)", EXIT_FAILED)
        time.sleep(0.5)
    if run is not None:
        click.echo(describe(run))


def _set_paused(ctx: Context, job: str, paused: bool) -> None:
    from syncd.runner import set_paused

    jobs = load_jobs_or_exit(ctx.state)
    try:
        if job not in jobs.groups:  # a group's scheduled ticks pause as a whole
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

    from syncd.engine.connect import explained, is_transient, short
    from syncd.engine.urls import BadURL

    try:
        try:
            cli(prog_name="syncd")
        except SystemExit as done:
            if QUICK_EXIT and sys.getprofile() is None and sys.gettrace() is None:
                quick_exit(done.code)  # (a profiler or debugger gets its normal exit)
            raise
    except BadURL as exc:  # SYNCD_DATABASE_URL: the message names it
        fail(str(exc), EXIT_CONFIG)
    except DBAPIError as exc:
        where = local_database()
        if is_transient(exc):
            fail(f"local database unreachable: {where}: {explained(exc)}", EXIT_FAILED)
        if MISSING_TABLES.search(str(exc.orig)):
            fail(f"local database {where} has no syncd tables, or older ones ({short(exc)}): "
                 "run `syncd db upgrade` to create or upgrade them", EXIT_CONFIG)
        if type(exc.orig).__name__ == "OperationalError":  # the server refused the login
            fail(f"local database {where} refused the connection: {explained(exc)}",
                 EXIT_CONFIG)
        fail(f"local database {where}: {explained(exc)}", EXIT_CONFIG)


def quick_exit(code: Any) -> None:
    """End the process at once, once a run is recorded and said: close the databases'
    connections, run the exit handlers, flush the output, then skip the interpreter's
    teardown of every module (a large share of a short run's time)."""
    import atexit
    import os

    for engine in QUICK_EXIT:
        engine.dispose()
    atexit._run_exitfuncs()
    if code is not None and not isinstance(code, int):
        click.echo(code, err=True)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def local_database() -> str:
    """The local database as an error names it: its masked URL and where it was set."""
    from config import Config
    from syncd.engine.urls import masked

    return f"{masked(Config().SYNCD_DATABASE_URL)} (SYNCD_DATABASE_URL)"
