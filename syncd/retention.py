"""Retention: housekeeping deletes runs older than ``SYNCD_HISTORY_DAYS``, in small batches.

Each job's last success and last failure are always kept, however old (the
dashboard's "last success" and the alerts' stale check rely on them), and so are
runs not finished yet. Old alerts and their deliveries go too. Each batch is its
own short transaction, found through the ``(queued_at, id)`` index.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, delete, or_, select
from sqlalchemy.orm import Session

from syncd import SyncdState
from syncd.models import FINISHED, Alert, AlertDelivery, SyncRun, utcnow

log = logging.getLogger(__name__)

BATCH = 1000


@dataclass(frozen=True)
class Pruned:
    """What one pass deleted."""

    runs: int = 0
    batches: int = 0
    deliveries: int = 0


def prune_history(state: SyncdState, now: datetime | None = None, batch: int = BATCH) -> Pruned:
    """Delete history older than ``SYNCD_HISTORY_DAYS`` (0: keep everything)."""
    days = float(state.config.SYNCD_HISTORY_DAYS)
    if days <= 0:
        return Pruned()
    cutoff = (now or utcnow()) - timedelta(days=days)
    runs, batches = prune_runs(state, cutoff, batch)
    deliveries = prune_alerts(state, cutoff, batch)
    if runs or deliveries:
        log.info("retention: deleted %d run(s) and %d alert delivery(ies) older than %s",
                 runs, deliveries, cutoff.isoformat(timespec="seconds"))
    return Pruned(runs=runs, batches=batches, deliveries=deliveries)


def prune_runs(state: SyncdState, cutoff: datetime, batch: int = BATCH) -> tuple[int, int]:
    """Delete finished runs queued before ``cutoff``, keeping each job's last success
    and last failure; returns (runs deleted, transactions that deleted some)."""
    deleted = batches = 0
    after: tuple[datetime, int] | None = None
    while True:
        with state.sessions.begin() as session:
            rows = session.execute(old_runs(cutoff, after, batch)).all()
            if not rows:
                break
            after = (rows[-1].queued_at, rows[-1].id)
            kept = _newest(session, {(r.job, r.status) for r in rows
                                     if r.status in ("succeeded", "failed")})
            doomed = [r.id for r in rows if r.status in FINISHED and r.id not in kept]
            if doomed:
                session.execute(delete(SyncRun).where(SyncRun.id.in_(doomed)))
                deleted += len(doomed)
                batches += 1
        if len(rows) < batch:
            break
    return deleted, batches


def old_runs(cutoff: datetime, after: tuple[datetime, int] | None,
             batch: int) -> Select[int, str, str, datetime]:
    """The next ``batch`` runs queued before ``cutoff``, in (queued_at, id) order after
    ``after``."""
    query = select(SyncRun.id, SyncRun.job, SyncRun.status, SyncRun.queued_at).where(
        SyncRun.queued_at < cutoff)
    if after is not None:
        query = query.where(or_(SyncRun.queued_at > after[0],
                                and_(SyncRun.queued_at == after[0], SyncRun.id > after[1])))
    return query.order_by(SyncRun.queued_at, SyncRun.id).limit(batch)


def _newest(session: Session, pairs: set[tuple[str, str]]) -> set[int]:
    """The id of each (job, status)'s newest run: the last success and last failure."""
    kept: set[int] = set()
    for job, status in pairs:
        newest = session.scalar(
            select(SyncRun.id).where(SyncRun.job == job, SyncRun.status == status)
            .order_by(SyncRun.id.desc()).limit(1))
        if newest is not None:
            kept.add(newest)
    return kept


def prune_alerts(state: SyncdState, cutoff: datetime, batch: int = BATCH) -> int:
    """Delete alerts and deliveries recorded before ``cutoff``; returns the deliveries."""
    deleted = 0
    for model, column in ((AlertDelivery, AlertDelivery.created_at), (Alert, Alert.created_at)):
        while True:
            with state.sessions.begin() as session:
                ids = list(session.scalars(
                    select(model.id).where(column < cutoff).order_by(model.id).limit(batch)))
                if ids:
                    session.execute(delete(model).where(model.id.in_(ids)))
            if model is AlertDelivery:
                deleted += len(ids)
            if len(ids) < batch:
                break
    return deleted
