"""Celery bound to the Flask app (Flask's "Background Tasks with Celery" pattern)."""

from __future__ import annotations

from celery import Celery, Task
from flask import Flask


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app for ``app``; every task runs inside an app context."""

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.conf.update(
        broker_url=app.config["CELERY_BROKER_URL"],
        result_backend=app.config.get("CELERY_RESULT_BACKEND"),
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
    )
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app
