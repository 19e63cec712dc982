"""SQLAlchemy models of syncd's own tables (``syncd_*``). Models never commit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from syncd.engine.checkpoint import checkpoints  # noqa: F401  (part of the schema)
from syncd.engine.drift import column_types  # noqa: F401  (part of the schema)

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "skipped", "abandoned", "cancelled")
FINISHED = ("succeeded", "failed", "skipped", "abandoned", "cancelled")
TRIGGERS = ("schedule", "manual", "api", "cli", "verify")
ROLES = ("operator", "viewer")

BigId = BigInteger().with_variant(Integer(), "sqlite")
LongText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql")


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC (microseconds kept), returned as aware UTC."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "mysql":  # plain DATETIME keeps whole seconds there
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class SyncRun(Base):
    """One run of one job, whatever started it (DESIGN section 5)."""

    __tablename__ = "syncd_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(100))
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    full_refresh: Mapped[bool] = mapped_column(Boolean, default=False)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_inserted: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_updated: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_deleted: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_total: Mapped[int | None] = mapped_column(BigInteger)
    phase: Mapped[str | None] = mapped_column(String(16))
    cursor_before: Mapped[str | None] = mapped_column(Text)  # JSON
    cursor_after: Mapped[str | None] = mapped_column(Text)  # JSON
    error: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    warnings_json: Mapped[str | None] = mapped_column("warnings", Text)
    started_by: Mapped[str | None] = mapped_column(String(100))
    hostname: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    task_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int | None] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # between attempts
    attempt_errors_json: Mapped[str | None] = mapped_column("attempt_errors", Text)
    waiting_for: Mapped[int | None] = mapped_column(BigInteger)  # queued behind this run
    waiting_slot: Mapped[str | None] = mapped_column(String(100))  # queued: a source's slots
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by: Mapped[str | None] = mapped_column(String(100))
    # Verify runs (trigger "verify"); NULL on sync runs.
    rows_compared: Mapped[int | None] = mapped_column(BigInteger)
    rows_different: Mapped[int | None] = mapped_column(BigInteger)
    rows_repaired: Mapped[int | None] = mapped_column(BigInteger)
    verify_json: Mapped[str | None] = mapped_column("verify", Text)  # JSON: repair, examples
    lookback_json: Mapped[str | None] = mapped_column("lookback_bound", Text)  # lookback "auto"

    __table_args__ = (
        Index("ix_syncd_runs_job_id", "job", "id"),
        Index("ix_syncd_runs_status_id", "status", "id"),
        Index("ix_syncd_runs_job_status_id", "job", "status", "id"),
        Index("ix_syncd_runs_job_trigger_id", "job", "trigger", "id"),
        Index("ix_syncd_runs_queued_at_id", "queued_at", "id"),  # retention
    )

    @property
    def warnings(self) -> list[dict[str, Any]]:
        """Warnings as a list of {"message", "count"}."""
        data = json.loads(self.warnings_json) if self.warnings_json else {}
        return [{"message": m, "count": c} for m, c in data.items()]

    @property
    def attempt_errors(self) -> list[dict[str, Any]]:
        """The error of each failed attempt: {"attempt", "at", "error"}, oldest first."""
        return json.loads(self.attempt_errors_json) if self.attempt_errors_json else []

    @property
    def activity(self) -> str | None:
        """What a queued or running run is doing now, in one line (None once finished)."""
        if self.status == "queued":
            if self.waiting_for is not None:
                return f"waiting for run #{self.waiting_for} to finish"
            if self.waiting_slot is not None:
                return f"waiting for a slot on source {self.waiting_slot}"
            return "waiting for a worker to take it"
        if self.status != "running":
            return None
        if self.cancel_requested_at is not None:
            return f"cancel requested by {self.cancelled_by}: stops at the next batch boundary"
        errors = self.attempt_errors
        of = f" of {self.max_attempts}" if self.max_attempts else ""
        if self.next_attempt_at is not None and errors:
            wait = max(0, round((self.next_attempt_at - utcnow()).total_seconds()))
            return (f"attempt {(self.attempts or 0) + 1}{of}, next try in {wait} s: "
                    f"{errors[-1]['error']}")
        if (self.attempts or 0) > 1 and errors:
            return (f"attempt {self.attempts}{of} (attempt {errors[-1]['attempt']} failed: "
                    f"{errors[-1]['error']})")
        return None

    @property
    def full_load(self) -> bool:
        """True for a full load: a full resync, a full job, or an incremental job's first run."""
        return bool(self.full_refresh) or self.phase == "full"

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to finish (or to now while running)."""
        if self.started_at is None:
            return None
        end = self.finished_at or (utcnow() if self.status == "running" else None)
        return None if end is None else round((end - self.started_at).total_seconds(), 3)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of DESIGN section 5."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat().replace("+00:00", "Z") if value else None

        return {
            "id": self.id,
            "job": self.job,
            "trigger": self.trigger,
            "status": self.status,
            "full_refresh": bool(self.full_refresh),
            "queued_at": iso(self.queued_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "duration_s": self.duration_s,
            "rows_read": self.rows_read or 0,
            "rows_inserted": self.rows_inserted or 0,
            "rows_updated": self.rows_updated or 0,
            "rows_deleted": self.rows_deleted or 0,
            "rows_total": self.rows_total,
            "phase": self.phase,
            "cursor_before": json.loads(self.cursor_before) if self.cursor_before else None,
            "cursor_after": json.loads(self.cursor_after) if self.cursor_after else None,
            "error": self.error,
            "warnings": self.warnings,
            "started_by": self.started_by,
            "attempts": self.attempts or 0,
            "max_attempts": self.max_attempts,
            "next_attempt_at": iso(self.next_attempt_at),
            "attempt_errors": self.attempt_errors,
            "waiting_for": self.waiting_for,
            "cancel_requested_at": iso(self.cancel_requested_at),
            "cancelled_by": self.cancelled_by,
            "activity": self.activity,
            "rows_compared": self.rows_compared,
            "rows_different": self.rows_different,
            "rows_repaired": self.rows_repaired,
            "verify": json.loads(self.verify_json) if self.verify_json else None,
            "lookback_bound": json.loads(self.lookback_json) if self.lookback_json else None,
        }


class JobState(Base):
    """Per-job state kept by syncd: paused or not."""

    __tablename__ = "syncd_job_state"

    job: Mapped[str] = mapped_column(String(100), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_by: Mapped[str | None] = mapped_column(String(100))
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class GroupTable(Base):
    """A table a group job found at its source, and since when it is gone (if it is)."""

    __tablename__ = "syncd_group_tables"

    group_name: Mapped[str] = mapped_column(String(100))
    table_name: Mapped[str] = mapped_column(String(200))
    job: Mapped[str] = mapped_column(String(100))  # <group>.<table>
    target: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    missing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (PrimaryKeyConstraint("group_name", "table_name"),)


class JobLease(Base):
    """The fencing token of a job: the run that took its lock last.

    Set by a run in the transaction that starts it, and checked (row locked) first in
    every local transaction that writes the job's rows: a run whose lock died with a
    restart of the local database, and whose job another run took over meanwhile,
    finds someone else's run id here and stops without writing. Housekeeping clears it
    when it marks the holder abandoned.
    """

    __tablename__ = "syncd_job_leases"

    job: Mapped[str] = mapped_column(String(100), primary_key=True)
    run_id: Mapped[int | None] = mapped_column(BigId)
    holder: Mapped[str | None] = mapped_column(String(255))  # host:pid of the run
    taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class User(Base):
    """A user of the admin web app."""

    __tablename__ = "syncd_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """A bearer token of the JSON API, stored as its SHA-256 hash."""

    __tablename__ = "syncd_api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (UniqueConstraint("name", name="uq_syncd_api_tokens_name"),)


class Alert(Base):
    """One event worth an alert (a run failed, a job recovered, is stale, a test).

    ``key`` is unique: whoever inserts it first sends the alert, so two processes
    never send the same one (a stale episode's key is the job's last success).
    """

    __tablename__ = "syncd_alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    job: Mapped[str | None] = mapped_column(String(100))
    event: Mapped[str] = mapped_column(String(16))  # failed|failing|recovered|stale|test
    run_id: Mapped[int | None] = mapped_column(BigInteger)
    summary: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_syncd_alerts_created_at", "created_at"),)


class AlertDelivery(Base):
    """The delivery of one alert to one target: retried, then ``delivered`` or ``failed``."""

    __tablename__ = "syncd_alert_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(BigInteger)
    job: Mapped[str | None] = mapped_column(String(100))
    event: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(Text)  # masked: never a password
    status: Mapped[str] = mapped_column(String(16))  # sending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_syncd_alert_deliveries_created_at", "created_at"),)


class LoginFailure(Base):
    """One failed (or still running) login of a user name, shared by every web process."""

    __tablename__ = "syncd_login_failures"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(100))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_syncd_login_failures_username_attempted_at", "username", "attempted_at"),
        Index("ix_syncd_login_failures_attempted_at", "attempted_at"),
    )


class JobsFileVersion(Base):
    """A jobs file that validated. The newest one is in force whenever the file on disk
    does not validate, for beat, worker, web and CLI alike."""

    __tablename__ = "syncd_jobs_files"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(LongText)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    loaded_by: Mapped[str | None] = mapped_column(String(255))  # host and pid


class Heartbeat(Base):
    """The last sign of life of a worker or a beat, for the workers page."""

    __tablename__ = "syncd_heartbeats"

    kind: Mapped[str] = mapped_column(String(16))  # worker | beat
    name: Mapped[str] = mapped_column(String(255))  # worker: Celery's node name; beat: host:pid
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    pool_pids: Mapped[str | None] = mapped_column(Text)  # JSON list: the worker's processes
    concurrency: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (PrimaryKeyConstraint("kind", "name"),)

    @property
    def pids(self) -> list[int]:
        """The worker's pool processes (empty for a beat)."""
        return [int(p) for p in json.loads(self.pool_pids)] if self.pool_pids else []


class AuditEntry(Base):
    """Who changed a web user or an API token, when, and how."""

    __tablename__ = "syncd_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))  # "cli:<os user>" or "web:<user>"
    action: Mapped[str] = mapped_column(String(32))  # user.add, user.role, token.revoke, ...
    target: Mapped[str] = mapped_column(String(100))
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_syncd_audit_at", "at"),)
