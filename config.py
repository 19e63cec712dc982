"""syncd configuration: the only module that reads the environment.

``Config`` holds the defaults of the embedded setup (SQLite files under
``./var/``); every value can be overridden by the environment variable of the
same name (see DESIGN section 2 and the README).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def seconds(value: str, name: str) -> float:
    """A duration setting: "90" (seconds), "30s", "5m", "1h" or "2d"."""
    text = value.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise ValueError(f'{name}: "{value}" is not a duration (use e.g. "90", "30s", "1h")'
                         ) from None


def _var_dir(environ: dict[str, str]) -> Path:
    return Path(environ.get("SYNCD_VAR_DIR", "var")).resolve()


def _secret_key(var_dir: Path, environ: dict[str, str]) -> str | None:
    """Return SYNCD_SECRET_KEY, or a key generated once and kept under var/."""
    if environ.get("SYNCD_SECRET_KEY"):
        return environ["SYNCD_SECRET_KEY"]
    if _flag(environ.get("SYNCD_PRODUCTION")):
        return None  # the web app refuses to start without one
    path = var_dir / "secret_key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


class Config:
    """Settings of one syncd process, read from ``environ`` (default: os.environ)."""

    def __init__(self, environ: dict[str, str] | None = None, **overrides: object) -> None:
        env = dict(os.environ if environ is None else environ)
        var_dir = _var_dir(env)
        self.VAR_DIR = var_dir
        self.ENVIRON = env  # handed to the jobs loader for ${VAR} expansion
        self.SYNCD_PRODUCTION = _flag(env.get("SYNCD_PRODUCTION"))
        self.SYNCD_DATABASE_URL = env.get(
            "SYNCD_DATABASE_URL", f"sqlite:///{var_dir / 'syncd.sqlite'}"
        )
        self.SYNCD_JOBS_FILE = env.get("SYNCD_JOBS_FILE", "jobs.toml")
        self.CELERY_BROKER_URL = env.get(
            "CELERY_BROKER_URL", f"sqla+sqlite:///{var_dir / 'broker.sqlite'}"
        )
        self.CELERY_RESULT_BACKEND = env.get("CELERY_RESULT_BACKEND") or None
        self.SYNCD_TIMEZONE = env.get("SYNCD_TIMEZONE", "UTC")
        self.SYNCD_SECURE_COOKIES = _flag(env.get("SYNCD_SECURE_COOKIES"))
        self.SYNCD_RETRY_ATTEMPTS = int(env.get("SYNCD_RETRY_ATTEMPTS", "4"))
        self.SYNCD_RETRY_BACKOFF = float(env.get("SYNCD_RETRY_BACKOFF", "2.0"))
        self.SECRET_KEY = _secret_key(var_dir, env) if "SECRET_KEY" not in overrides else None
        self.TESTING = False
        self.WTF_CSRF_ENABLED = True
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = self.SYNCD_SECURE_COOKIES
        self.REMEMBER_COOKIE_SECURE = self.SYNCD_SECURE_COOKIES
        self.REMEMBER_COOKIE_HTTPONLY = True
        # Longest allowed run; the broker's redelivery window is set above it.
        self.SYNCD_MAX_RUN_SECONDS = int(env.get("SYNCD_MAX_RUN_SECONDS", str(6 * 3600)))
        # Celery (see celery_settings): syncd's queue, beat's state file, housekeeping period.
        self.SYNCD_QUEUE = env.get("SYNCD_QUEUE", "syncd")
        self.SYNCD_BEAT_SCHEDULE_FILE = env.get(
            "SYNCD_BEAT_SCHEDULE_FILE", str(var_dir / "celerybeat-schedule")
        )
        self.SYNCD_HOUSEKEEPING_SECONDS = float(env.get("SYNCD_HOUSEKEEPING_SECONDS", "60"))
        # Runs older than this many days are deleted by housekeeping (0: keep them all).
        self.SYNCD_HISTORY_DAYS = float(env.get("SYNCD_HISTORY_DAYS", "90"))
        # Alert deliveries: attempts per target, backoff before the 2nd attempt (doubling),
        # and the timeout of one attempt, in seconds.
        self.SYNCD_NOTIFY_ATTEMPTS = int(env.get("SYNCD_NOTIFY_ATTEMPTS", "3"))
        self.SYNCD_NOTIFY_BACKOFF = float(env.get("SYNCD_NOTIFY_BACKOFF", "2.0"))
        self.SYNCD_NOTIFY_TIMEOUT = float(env.get("SYNCD_NOTIFY_TIMEOUT", "10"))
        # A run queued this long is never started (its broker message expires) and
        # housekeeping marks it abandoned.
        self.SYNCD_QUEUED_TIMEOUT = seconds(env.get("SYNCD_QUEUED_TIMEOUT", "1h"),
                                            "SYNCD_QUEUED_TIMEOUT")
        # The driver that reads MySQL sources in full loads: "auto" (asyncmy when installed,
        # with pip install 'syncd[fast]'), "pymysql" or "asyncmy".
        self.SYNCD_MYSQL_READER = env.get("SYNCD_MYSQL_READER", "auto").strip().lower()
        for key, value in overrides.items():
            setattr(self, key, value)
        if "SESSION_COOKIE_SECURE" not in overrides:
            self.SESSION_COOKIE_SECURE = bool(self.SYNCD_SECURE_COOKIES)
            self.REMEMBER_COOKIE_SECURE = bool(self.SYNCD_SECURE_COOKIES)

    def as_dict(self) -> dict[str, object]:
        """Upper-case settings, for ``app.config.from_mapping``."""
        return {k: v for k, v in vars(self).items() if k.isupper()}


def celery_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Celery's own settings from syncd's (CELERY_BROKER_URL -> broker_url, ...).

    Runs are acknowledged late, one at a time per worker process, on syncd's own
    queue; a Redis broker redelivers an unacknowledged message only after a
    visibility timeout longer than the longest allowed wait and run (RabbitMQ's
    equivalent, consumer_timeout, is set in rabbitmq.conf: see the README).
    """
    max_run = int(settings["SYNCD_MAX_RUN_SECONDS"])
    broker_url = str(settings["CELERY_BROKER_URL"])
    scheme = broker_url.split("://", 1)[0].lower()
    transport_options: dict[str, Any] = {}
    if scheme in {"redis", "rediss", "sentinel"}:
        # a run someone asked for may first wait as long as a run takes (syncd.waiting)
        transport_options["visibility_timeout"] = 2 * max_run + 600
    elif scheme == "sqla+sqlite":
        # kombu's SQLAlchemy transport hands these to create_engine(); it never redelivers.
        transport_options["connect_args"] = {"timeout": 60}
    return {
        "broker_url": broker_url,
        "result_backend": settings.get("CELERY_RESULT_BACKEND") or None,
        "task_ignore_result": True,
        "task_default_queue": settings["SYNCD_QUEUE"],
        "task_acks_late": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": max_run,
        "task_time_limit": max_run + 60,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "beat_scheduler": "beat_schedule:JobsScheduler",
        "beat_schedule_filename": str(settings["SYNCD_BEAT_SCHEDULE_FILE"]),
        "beat_max_loop_interval": 5,  # beat also notices edits of the jobs file
        "timezone": "UTC",
        "enable_utc": True,
    }
