"""Celery bound to the Flask app (Flask's "Background Tasks with Celery" pattern).

Settings come from the Flask config through ``config.celery_settings``; every
task runs inside an app context, so it reaches the local database through
``syncd.get_state()``. The worker entry is ``syncd.worker``.
"""

from __future__ import annotations

import os
import socket
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
    import syncd.tasks  # noqa: F401  (registers the shared tasks on this app)

    return celery_app


def flask_app_of(celery_app: Celery) -> Any:
    """The Flask app a Celery app was created for by ``celery_init_app``."""
    return celery_app.flask_app  # type: ignore[attr-defined]


class WorkerHeartbeat(bootsteps.StartStopStep):  # type: ignore[misc]
    """Writes the worker's heartbeat to the local database (the workers page reads it).

    It runs in the worker's main process on Celery's timer, with an engine of its
    own that keeps no connection open, so no connection is shared with the pool
    processes the worker forks.
    """

    requires = {"celery.worker.components:Timer", "celery.worker.components:Pool"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None
        self.engine: Any = None

    def start(self, worker: Any) -> None:
        from syncd.db import make_local_engine
        from syncd.heartbeats import WORKER_EVERY

        url = flask_app_of(worker.app).config["SYNCD_DATABASE_URL"]
        self.engine = make_local_engine(url, pooled=False)
        # The first heartbeat once the worker is ready (consuming, its banner out).
        worker_ready.connect(lambda **_: self.beat(worker), weak=False)
        self.tref = worker.timer.call_repeatedly(WORKER_EVERY, self.beat, (worker,), priority=10)

    def beat(self, worker: Any) -> None:
        """Record one heartbeat."""
        from syncd.heartbeats import record, worker_sign

        record(self.engine, worker_sign(worker, socket.gethostname(), os.getpid()))

    def stop(self, worker: Any) -> None:
        from syncd.heartbeats import record_stop

        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        if self.engine is not None:
            record_stop(self.engine, "worker", str(worker.hostname), os.getpid())
            self.engine.dispose()
            self.engine = None
