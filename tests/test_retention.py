"""Retention: housekeeping deletes runs older than SYNCD_HISTORY_DAYS in batches, and keeps
each job's last success and last failure however old, and runs not finished yet."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from syncd import get_state
from syncd.models import Alert, AlertDelivery, SyncRun, utcnow
from syncd.retention import prune_history
from syncd.tasks import housekeeping

NOW = utcnow()
OLD = NOW - timedelta(days=120)


def run_row(job: str, status: str, queued_at: Any) -> dict[str, Any]:
    finished = status not in ("queued", "running")
    return {"job": job, "trigger": "schedule", "status": status, "queued_at": queued_at,
            "started_at": queued_at if status != "queued" else None,
            "finished_at": queued_at + timedelta(seconds=5) if finished else None}


def insert_runs(state: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert runs in order; returns their ids."""
    ids = []
    with state.sessions.begin() as session:
        for start in range(0, len(rows), 500):
            session.execute(sa.insert(SyncRun), rows[start:start + 500])
        ids = list(session.scalars(sa.select(SyncRun.id).order_by(SyncRun.id)))
    return ids[-len(rows):]


def remaining(state: Any) -> dict[int, tuple[str, str]]:
    with state.sessions() as session:
        return {r.id: (r.job, r.status) for r in session.execute(
            sa.select(SyncRun.id, SyncRun.job, SyncRun.status))}


def backdated_history(state: Any) -> dict[str, Any]:
    """2,500 old runs of job a, a few recent ones; job b only old runs; job c old and queued."""
    cycle = ("succeeded", "failed", "skipped", "cancelled", "abandoned")
    a_old = insert_runs(state, [run_row("a", cycle[i % 5], OLD + timedelta(minutes=i))
                                for i in range(2500)])
    b_old = insert_runs(state, [run_row("b", s, OLD + timedelta(days=1, minutes=i)) for i, s in
                                enumerate(["succeeded", "failed", "succeeded", "failed",
                                           "skipped"])])
    c_queued = insert_runs(state, [run_row("c", "queued", OLD)])
    recent = insert_runs(state, [run_row("a", s, NOW - timedelta(days=d)) for s, d in
                                 [("succeeded", 89), ("skipped", 10), ("succeeded", 1)]])
    return {"a_old": a_old, "b_old": b_old, "c_queued": c_queued, "recent": recent}


def newest(ids: list[int], statuses: list[str], status: str) -> int:
    return max(i for i, s in zip(ids, statuses) if s == status)


@pytest.mark.parametrize("local", ["sqlite", "postgres", "mysql"])
def test_housekeeping_deletes_old_runs_in_batches_keeping_last_success_and_failure(
        databases: Any, make_env: Any, local: str) -> None:
    env = make_env(databases.make(local))
    app = env.app()
    state = get_state(app)
    try:
        made = backdated_history(state)
        a_statuses = [("succeeded", "failed", "skipped", "cancelled", "abandoned")[i % 5]
                      for i in range(2500)]
        b_statuses = ["succeeded", "failed", "succeeded", "failed", "skipped"]

        pruned = prune_history(state)

        kept = remaining(state)
        expected = {
            newest(made["a_old"], a_statuses, "failed"),  # a's last failure: old, kept
            newest(made["b_old"], b_statuses, "succeeded"),  # b's last success
            newest(made["b_old"], b_statuses, "failed"),  # b's last failure
            *made["c_queued"],  # not finished: never deleted
            *made["recent"],  # younger than 90 days (one of them 89 days old)
        }
        assert set(kept) == expected
        assert pruned.runs == 2500 + 5 + 1 + 3 - len(expected)
        assert pruned.batches == 3  # at most 1,000 runs per transaction
        # a's last success is a recent run: the old ones were not kept for it
        assert kept[made["recent"][2]] == ("a", "succeeded")

        with app.app_context():  # housekeeping runs it again
            housekeeping()
        # Housekeeping first marks the run queued 100 days ago abandoned (past
        # SYNCD_QUEUED_TIMEOUT): finished and old, retention then deletes it. Nothing else.
        assert set(remaining(state)) == expected - set(made["c_queued"])
    finally:
        state.dispose()


def test_history_days_setting_and_zero_keeps_everything(databases: Any, make_env: Any) -> None:
    env = make_env(databases.sqlite("local"))
    env.extra_env["SYNCD_HISTORY_DAYS"] = "30"
    state = get_state(env.app())
    try:
        ids = insert_runs(state, [run_row("a", "skipped", NOW - timedelta(days=d))
                                  for d in (40, 31, 29, 1)])
        assert prune_history(state).runs == 2
        assert set(remaining(state)) == set(ids[2:])
    finally:
        state.dispose()

    env.extra_env["SYNCD_HISTORY_DAYS"] = "0"
    state = get_state(env.app())
    try:
        insert_runs(state, [run_row("a", "skipped", NOW - timedelta(days=4000))])
        assert prune_history(state).runs == 0
        assert len(remaining(state)) == 3
    finally:
        state.dispose()


def test_old_alert_deliveries_go_too(databases: Any, make_env: Any) -> None:
    env = make_env(databases.sqlite("local"))
    state = get_state(env.app())
    try:
        with state.sessions.begin() as session:
            for key, when in (("old", OLD), ("new", NOW - timedelta(days=1))):
                alert = Alert(key=key, job="a", event="failed", summary=key, created_at=when)
                session.add(alert)
                session.flush()
                session.add(AlertDelivery(alert_id=alert.id, job="a", event="failed",
                                          target="webhook http://x", status="delivered",
                                          attempts=1, created_at=when, finished_at=when))
        assert prune_history(state).deliveries == 1
        with state.sessions() as session:
            assert list(session.scalars(sa.select(Alert.key))) == ["new"]
            assert session.scalar(sa.select(sa.func.count()).select_from(AlertDelivery)) == 1
    finally:
        state.dispose()
