"""Prometheus metrics built from ``syncd_runs`` at scrape time.

The history is the source of truth (runs happen in worker processes, not in
the web process), so a custom collector reads it on each scrape. Finished runs
never change, so the totals of the settled part of the history (every run up
to the oldest one still queued or running) are kept between scrapes and only
newer runs are aggregated again: a scrape stays cheap with a long history.
Nothing secret: job names, modes, schedules, counts and times.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import Float, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from syncd import SyncdState
from syncd.models import FINISHED, SyncRun, utcnow
from syncd.status import last_successes, paused_jobs

BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)
ROW_KINDS = ("read", "inserted", "updated", "deleted")
ACTIVE = ("queued", "running")


class seconds_between(FunctionElement[float]):  # noqa: N801  (reads like a SQL function)
    """Seconds from the first timestamp to the second, in the local database's dialect."""

    type = Float()
    inherit_cache = True


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _seconds_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"


@compiles(seconds_between, "mysql")
def _seconds_mysql(element: Any, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"(TIMESTAMPDIFF(MICROSECOND, {start}, {end}) / 1000000.0)"


def runs_by_status_query(after_id: int, upto_id: int | None) -> Any:
    """Per job and status: runs and the sums of their row counts, for ids in (after, upto]."""
    query = select(
        SyncRun.job, SyncRun.status, func.count(),
        *(func.coalesce(func.sum(getattr(SyncRun, f"rows_{k}")), 0) for k in ROW_KINDS),
    ).group_by(SyncRun.job, SyncRun.status)
    return _id_range(query, after_id, upto_id)


def durations_query(after_id: int, upto_id: int | None) -> Any:
    """Per job: finished runs that started, the sum of their durations, and bucket counts."""
    duration = seconds_between(SyncRun.started_at, SyncRun.finished_at)
    query = select(
        SyncRun.job, func.count(), func.coalesce(func.sum(duration), 0.0),
        *(func.sum(case((duration <= b, 1), else_=0)) for b in BUCKETS),
    ).where(
        SyncRun.status.in_(FINISHED), SyncRun.started_at.is_not(None),
        SyncRun.finished_at.is_not(None),
    ).group_by(SyncRun.job)
    return _id_range(query, after_id, upto_id)


def _id_range(query: Any, after_id: int, upto_id: int | None) -> Any:
    query = query.where(SyncRun.id > after_id)
    return query if upto_id is None else query.where(SyncRun.id <= upto_id)


@dataclass
class Totals:
    """Aggregates of a stretch of the run history."""

    runs: Counter[tuple[str, str]] = field(default_factory=Counter)  # (job, status)
    rows: Counter[tuple[str, str]] = field(default_factory=Counter)  # (job, kind)
    durations: dict[str, list[float]] = field(default_factory=dict)  # job: count, sum, buckets

    def add(self, other: Totals) -> Totals:
        """A new Totals: self plus other."""
        out = Totals(self.runs + other.runs, self.rows + other.rows,
                     {job: list(v) for job, v in self.durations.items()})
        for job, values in other.durations.items():
            mine = out.durations.setdefault(job, [0.0] * len(values))
            out.durations[job] = [a + b for a, b in zip(mine, values, strict=True)]
        return out


def aggregate(session: Any, after_id: int, upto_id: int | None) -> Totals:
    """Totals of the runs with ids in (after_id, upto_id]."""
    totals = Totals()
    for job, status, n, *sums in session.execute(runs_by_status_query(after_id, upto_id)):
        totals.runs[(job, status)] += n
        for kind, value in zip(ROW_KINDS, sums, strict=True):
            totals.rows[(job, kind)] += int(value or 0)
    for job, n, total, *in_bucket in session.execute(durations_query(after_id, upto_id)):
        totals.durations[job] = [float(n), float(total or 0.0), *(float(c or 0) for c in in_bucket)]
    return totals


def settled_upto(session: Any) -> int:
    """The largest id such that every run up to it has finished (two index probes)."""
    oldest_active = [session.scalar(select(func.min(SyncRun.id)).where(SyncRun.status == s))
                     for s in ACTIVE]
    active = [i for i in oldest_active if i is not None]
    if active:
        return min(active) - 1
    return int(session.scalar(select(func.max(SyncRun.id))) or 0)


class RunsCollector(Collector):
    """Reads the run history on each scrape, keeping the totals of its settled part."""

    def __init__(self, state: SyncdState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._settled_id = 0
        self._settled = Totals()
        # Settle only up to what was already settled at the previous scrape, so a run
        # whose id was taken but whose transaction had not committed yet is not skipped.
        self._candidate = 0

    def collect(self) -> Iterator[Metric]:
        yield from self._jobs()
        with self.state.sessions() as session:
            totals = self._totals(session)
        yield from self._runs(totals)
        yield self._durations(totals)

    def _totals(self, session: Any) -> Totals:
        with self._lock:
            now_settled = settled_upto(session)
            upto = min(self._candidate, now_settled)
            if upto > self._settled_id:
                self._settled = self._settled.add(aggregate(session, self._settled_id, upto))
                self._settled_id = upto
            self._candidate = now_settled
            return self._settled.add(aggregate(session, self._settled_id, None))

    def _jobs(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("syncd_job_info", "Jobs of the jobs file (value 1).",
                                 labels=["job", "mode", "schedule"])
        paused = GaugeMetricFamily("syncd_job_paused", "1 if the job's schedule is paused.",
                                   labels=["job"])
        last = GaugeMetricFamily("syncd_job_last_success_timestamp_seconds",
                                 "When the job's last successful run finished (Unix time).",
                                 labels=["job"])
        since = GaugeMetricFamily("syncd_job_seconds_since_last_success",
                                  "Seconds since the job's last successful run finished.",
                                  labels=["job"])
        valid = GaugeMetricFamily(
            "syncd_jobs_file_valid",
            "1 if the jobs file validates, 0 if it was rejected (the last good one stays).",
        )
        loaded = GaugeMetricFamily("syncd_jobs_file_loaded_timestamp_seconds",
                                   "When the jobs file in force was first loaded (Unix time).")
        force = self.state.jobs_in_force()
        valid.add_metric([], 1 if force.rejected is None else 0)
        if force.jobs is not None and force.good is not None:
            loaded.add_metric([], force.good.loaded_at.timestamp())
        specs = dict(force.jobs.jobs) if force.jobs is not None else {}
        if force.jobs is not None and force.jobs.groups:
            from syncd.group_tables import recorded_jobs

            for table_jobs in recorded_jobs(self.state, force.jobs).values():
                specs.update(table_jobs)
        names = sorted(specs)
        stopped = paused_jobs(self.state)
        successes = last_successes(self.state, names)
        now = utcnow()
        for name in names:
            spec = specs[name]
            info.add_metric([name, spec.mode, spec.schedule.text if spec.schedule else ""], 1)
            paused.add_metric([name], 1 if name in stopped else 0)
            run = successes.get(name)
            if run is not None and run.finished_at is not None:
                last.add_metric([name], run.finished_at.timestamp())
                since.add_metric([name], (now - run.finished_at).total_seconds())
        yield from (valid, loaded, info, paused, last, since)
        if force.jobs is not None and force.jobs.groups:
            yield self._group_tables(force.jobs)

    def _group_tables(self, jobs: Any) -> Metric:
        from syncd.group_tables import missing_counts

        gone = GaugeMetricFamily(
            "syncd_group_tables_missing",
            "Tables of a group job gone from the source since it found them (local tables kept).",
            labels=["job"])
        for name, count in missing_counts(self.state, jobs).items():
            gone.add_metric([name], count)
        return gone

    def _runs(self, totals: Totals) -> Iterator[Metric]:
        runs = CounterMetricFamily("syncd_runs", "Finished runs by job and status.",
                                   labels=["job", "status"])
        active = GaugeMetricFamily("syncd_runs_active", "Runs queued or running now.",
                                   labels=["job", "status"])
        rows = CounterMetricFamily("syncd_rows", "Rows handled by runs, by kind.",
                                   labels=["job", "kind"])
        for (job, status), n in sorted(totals.runs.items()):
            (active if status in ACTIVE else runs).add_metric([job, status], n)
        for (job, kind), value in sorted(totals.rows.items()):
            rows.add_metric([job, kind], value)
        yield from (runs, active, rows)

    def _durations(self, totals: Totals) -> Metric:
        hist = HistogramMetricFamily("syncd_run_duration_seconds",
                                     "Duration of finished runs.", labels=["job"])
        for job, (n, total, *in_bucket) in sorted(totals.durations.items()):
            buckets = [(str(float(b)), int(c)) for b, c in zip(BUCKETS, in_bucket, strict=True)]
            buckets.append(("+Inf", int(n)))
            hist.add_metric([job], buckets, total)
        return hist


def metrics_registry(state: SyncdState) -> CollectorRegistry:
    """A registry of its own (not the global one), holding the runs collector."""
    from syncd.web.verify import VerifyCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunsCollector(state))
    registry.register(VerifyCollector(state))
    return registry
