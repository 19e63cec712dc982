"""``syncd notify test``: send a test alert to every target of the jobs file's ``[notify]``.

Exit codes: 0 every target took it, 1 a target failed (or none is configured),
2 the jobs file does not validate.
"""

from __future__ import annotations

import sys

import click

EXIT_FAILED, EXIT_CONFIG = 1, 2


@click.group()
def notify() -> None:
    """Alerts: the [notify] section of the jobs file."""


@notify.command("test")
def notify_test() -> None:
    """Send a test alert to every target (webhooks, e-mail); exit 0 if all took it."""
    from syncd import create_app, get_state
    from syncd.notify.alerts import send_test

    state = get_state(create_app())
    try:
        force = state.jobs_in_force()  # the file on disk is tested, not the last good one
        if force.rejected is not None:
            click.echo(f"error: {force.rejected}", err=True)
            sys.exit(EXIT_CONFIG)
        jobs = force.require()
        if not jobs.notify.targets:
            click.echo(f"error: {jobs.path}: no [notify] section: no alert target to test",
                       err=True)
            sys.exit(EXIT_FAILED)
        results = send_test(state, jobs)
    finally:
        state.dispose()
    for result in results:
        line = f"{result.status}: {result.target} ({result.attempts} attempt(s))"
        click.echo(line + (f": {result.error}" if result.error else ""))
    failed = sum(r.status != "delivered" for r in results)
    click.echo(f"{len(results) - failed} of {len(results)} target(s) took the test alert")
    if failed or not results:
        sys.exit(EXIT_FAILED)
