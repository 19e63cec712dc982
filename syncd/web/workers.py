"""The workers page: workers alive and what each runs, the queue's depth, beat's last tick."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask_login import login_required

from syncd import get_state
from syncd.heartbeats import is_alive
from syncd.workers import workers_report

bp = Blueprint("workers", __name__, template_folder="templates")


@bp.route("/workers")
@login_required
def workers() -> str:
    """Workers (heartbeats and Celery's ping), runs in progress and waiting, beat."""
    report = workers_report(get_state(), current_app.extensions["celery"])
    return render_template("workers.html", report=report, is_alive=is_alive)
