"""Run history queries for the pages and the API: filters and keyset paging.

Pages go by run id (newest first): ``before=<id>`` gives the next older page,
``after=<id>`` the next newer one. Each page is one indexed range scan on
``(job, id)``, ``(job, status, id)`` or ``(job, trigger, id)``, however many
runs the job has; there is no OFFSET and no COUNT.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, defer

from syncd import SyncdState
from syncd.models import SyncRun

PAGE_SIZE = 50
MAX_LIMIT = 1000
ACTIVE = ("queued", "running")


@dataclass(frozen=True)
class RunFilter:
    """Which runs: of one job (or all), one status, one trigger, one page."""

    job: str | None = None
    status: str | None = None
    trigger: str | None = None
    before: int | None = None  # only runs with a smaller id (older)
    after: int | None = None  # only runs with a larger id (newer)
    limit: int = PAGE_SIZE


@dataclass
class RunPage:
    """One page of runs, newest first, with the ids to page from."""

    runs: list[SyncRun] = field(default_factory=list)
    older_than: int | None = None  # pass as before= for the next older page
    newer_than: int | None = None  # pass as after= for the next newer page


def _filtered(query: Select, f: RunFilter) -> Select:  # type: ignore[type-arg]
    if f.job is not None:
        query = query.where(SyncRun.job == f.job)
    if f.status is not None:
        query = query.where(SyncRun.status == f.status)
    if f.trigger is not None:
        query = query.where(SyncRun.trigger == f.trigger)
    return query


def runs_query(f: RunFilter) -> Select:  # type: ignore[type-arg]
    """The runs of ``f``'s page plus one (to tell if there is more), tracebacks deferred."""
    query = _filtered(select(SyncRun).options(defer(SyncRun.traceback)), f)
    if f.after is not None:
        query = query.where(SyncRun.id > f.after).order_by(SyncRun.id.asc())
    else:
        if f.before is not None:
            query = query.where(SyncRun.id < f.before)
        query = query.order_by(SyncRun.id.desc())
    return query.limit(f.limit + 1)


def neighbour_query(f: RunFilter, run_id: int, newer: bool) -> Select:  # type: ignore[type-arg]
    """One id of a run newer (or older) than ``run_id`` under the same filters."""
    query = _filtered(select(SyncRun.id), f)
    query = query.where(SyncRun.id > run_id if newer else SyncRun.id < run_id)
    return query.limit(1)


def run_page(state: SyncdState, f: RunFilter) -> RunPage:
    """One page of runs, newest first."""
    with state.sessions() as session:
        runs = list(session.scalars(runs_query(f)))
        more = len(runs) > f.limit
        runs = runs[: f.limit]
        if f.after is not None:
            runs.reverse()
        page = RunPage(runs=runs)
        if not runs:
            return page
        going_back = f.after is None
        has_older = more if going_back else session.scalar(
            neighbour_query(f, runs[-1].id, newer=False)) is not None
        has_newer = (more if not going_back else session.scalar(
            neighbour_query(f, runs[0].id, newer=True)) is not None)
        page.older_than = runs[-1].id if has_older else None
        page.newer_than = runs[0].id if has_newer else None
        return page


def active_run_queries(job: str) -> list[Select]:  # type: ignore[type-arg]
    """The newest queued run and the newest running run of ``job`` (one query each).

    Each is one probe of the ``(job, status, id)`` index; ``status IN (...)
    ORDER BY id`` would walk all of the job's runs instead.
    """
    return [
        select(func.max(SyncRun.id)).where(SyncRun.job == job, SyncRun.status == status)
        for status in ACTIVE
    ]


def active_run_in(session: Session, job: str) -> int | None:
    """The id of ``job``'s newest run in progress (queued or running), or None."""
    found = [session.scalar(query) for query in active_run_queries(job)]
    return max((i for i in found if i is not None), default=None)


def active_run(state: SyncdState, job: str) -> int | None:
    """The id of ``job``'s newest run in progress (queued or running), or None."""
    with state.sessions() as session:
        return active_run_in(session, job)


@dataclass(frozen=True)
class Queued:
    """A job's runs waiting to start: the oldest of any kind, the oldest full resync."""

    any_id: int | None = None
    full_id: int | None = None

    def covering(self, full_refresh: bool) -> int | None:
        """A queued run that does what a new request would do (a full resync covers a sync)."""
        return self.full_id if full_refresh else self.any_id


def queued_in(session: Session, job: str) -> Queued:
    """``job``'s queued runs (one probe of the ``(job, status, id)`` index)."""
    rows = session.execute(
        select(SyncRun.id, SyncRun.full_refresh).where(SyncRun.job == job,
                                                       SyncRun.status == "queued")
        .order_by(SyncRun.id).limit(100)).all()
    return Queued(any_id=rows[0][0] if rows else None,
                  full_id=next((i for i, full in rows if full), None))


def queued(state: SyncdState, job: str) -> Queued:
    """``job``'s queued runs."""
    with state.sessions() as session:
        return queued_in(session, job)


def running_run(state: SyncdState, job: str) -> int | None:
    """The id of ``job``'s running run, or None."""
    with state.sessions() as session:
        return session.scalar(active_run_queries(job)[1])


def has_runs(state: SyncdState, job: str) -> bool:
    """True if ``job`` has any run in the history."""
    with state.sessions() as session:
        return session.scalar(select(SyncRun.id).where(SyncRun.job == job).limit(1)) is not None


def get_run(state: SyncdState, run_id: int) -> SyncRun | None:
    """The run ``run_id`` with its traceback, or None."""
    with state.sessions() as session:
        return session.get(SyncRun, run_id)
