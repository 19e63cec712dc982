"""The JSON API: bearer tokens (``syncd tokens add NAME``), 401 without one, never a redirect.

``GET /api/jobs``, ``GET /api/runs?job=&status=&trigger=&limit=&before=``,
``GET /api/runs/<id>``, ``POST /api/jobs/<name>/sync`` (JSON or form field
``full_refresh``). Run objects are those of DESIGN section 5.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g, jsonify, request, url_for

from syncd import get_state
from syncd.engine.errors import ConfigError
from syncd.models import RUN_STATUSES, TRIGGERS
from syncd.web import accounts
from syncd.web.history import MAX_LIMIT, RunFilter, get_run, run_page

bp = Blueprint("api", __name__, url_prefix="/api")
TRUE = {"1", "true", "yes", "on"}


@bp.before_request
def _require_token() -> Any:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    row = None
    if scheme.lower() == "bearer" and token.strip():
        row = accounts.check_token(get_state(), token.strip())
    if row is None:
        response = jsonify(error="a valid API token is required: Authorization: Bearer <token>")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="syncd"'
        return response
    g.api_token_name = row.name
    return None


def _int_arg(name: str, default: int | None, maximum: int | None = None) -> int | None:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit() or int(value) < 1:
        abort(400, f"{name} must be a positive integer")
    return min(int(value), maximum) if maximum else int(value)


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        abort(400, f"{name} must be one of {', '.join(allowed)}")
    return value


@bp.get("/jobs")
def jobs() -> Any:
    """All jobs with schedule, paused flag, last run, last success and next run."""
    from syncd.status import job_overview

    state = get_state()
    try:
        jobs_file = state.jobs()
    except ConfigError as exc:
        abort(409, str(exc))
    return jsonify(job_overview(state, jobs_file))


@bp.get("/runs")
def runs() -> Any:
    """Recent runs, newest first (``before=<id>`` pages back)."""
    f = RunFilter(job=request.args.get("job") or None, status=_choice("status", RUN_STATUSES),
                  trigger=_choice("trigger", TRIGGERS), before=_int_arg("before", None),
                  limit=_int_arg("limit", 50, MAX_LIMIT) or 50)
    page = run_page(get_state(), f)
    return jsonify([r.to_dict() for r in page.runs])


@bp.get("/runs/<int:run_id>")
def run(run_id: int) -> Any:
    """One run."""
    sync_run = get_run(get_state(), run_id)
    if sync_run is None:
        abort(404, f"no run #{run_id}")
    return jsonify(sync_run.to_dict())


@bp.post("/jobs/<name>/sync")
def sync(name: str) -> Any:
    """Queue a run of ``name`` (trigger ``api``); 202 with the queued run."""
    from syncd.tasks import BrokerUnavailable, enqueue_run

    state = get_state()
    body = request.get_json(silent=True) if request.is_json else None
    if isinstance(body, dict):
        full_refresh = bool(body.get("full_refresh", False))
    else:
        full_refresh = request.values.get("full_refresh", "").lower() in TRUE
    try:
        jobs_file = state.jobs()
    except ConfigError as exc:
        abort(409, str(exc))
    if name not in jobs_file.jobs:
        abort(404, f'no job named "{name}"')
    try:
        run_id = enqueue_run(state, name, "api", full_refresh=full_refresh,
                             started_by=f"token:{g.api_token_name}")
    except BrokerUnavailable as exc:
        abort(503, str(exc))
    sync_run = get_run(state, run_id)
    assert sync_run is not None
    response = jsonify(sync_run.to_dict())
    response.status_code = 202
    response.headers["Location"] = url_for("api.run", run_id=run_id)
    return response
