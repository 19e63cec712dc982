"""Helpers of the web tests: a syncd install with users, logging in with a CSRF token, runs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sample_tables import create_orders

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def jobs_file(source_url: str, *extra_jobs: str) -> str:
    """A jobs file with the incremental job "orders" (every 5m) on ``source_url``."""
    return (
        f'[sources.src]\nurl = "{source_url}"\n\n'
        '[[jobs]]\nname = "orders"\nsource = "src"\ntable = "orders"\n'
        'mode = "incremental"\ncursor = "updated_at"\nschedule = "5m"\n\n'
        + "\n".join(extra_jobs)
    )


@dataclass
class Site:
    """A syncd install for a web test: env, app, its state, users alice (operator), vic (viewer)."""

    env: Any
    app: Any
    source_url: str

    @property
    def state(self) -> Any:
        from syncd import get_state

        return get_state(self.app)

    def client(self) -> Any:
        return self.app.test_client()

    def login(self, username: str = "alice", password: str = PASSWORD) -> Any:
        """A test client logged in as ``username`` (through the login form, with CSRF)."""
        client = self.client()
        response = login(client, username, password)
        assert response.status_code == 303, response.get_data(as_text=True)
        return client

    def add_run(self, **fields: Any) -> int:
        """Insert a run row directly; returns its id."""
        from syncd.models import SyncRun

        values: dict[str, Any] = {"job": "orders", "trigger": "schedule", "status": "succeeded",
                                  "queued_at": datetime(2026, 1, 15, 11, 59, tzinfo=UTC)}
        values.update(fields)
        if values["status"] not in ("queued",) and "started_at" not in fields:
            values["started_at"] = values["queued_at"] + timedelta(seconds=1)
        if values["status"] not in ("queued", "running") and "finished_at" not in fields:
            values["finished_at"] = values["started_at"] + timedelta(seconds=4)
        with self.state.sessions.begin() as session:
            run = SyncRun(**values)
            session.add(run)
            session.flush()
            return int(run.id)

    def runs(self, job: str = "orders") -> list[Any]:
        from sqlalchemy import select

        from syncd.models import SyncRun

        with self.state.sessions() as session:
            return list(session.scalars(
                select(SyncRun).where(SyncRun.job == job).order_by(SyncRun.id)))

    def paused(self, job: str = "orders") -> Any:
        from syncd.models import JobState

        with self.state.sessions() as session:
            return session.get(JobState, job)


def csrf_token(html: str) -> str:
    """The first CSRF token of a page."""
    match = CSRF.search(html)
    assert match, "no csrf_token in the page"
    return match.group(1)


def login(client: Any, username: str, password: str, next_url: str | None = None) -> Any:
    """Log in through the form; returns the POST's response."""
    page = client.get("/login")
    data = {"username": username, "password": password,
            "csrf_token": csrf_token(page.get_data(as_text=True))}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/login", data=data)


def page_token(client: Any, path: str = "/") -> str:
    """A valid CSRF token of ``client``'s session, taken from a page."""
    return csrf_token(client.get(path).get_data(as_text=True))


def make_site(databases: Any, make_env: Any, local: str = "sqlite",
              extra_jobs: tuple[str, ...] = (), **overrides: Any) -> Site:
    """A migrated local database, a SQLite source with 20 orders, the app, two users."""
    from syncd import get_state
    from syncd.web.accounts import create_user

    source_url = databases.sqlite("source")
    create_orders(source_url, 20)
    env = make_env(databases.make(local), jobs_file(source_url, *extra_jobs))
    app = env.app(**overrides)
    create_user(get_state(app), "alice", PASSWORD, "operator")
    create_user(get_state(app), "vic", PASSWORD, "viewer")
    return Site(env=env, app=app, source_url=source_url)


def site_fixture(databases: Any, make_env: Any) -> Iterator[Site]:
    """Body of each test module's ``site`` fixture: SQLite, job "orders", alice and vic."""
    made = make_site(databases, make_env)
    yield made
    made.state.dispose()


@contextmanager
def held_job_lock(made: Site, job: str = "orders") -> Iterator[None]:
    """Hold ``job``'s lock, as the process of a running run does (else a page read's
    housekeeping finds the lock free and marks the run abandoned)."""
    from syncd.locks import JobLock

    lock = JobLock(made.state.engine, job)
    assert lock.acquire()
    try:
        yield
    finally:
        lock.release()
