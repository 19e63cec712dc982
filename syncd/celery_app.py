"""Celery bound to the Flask app (Flask's "Background Tasks with Celery" pattern).

Settings come from the Flask config through ``config.celery_settings``; every
task runs inside an app context, so it reaches the local database through
``syncd.get_state()``. The worker entry is ``syncd.worker``.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

from celery import Celery, Task, bootsteps
from celery.signals import worker_ready
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
    celery_app.steps["worker"].add(WorkerHeartbeat)
    celery_app.set_default()
    celery_app.flask_app = app  # type: ignore[attr-defined]  # for beat's JobsScheduler
    app.extensions["celery"] = celery_app
    import syncd.group_tasks  # noqa: F401
    import syncd.tasks  # noqa: F401  (registers the shared tasks on this app)
    import syncd.verify_tasks  # noqa: F401

    return celery_app


def flask_app_of(celery_app: Celery) -> Any:
    """The Flask app a Celery app was created for by ``celery_init_app``."""
    return celery_app.flask_app  # type: ignore[attr-defined]


class WorkerHeartbeat(bootsteps.StartStopStep):  # type: ignore[misc]
    """Writes the worker's heartbeat to the local database (the workers page reads it).

    A thread of the worker's main process writes it (the first once the worker is
    ready), on an engine that keeps no connection, so nothing is shared with the
    pool processes the worker forks.
    """

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.thread: Any = None

    def start(self, worker: Any) -> None:
        from syncd.heartbeats import WORKER_EVERY, HeartbeatThread, worker_sign

        ready = threading.Event()
        worker_ready.connect(lambda **_: ready.set(), weak=False)
        url = flask_app_of(worker.app).config["SYNCD_DATABASE_URL"]
        pid, host = os.getpid(), socket.gethostname()
        self.thread = HeartbeatThread(url, lambda: worker_sign(worker, host, pid), WORKER_EVERY,
                                      first=ready)
        self.thread.start()

    def stop(self, worker: Any) -> None:
        if self.thread is not None:
            self.thread.stop()
            self.thread = None
