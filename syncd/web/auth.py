"""Login, logout and roles: ``viewer`` reads, ``operator`` also acts."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from syncd import get_state
from syncd.models import User
from syncd.web import accounts
from syncd.web.login_limits import LoginThrottle

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.session_protection = "basic"

F = TypeVar("F", bound=Callable[..., Any])


class WebUser(UserMixin):
    """The logged-in user as Flask-Login sees it.

    Its session id includes a digest of the password hash, so changing a
    password ends the sessions opened with the old one.
    """

    def __init__(self, user: User) -> None:
        self.user_id = user.id
        self.username = user.username
        self.role = user.role
        self.stamp = hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]

    def get_id(self) -> str:
        return f"{self.user_id}:{self.stamp}"

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


@login_manager.user_loader
def _load_user(session_id: str) -> WebUser | None:
    user_id, _, stamp = session_id.partition(":")
    if not user_id.isdigit():
        return None
    user = accounts.load_user(get_state(), int(user_id))
    if user is None:
        return None
    web_user = WebUser(user)
    return web_user if web_user.stamp == stamp else None


@login_manager.unauthorized_handler
def _unauthorized() -> Response:
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("auth.login", next=target) if target else url_for("auth.login"))


def operator_required(view: F) -> F:
    """Only an operator may call ``view``: anonymous -> login, viewer -> 403."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.is_operator:
            abort(403, "this needs the operator role; you are a viewer")
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else the dashboard (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and all(ord(c) >= 32 for c in target):
            return target
    return url_for("pages.dashboard")


def _throttle() -> LoginThrottle:
    throttle = current_app.extensions.get("syncd_login_throttle")
    if throttle is None:
        throttle = current_app.extensions["syncd_login_throttle"] = LoginThrottle(get_state())
    return throttle  # type: ignore[no-any-return]


class LoginForm(FlaskForm):
    username = StringField("User name", validators=[DataRequired(), Length(max=100)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1000)])


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Show the login form; on POST check the password and go to ``next``."""
    form = LoginForm()
    next_url = request.values.get("next")
    if form.validate_on_submit():
        username = (form.username.data or "").strip()
        throttle = _throttle()
        if throttle.admit(username) is None:  # counted before the password is checked
            flash("Too many failed logins for this user: try again in a few minutes.", "error")
            return render_template("login.html", form=form, next_url=next_url), 429
        user = accounts.authenticate(get_state(), username, form.password.data or "")
        if user is not None:
            throttle.succeeded(username)
            session.clear()  # a fresh session for the new login
            login_user(WebUser(user))
            return redirect(safe_next(next_url), code=303)
        flash("Wrong user name or password.", "error")
        return render_template("login.html", form=form, next_url=next_url)
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(next_url))
    return render_template("login.html", form=form, next_url=next_url)


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    """End the session (POST with a CSRF token only)."""
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"), code=303)
