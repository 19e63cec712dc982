"""Celery bound to the Flask app (Flask's "Background Tasks with Celery" pattern).

Settings come from the Flask config through ``config.celery_settings``; every
task runs inside an app context, so it reaches the local database through
``syncd.get_state()``. The worker entry is ``syncd.worker``.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from flask import Flask


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app for ``app``; every task runs inside an app context."""
    from config import celery_settings

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.conf.update(celery_settings(app.config))
    celery_app.set_default()
    celery_app.flask_app = app  # type: ignore[attr-defined]  # for beat's JobsScheduler
    app.extensions["celery"] = celery_app
    import syncd.tasks  # noqa: F401  (registers the shared tasks on this app)
    import syncd.verify_tasks  # noqa: F401

    return celery_app


def flask_app_of(celery_app: Celery) -> Any:
    """The Flask app a Celery app was created for by ``celery_init_app``."""
    return celery_app.flask_app  # type: ignore[attr-defined]
