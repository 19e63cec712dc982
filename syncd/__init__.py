"""syncd: keep local tables in step with remote databases.

``create_app`` builds the Flask app: configuration, the local database,
Celery, the web blueprints and the CLI. Nothing runs at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the engine package imports none of these (a test asserts it)
    from flask import Flask
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from syncd.jobs import JobsFile
    from syncd.jobs_in_force import JobsInForce


class SyncdState:
    """What every part of syncd shares: settings, the local engine, sessions, the jobs file."""

    def __init__(self, config: Any) -> None:
        from syncd.db import make_local_engine, session_factory
        from syncd.jobs_in_force import JobsKeeper

        self.config = config
        self.engine: Engine = make_local_engine(config.SYNCD_DATABASE_URL)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)
        self.keeper = JobsKeeper(config.SYNCD_JOBS_FILE, config.ENVIRON, self.engine,
                                 self.sessions)
        # Source engines this process keeps open, by URL (`syncd run`: the engine that
        # checked the job serves its run); whoever adds one disposes of it.
        self.sources: dict[str, Engine] = {}
        self.keys_checked: set[str] = set()  # jobs whose source key was just checked
        # Source tables just reflected by the check of a job, by job (`syncd run`: its
        # run uses the table instead of reflecting it again; syncd.runner.Reflected).
        self.reflected: dict[str, Any] = {}

    def jobs(self) -> JobsFile:
        """The jobs in force (the jobs file is read anew each call: edits take effect).

        A jobs file that does not validate leaves the last good one in force;
        ConfigError (the validation message) only when no jobs file ever validated.
        """
        return self.keeper.current().require()

    def jobs_in_force(self) -> JobsInForce:
        """The jobs in force with the rejection of the jobs file, if it was rejected."""
        return self.keeper.current()

    def dispose(self) -> None:
        """Close the local engine's connections."""
        self.engine.dispose()


def create_app(config: Any = None, web: bool = True) -> Flask:
    """Build the syncd Flask app. ``config``: a Config, a dict of overrides, or None.

    ``web=False``: without the web pages (a command that only runs a sync starts faster).
    """
    from flask import Flask

    from config import Config

    if config is None:
        config = Config()
    elif isinstance(config, dict):
        config = Config(**config)
    app = Flask(__name__)
    app.config.from_mapping(config.as_dict())
    state = SyncdState(config)
    app.extensions["syncd"] = state

    from syncd.celery_app import celery_init_app

    celery_init_app(app)
    if web:
        from syncd.web import init_web

        init_web(app)
    return app


def get_state(app: Flask | None = None) -> SyncdState:
    """The SyncdState of ``app`` (default: the current app)."""
    from flask import current_app

    return (app or current_app).extensions["syncd"]  # type: ignore[no-any-return]
