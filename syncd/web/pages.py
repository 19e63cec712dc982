"""The admin pages: dashboard, job history, run detail, and the operator's actions.

Views stay thin: they validate, call the runner or ``enqueue_run`` and render.
Every action answers at once with a 303 redirect (to the run page for a sync).
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from syncd import get_state
from syncd.jobs import JobsFile, JobSpec
from syncd.jobs_in_force import JobsInForce
from syncd.models import FINISHED, RUN_STATUSES, TRIGGERS
from syncd.stale_runs import housekeep_now_and_then
from syncd.web.auth import operator_required, safe_next
from syncd.web.chart import run_chart
from syncd.web.dashboard import group_rows, job_rows
from syncd.web.history import (
    PAGE_SIZE,
    RunFilter,
    get_run,
    has_runs,
    queued,
    run_page,
    running_run,
)

bp = Blueprint("pages", __name__, template_folder="templates", static_folder="static",
               static_url_path="/assets")
TRUE = {"1", "true", "yes", "on"}


def jobs_in_force() -> JobsInForce:
    """The jobs in force, read once per request (the banner of every page shows a rejection)."""
    if "syncd_jobs_in_force" not in g:
        g.syncd_jobs_in_force = get_state().jobs_in_force()
    return g.syncd_jobs_in_force  # type: ignore[no-any-return]


def _jobs_file() -> tuple[JobsFile | None, str | None]:
    """The jobs in force (None if no jobs file ever validated) and the rejection, if any."""
    force = jobs_in_force()
    return force.jobs, force.rejected


@bp.app_context_processor
def _banner() -> dict[str, Any]:
    return {"jobs_in_force": jobs_in_force}


def _job_or_404(name: str) -> JobSpec:
    jobs, problem = _jobs_file()
    if jobs is None:
        abort(409, f"the jobs file does not validate: {problem}")
    spec = _spec(jobs, name)
    if spec is None:
        abort(404, f'no job named "{name}"')
    return spec


def _spec(jobs: JobsFile | None, name: str) -> JobSpec | None:
    """The job ``name`` (a table of a group too), or None."""
    from syncd.engine.errors import ConfigError

    if jobs is None:
        return None
    try:
        return jobs.job(name)
    except ConfigError:
        return None


def _choice(arg: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(arg) or None
    if value is not None and value not in allowed:
        abort(400, f"{arg} must be one of {', '.join(allowed)}")
    return value


def _run_id_arg(arg: str) -> int | None:
    value = request.args.get(arg) or None
    if value is not None and not value.isdigit():
        abort(400, f"{arg} must be a run id")
    return int(value) if value is not None else None


@bp.route("/")
@login_required
def dashboard() -> str:
    """All jobs: last run, last success, freshness, schedule, next run, buttons."""
    jobs, problem = _jobs_file()
    housekeep_now_and_then(get_state())
    rows = job_rows(get_state(), jobs.jobs) if jobs is not None else []
    groups = group_rows(get_state(), jobs) if jobs is not None else []
    return render_template("dashboard.html", rows=rows, problem=problem, groups=groups)


@bp.route("/jobs/<name>")
@login_required
def job(name: str) -> str:
    """One job's history with filters, keyset paging and a chart."""
    state = get_state()
    jobs, problem = _jobs_file()
    spec = _spec(jobs, name)
    if spec is None and not has_runs(state, name):
        abort(404, f'no job named "{name}"')
    f = RunFilter(job=name, status=_choice("status", RUN_STATUSES),
                  trigger=_choice("trigger", TRIGGERS), before=_run_id_arg("before"),
                  after=_run_id_arg("after"), limit=PAGE_SIZE)
    page = run_page(state, f)
    row = job_rows(state, {name: spec})[0] if spec is not None else None
    return render_template(
        "job.html", name=name, spec=spec, row=row, page=page, f=f, problem=problem,
        chart=run_chart(page.runs), statuses=RUN_STATUSES, triggers=TRIGGERS,
    )


