"""Operations endpoints, no login: ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from syncd import get_state
from syncd.stale_runs import housekeep_now_and_then
from syncd.web.metrics import metrics_registry

bp = Blueprint("ops", __name__)
log = logging.getLogger(__name__)


def _plain(body: str, status: int = 200) -> Response:
    return Response(body + "\n", status=status, mimetype="text/plain")


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive."""
    return _plain("ok")


@bp.get("/readyz")
def readyz() -> Response:
    """The local database and the broker answer (503 with the reason if one does not)."""
    from syncd.workers import broker_problem

    state = get_state()
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("readyz: local database unreachable: %s", exc)
        return _plain("local database unreachable", 503)
    problem = broker_problem(current_app.extensions["celery"], state.config.SYNCD_QUEUE)
    if problem is not None:
        log.warning("readyz: %s", problem)
        return _plain(problem, 503)
    return _plain("ok")


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format, built from the run history at scrape time."""
    housekeep_now_and_then(get_state())
    registry = current_app.extensions.get("syncd_metrics")
    if registry is None:
        registry = current_app.extensions["syncd_metrics"] = metrics_registry(get_state())
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
