"""``syncd verify JOB [--repair] [--json]``: compare the local table with the source.

Exit codes: 0 identical (or every difference repaired), 1 differences remain (or
the verify failed), 2 bad configuration or unknown job, 3 skipped (the job's lock
is held by a run in progress).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from syncd.engine.errors import ConfigError

EXIT_DIFFERENT, EXIT_CONFIG, EXIT_SKIPPED = 1, 2, 3


@click.command("verify")
@click.argument("job")
@click.option("--repair", is_flag=True, help="copy the differing rows again, delete extra ones")
@click.option("--json", "as_json", is_flag=True, help="print only the run as JSON")
@click.pass_obj
def verify(obj: Any, job: str, repair: bool, as_json: bool) -> None:
    """Compare the local table with the source table; report (and repair) every difference."""
    from syncd.cli import Context, _check_before_run, fail, load_jobs_or_exit
    from syncd.verify_runner import VerifyRequest, describe_verify, run_verify

    ctx = obj if isinstance(obj, Context) else click.get_current_context().ensure_object(Context)
    state = ctx.state
    jobs = load_jobs_or_exit(state)
    try:
        jobs.job(job)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    _check_before_run(jobs.path, jobs.job(job), state.engine.dialect.name)
    try:
        run = run_verify(state, VerifyRequest(job=job, repair=repair, started_by="cli"))
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    if as_json:
        click.echo(json.dumps(run.to_dict(), indent=2))
    else:
        click.echo(describe_verify(run))
        for example in (run.to_dict()["verify"] or {}).get("examples", []):
            click.echo("  " + example_line(example))
    if run.status == "skipped":
        sys.exit(EXIT_SKIPPED)
    if run.status != "succeeded":
        sys.exit(EXIT_DIFFERENT)


def example_line(example: dict[str, Any]) -> str:
    """One differing row as a line: its key, how it differs, whether it was repaired."""
    key = ", ".join(f"{k}={v}" for k, v in example["key"].items())
    line = f"{example['kind']}: {key}"
    if example.get("columns"):
        line += f" (columns {', '.join(example['columns'])})"
    if "repaired" in example:
        line += " repaired" if example["repaired"] else " NOT repaired"
    return line
