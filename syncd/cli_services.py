"""``syncd trigger`` (queue a run on the broker) and ``syncd up`` (the embedded all-in-one).

Exit codes: 0 queued / stopped cleanly, 1 broker unreachable or a service died,
2 bad configuration or unknown job.
"""

from __future__ import annotations

import sys

import click

from syncd.engine.errors import ConfigError

EXIT_FAILED, EXIT_CONFIG = 1, 2


@click.command()
@click.argument("job")
@click.option("--full-refresh", is_flag=True, help="reset the checkpoint and reload the table")
def trigger(job: str, full_refresh: bool) -> None:
    """Queue a run of JOB for the workers; print its run id alone on the last line."""
    from syncd import create_app, get_state
    from syncd.cli import load_jobs_or_exit
    from syncd.tasks import BrokerUnavailable, enqueue_run
    from syncd.web.history import running_run

    app = create_app()
    state = get_state(app)
    try:
        jobs = load_jobs_or_exit(state)  # says so when a rejected file leaves the last good one
        if job in jobs.groups:
            from syncd.cli_groups import trigger_group

            with app.app_context():
                trigger_group(state, jobs, jobs.groups[job], full_refresh)
            return
        with app.app_context():
            run_id = enqueue_run(state, job, "cli", full_refresh=full_refresh, started_by="cli")
        running = running_run(state, job)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    except BrokerUnavailable as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    finally:
        state.dispose()
    kind = "full refresh" if full_refresh else "sync"
    then = f"; it waits for run #{running} to finish" if running is not None else ""
    click.echo(f"queued {kind} of job {job} as run #{run_id}{then}; follow it with: "
               f"syncd history {job}")
    click.echo(str(run_id))


@click.command()
@click.option("--demo", is_flag=True,
              help="create a demo source database that keeps changing, and demo jobs")
@click.option("--host", default="127.0.0.1", show_default=True, help="admin web address")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(1, 64),
              help="worker processes running syncs")
def up(demo: bool, host: str, port: int, concurrency: int) -> None:
    """Run everything on this machine: migrations, a worker with beat, the admin web app.

    Ctrl-C stops it all (a sync in progress finishes first; press again to stop at once).
    """
    from config import Config
    from syncd.services import UpOptions, run_up

    options = UpOptions(demo=demo, host=host, port=port, concurrency=concurrency)
    sys.exit(run_up(Config(), options))
