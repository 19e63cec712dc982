"""The JSON API: bearer tokens (``syncd tokens add NAME``), 401 without one, never a redirect.

``GET /api/jobs``, ``GET /api/runs?job=&status=&trigger=&limit=&before=``,
``GET /api/runs/<id>``, ``POST /api/jobs/<name>/sync`` (JSON body
``{"full_refresh": true|false}``), ``POST /api/runs/<id>/cancel``. Run objects are
those of ``syncd history --json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, g, jsonify, request, url_for

from syncd import get_state
from syncd.engine.errors import ConfigError
from syncd.models import RUN_STATUSES, TRIGGERS
from syncd.web import accounts
from syncd.web.history import MAX_LIMIT, RunFilter, get_run, run_page

bp = Blueprint("api", __name__, url_prefix="/api")


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
    """Queue a run of ``name`` (trigger ``api``); 202 with the queued run.

    The body is empty or a JSON object ``{"full_refresh": true|false}``; anything else
    (not JSON, a value that is not a boolean, an unknown field) is a 400 and queues nothing.
    """
    from syncd.tasks import enqueue_run

    full_refresh = json_flags(("full_refresh",)).get("full_refresh", False)
    return queue_for_job(name, lambda state: enqueue_run(
        state, name, "api", full_refresh=full_refresh, started_by=f"token:{g.api_token_name}"))


def queue_for_job(name: str, enqueue: Callable[[Any], int]) -> Any:
    """Queue a run of the job ``name`` with ``enqueue(state)``; 202 with the queued run
    (404 unknown job, 409 no jobs file in force, 503 broker unreachable)."""
    from syncd.tasks import BrokerUnavailable

    state = get_state()
    try:
        jobs_file = state.jobs()
    except ConfigError as exc:
        abort(409, str(exc))
    if name not in jobs_file.jobs:
        abort(404, f'no job named "{name}"')
    try:
        run_id = enqueue(state)
    except BrokerUnavailable as exc:
        abort(503, str(exc))
    queued = get_run(state, run_id)
    assert queued is not None
    response = jsonify(queued.to_dict())
    response.status_code = 202
    response.headers["Location"] = url_for("api.run", run_id=run_id)
    return response


@bp.post("/runs/<int:run_id>/cancel")
def cancel(run_id: int) -> Any:
    """Cancel a queued or running run: 200 with the run (``cancelled``, or still running
    with ``cancel_requested_at`` until its next batch boundary, or already finished)."""
    from syncd.cancel import request_cancel

    json_flags(())  # no body expected: a body that is not JSON is still a mistake
    outcome = request_cancel(get_state(), run_id, by=f"token:{g.api_token_name}")
    if outcome.run is None:
        abort(404, f"no run #{run_id}")
    data = outcome.run.to_dict()
    data["cancel"] = outcome.done  # "cancelled" | "requested" | "finished"
    return jsonify(data)


def json_flags(allowed: tuple[str, ...]) -> dict[str, bool]:
    """The request's JSON body: an object of booleans with ``allowed`` keys (empty: {}).

    400 with a message for a body that is not JSON, not an object, an unknown key or a
    value that is not true or false (``"false"`` is a string, not false).
    """
    example = f' such as {{"{allowed[0]}": true}}' if allowed else ""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        abort(400, f"the body must be JSON: empty or an object{example}")
    if not isinstance(body, dict):
        abort(400, f"the body must be a JSON object{example}")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        abort(400, f"unknown field(s) {', '.join(json.dumps(k) for k in unknown)}"
              + (f" (fields: {', '.join(allowed)})" if allowed else " (no body expected)"))
    for key, value in body.items():
        if not isinstance(value, bool):
            abort(400, f"{key} must be true or false (a JSON boolean), not "
                       f"{json.dumps(value)[:100]}")
    return body