@bp.route("/jobs/<name>/resync")
@operator_required
def confirm_resync(name: str) -> str:
    """Ask before a full resync: it resets the checkpoint and reloads the whole table."""
    spec = _job_or_404(name)
    state = get_state()
    return render_template("confirm_resync.html", spec=spec, running_id=running_run(state, name),
                           queued_id=queued(state, name).full_id)


@bp.route("/jobs/<name>/sync", methods=["POST"])
@operator_required
def sync(name: str) -> Response:
    """Queue a run (form field ``full_refresh``) and go to its page.

    While a run of the job is running, the new run waits for it ("waiting for run #N");
    while a run that does the same is already queued, that one is shown instead.
    """
    from syncd.tasks import BrokerUnavailable, enqueue_run

    _job_or_404(name)
    state = get_state()
    full_refresh = request.form.get("full_refresh", "").lower() in TRUE
    kind = "full resync" if full_refresh else "sync"
    waiting = queued(state, name).covering(full_refresh)
    if waiting is not None:
        flash(f"A {kind} of {name} is already queued as run #{waiting}; no second one was "
              "queued.", "warning")
        return redirect(url_for("pages.run", run_id=waiting), code=303)
    running = running_run(state, name)
    try:
        run_id = enqueue_run(state, name, "manual", full_refresh=full_refresh,
                             started_by=current_user.username)
    except BrokerUnavailable as exc:
        flash(str(exc), "error")
        return redirect(url_for("pages.job", name=name), code=303)
    then = f"; it waits for run #{running} to finish, then starts" if running else ""
    flash(f"{kind.capitalize()} of {name} queued as run #{run_id}{then}.", "info")
    return redirect(url_for("pages.run", run_id=run_id), code=303)


@bp.route("/runs/<int:run_id>/cancel", methods=["POST"])
@operator_required
def cancel(run_id: int) -> Response:
    """Cancel a queued or running run; it stops at the next batch boundary."""
    from syncd.cancel import request_cancel

    outcome = request_cancel(get_state(), run_id, by=current_user.username)
    if outcome.run is None:
        abort(404, f"no run #{run_id}")
    flash(outcome.sentence()[0].upper() + outcome.sentence()[1:] + ".",
          "warning" if outcome.done == "finished" else "info")
    return redirect(url_for("pages.run", run_id=run_id), code=303)


def _set_paused(name: str, paused: bool) -> Response:
    from syncd.runner import set_paused

    _job_or_404(name)
    set_paused(get_state(), name, paused, by=current_user.username)
    flash(f"{name} {'paused: scheduled runs do nothing' if paused else 'resumed'}.", "info")
    target = request.form.get("next")
    return redirect(safe_next(target) if target else url_for("pages.job", name=name), code=303)


@bp.route("/jobs/<name>/pause", methods=["POST"])
@operator_required
def pause(name: str) -> Response:
    """Pause the job's scheduled runs (manual runs still work)."""
    return _set_paused(name, True)


@bp.route("/jobs/<name>/resume", methods=["POST"])
@operator_required
def resume(name: str) -> Response:
    """Resume the job's scheduled runs."""
    return _set_paused(name, False)


@bp.route("/runs/<int:run_id>")
@login_required
def run(run_id: int) -> str:
    """One run: who and what started it, counts, cursors, live progress, error, traceback."""
    sync_run = get_run(get_state(), run_id)
    if sync_run is None:
        abort(404, f"no run #{run_id}")
    return render_template("run.html", run=sync_run, finished=sync_run.status in FINISHED)


@bp.route("/runs/<int:run_id>/progress")
@login_required
def run_progress(run_id: int) -> Any:
    """The run as JSON, polled by the run page while the run is queued or running."""
    sync_run = get_run(get_state(), run_id)
    if sync_run is None:
        abort(404, f"no run #{run_id}")
    data = sync_run.to_dict()
    data["finished"] = sync_run.status in FINISHED
    return jsonify(data)

