"""The admin page (operators only): web users, API tokens and the audit of their changes."""

from __future__ import annotations

from flask import Blueprint, render_template

from syncd import get_state
from syncd.web.accounts import list_tokens, list_users, recent_audit
from syncd.web.auth import operator_required

bp = Blueprint("admin", __name__, template_folder="templates")
SHOWN = 100


@bp.route("/admin")
@operator_required
def overview() -> str:
    """Users, tokens and the last audit entries; changes are made with the syncd command."""
    state = get_state()
    return render_template("admin.html", users=list_users(state), tokens=list_tokens(state),
                           entries=recent_audit(state, SHOWN), shown=SHOWN)
