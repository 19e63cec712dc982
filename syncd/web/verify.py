"""Verify in the web app: the "Verify and repair" button, the API call, the job page's
"last verified" line, and the ``syncd_job_rows_different`` metric.

``POST /jobs/<name>/verify`` (operators, CSRF, form field ``repair``) and
``POST /api/jobs/<name>/verify`` (bearer token, JSON ``{"repair": true|false}``)
queue a verify run through the broker, as *Sync now* queues a sync.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, flash, g, redirect, request, url_for
from flask_login import current_user
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from werkzeug.wrappers import Response

from syncd import SyncdState, get_state
from syncd.engine.errors import ConfigError
from syncd.models import FINISHED, SyncRun
from syncd.web import api, pages
from syncd.web.auth import operator_required
from syncd.web.history import running_run

TRUE = {"1", "true", "yes", "on"}


@pages.bp.route("/jobs/<name>/verify", methods=["POST"])
@operator_required
def verify_page(name: str) -> Response:
    """Queue a verify (form field ``repair``) and go to its run page."""
    from syncd.tasks import BrokerUnavailable
    from syncd.verify_tasks import enqueue_verify

    pages._job_or_404(name)
    state = get_state()
    repair = request.form.get("repair", "").lower() in TRUE
    running = running_run(state, name)
    try:
        run_id = enqueue_verify(state, name, repair, started_by=current_user.username)
    except BrokerUnavailable as exc:
        flash(str(exc), "error")
        return redirect(url_for("pages.job", name=name), code=303)
    then = f"; it waits for run #{running} to finish, then starts" if running else ""
    flash(f"{'Verify and repair' if repair else 'Verify'} of {name} queued as run #{run_id}"
          f"{then}.", "info")
    return redirect(url_for("pages.run", run_id=run_id), code=303)


@api.bp.post("/jobs/<name>/verify")
def verify_api(name: str) -> Any:
    """Queue a verify of ``name`` (body ``{"repair": true|false}``); 202 with the run."""
    from syncd.verify_tasks import enqueue_verify

    repair = _repair_flag()
    return api.queue_for_job(name, lambda state: enqueue_verify(
        state, name, repair, started_by=f"token:{g.api_token_name}"))


def _repair_flag() -> bool:
    """``repair`` of the JSON body: absent is false; anything but an empty body or a JSON
    object with a boolean ``repair`` is a 400 (the same rules as the sync API's body)."""
    return api.json_flags(("repair",)).get("repair", False)


@dataclass(frozen=True)
class LastVerify:
    """The newest finished verify of a job, as the job page shows it."""

    run_id: int
    status: str
    finished_at: datetime | None
    rows_different: int | None
    rows_repaired: int | None
    remaining: int | None

    @property
    def outcome(self) -> str:
        """``identical`` / ``12 rows differed, repaired`` / ``12 rows differ`` / ``failed``."""
        if self.rows_different is None:
            return self.status
        if self.rows_different == 0:
            return "identical"
        rows = f"{self.rows_different} row{'s' if self.rows_different != 1 else ''}"
        if self.remaining == 0:
            return f"{rows} differed, repaired"
        return f"{rows} differed, {self.remaining} not repaired" if self.rows_repaired \
            else f"{rows} differ"


def last_verify(state: SyncdState, job: str) -> LastVerify | None:
    """The job's newest finished verify run (index on (job, trigger, id))."""
    import json

    with state.sessions() as session:
        run = session.scalar(
            select(SyncRun).where(SyncRun.job == job, SyncRun.trigger == "verify",
                                  SyncRun.status.in_(("succeeded", "failed")))
            .order_by(SyncRun.id.desc()).limit(1))
    if run is None:
        return None
    found = json.loads(run.verify_json) if run.verify_json else {}
    return LastVerify(run.id, run.status, run.finished_at, run.rows_different,
                      run.rows_repaired, found.get("remaining"))


class VerifyCollector(Collector):
    """``syncd_job_rows_different``: rows that differed at each job's newest verify."""

    def __init__(self, state: SyncdState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "syncd_job_rows_different",
            "Rows that differed between the local and the source table at the job's newest "
            "verify (before any repair).", labels=["job"])
        try:
            names = sorted(self.state.jobs().jobs)
        except ConfigError:
            names = []
        for name in names:
            found = last_verify(self.state, name)
            if found is not None and found.rows_different is not None:
                gauge.add_metric([name], found.rows_different)
        yield gauge


def init_verify(app: Flask) -> None:
    """Make ``last_verify(name)`` available to the templates."""

    @app.context_processor
    def _helpers() -> dict[str, Any]:
        return {"last_verify": lambda name: last_verify(get_state(), name),
                "finished_statuses": FINISHED}
