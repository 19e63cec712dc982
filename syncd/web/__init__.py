"""The admin web app: blueprints registered on the Flask app.

``init_web`` binds the extensions (Flask-Login, Flask-WTF's CSRF protection),
registers the pages, auth, JSON API and operations blueprints and adds the
security headers. ``create_web_app`` is the entry point of a web server
(``gunicorn 'syncd.web:create_web_app()'``): it refuses to build the app in
production without a secret key.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, abort, jsonify, render_template, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException

csrf = CSRFProtect()

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


class MissingSecretKey(RuntimeError):
    """The web app was asked to start in production without SYNCD_SECRET_KEY."""


def init_web(app: Flask) -> None:
    """Register the web blueprints, login, CSRF protection and security headers on ``app``."""
    from syncd.web import admin, alerts, api, auth, ops, pages, verify, workers
    from syncd.web.display import register_filters

    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid for the session's lifetime
    csrf.init_app(app)
    auth.login_manager.init_app(app)
    register_filters(app)
    verify.init_verify(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(alerts.bp)
    app.register_blueprint(workers.bp)
    app.register_blueprint(admin.bp)
    csrf.exempt(api.bp)  # bearer tokens, no cookies: nothing for a forged request to ride on
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _http_error)
    if app.config.get("SYNCD_PRODUCTION") and not app.config.get("SECRET_KEY"):
        app.before_request(_refuse_without_secret_key)


def create_web_app(config: Any = None) -> Flask:
    """The syncd app for a web server; refuses production without a secret key.

    Called without ``config`` (by gunicorn), a configuration it cannot start with stops
    the server with one line on stderr and exit 3, gunicorn's "worker failed to boot".
    """
    from syncd import create_app
    from syncd.errors import SyncError, refuse_to_start

    try:
        app = create_app(config)
        check_web_config(app)
    except (SyncError, MissingSecretKey) as exc:
        if config is not None:
            raise
        refuse_to_start("web app", exc, code=3)
    return app


def check_web_config(app: Flask) -> None:
    """Raise MissingSecretKey if ``app`` runs in production without a secret key."""
    if app.config.get("SYNCD_PRODUCTION") and not app.config.get("SECRET_KEY"):
        raise MissingSecretKey(
            "SYNCD_PRODUCTION is set but SYNCD_SECRET_KEY is not: refusing to start the "
            "web app (set SYNCD_SECRET_KEY to a long random string, e.g. "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )


def _refuse_without_secret_key() -> None:
    if request.endpoint not in ("ops.healthz", "ops.readyz", "ops.metrics"):
        abort(503, "the web app is not configured: SYNCD_SECRET_KEY is missing")


def _http_error(exc: HTTPException) -> Any:
    """JSON errors under /api/ and for JSON clients; an HTML page otherwise."""
    code = exc.code or 500
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        response = jsonify(error=exc.description, status=code)
    else:
        response = Response(render_template("error.html", code=code, name=exc.name,
                                            description=exc.description), mimetype="text/html")
    response.status_code = code
    for key, value in exc.get_headers():
        if key.lower() not in ("content-type", "content-length"):
            response.headers[key] = value
    return response


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        headers.setdefault("Cache-Control", "no-store")
    return response
