"""The alerts page: where alerts go, which events are sent, and the last deliveries."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required

from syncd import get_state
from syncd.engine.errors import ConfigError
from syncd.notify.alerts import recent_deliveries

bp = Blueprint("alerts", __name__, template_folder="templates")
SHOWN = 100


@bp.route("/alerts")
@login_required
def deliveries() -> str:
    """The configured targets (masked) and the last deliveries, newest first."""
    state = get_state()
    try:
        notify, problem = state.jobs().notify, None
    except ConfigError as exc:
        notify, problem = None, str(exc)
    return render_template("alerts.html", notify=notify, problem=problem,
                           deliveries=recent_deliveries(state, SHOWN), shown=SHOWN)
