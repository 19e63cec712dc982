"""The Celery entry: ``celery -A syncd.worker worker`` and ``celery -A syncd.worker beat``.

Like ``make_celery.py`` of Flask's Celery guide, this is the one module that
builds the app when it is imported: Celery's command imports it by name. All
settings come from the environment (config.py) and the jobs file; the worker
consumes syncd's queue (SYNCD_QUEUE, default "syncd") without ``-Q``.
"""

from __future__ import annotations

import sys

from syncd import create_app
from syncd.errors import SyncError, refuse_to_start

try:
    flask_app = create_app()
except SyncError as exc:  # a bad SYNCD_DATABASE_URL, jobs file, ...: one line, exit 2
    refuse_to_start("beat" if "beat" in sys.argv[1:] else "worker", exc)
app = flask_app.extensions["celery"]
