"""The checkpoint table: where a job's sync position lives in the local database.

A checkpoint row is written in the same local transaction as the batch it
describes, so after a crash the table and the checkpoint always agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy import types as sqltypes

metadata = MetaData()

checkpoints = Table(
    "syncd_checkpoints",
    metadata,
    Column("job", String(100), primary_key=True),
    # "full": a full load into `staging` is under way, `position` is the last pk loaded.
    # "incremental": `cursor`/`position` is the last (cursor, pk) upserted.
    Column("phase", String(16), nullable=False),
    Column("cursor", Text),  # JSON
    Column("position", Text),  # JSON list of primary-key values
    Column("load_cursor", Text),  # JSON: max cursor seen when the full load started
    Column("staging", String(64)),
    Column("updated_at", DateTime, nullable=False),
)


@dataclass(frozen=True)
class Checkpoint:
    """A job's position: the phase, the last (cursor, pk) or pk, and a full load's staging."""

    job: str
    phase: str
    cursor: Any = None
    position: tuple[Any, ...] | None = None
    load_cursor: Any = None
    staging: str | None = None


def encode_value(value: Any) -> Any:
    """A cursor or key value as a JSON-able value (datetimes as ISO 8601 text)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, UUID):
        return str(value)
    return value


def decode_value(value: Any, type_: sqltypes.TypeEngine[Any] | None) -> Any:
    """Turn a JSON value back into the Python type of the column it came from."""
    if value is None or type_ is None or not isinstance(value, str):
        return value
    if value.startswith("0000-00-00"):  # a MySQL zero date: compared as the source has it
        return value
    if isinstance(type_, sqltypes.DateTime):
        return datetime.fromisoformat(value)
    if isinstance(type_, sqltypes.Date):
        return date.fromisoformat(value)
    if isinstance(type_, sqltypes.Time):
        return time.fromisoformat(value)
    if isinstance(type_, sqltypes.Numeric) and not isinstance(type_, sqltypes.Float):
        return Decimal(value) if isinstance(value, str) else value
    if isinstance(type_, sqltypes._Binary):
        return bytes.fromhex(value)
    return value


def dumps(value: Any) -> str | None:
    """JSON text of a cursor value, or None."""
    return None if value is None else json.dumps(encode_value(value))


def load_checkpoint(conn: Connection, job: str) -> Checkpoint | None:
    """The job's checkpoint, with values still JSON-decoded only (not typed)."""
    row = conn.execute(select(checkpoints).where(checkpoints.c.job == job)).first()
    if row is None:
        return None
    return Checkpoint(
        job=row.job,
        phase=row.phase,
        cursor=json.loads(row.cursor) if row.cursor is not None else None,
        position=tuple(json.loads(row.position)) if row.position is not None else None,
        load_cursor=json.loads(row.load_cursor) if row.load_cursor is not None else None,
        staging=row.staging,
    )


def save_checkpoint(conn: Connection, point: Checkpoint) -> None:
    """Insert or replace the job's checkpoint inside the caller's transaction."""
    values = {
        "phase": point.phase,
        "cursor": dumps(point.cursor),
        "position": None
        if point.position is None
        else json.dumps([encode_value(v) for v in point.position]),
        "load_cursor": dumps(point.load_cursor),
        "staging": point.staging,
        "updated_at": datetime.now(UTC).replace(tzinfo=None),
    }
    done = conn.execute(
        update(checkpoints).where(checkpoints.c.job == point.job).values(**values)
    )
    if done.rowcount == 0:
        conn.execute(insert(checkpoints).values(job=point.job, **values))


def clear_checkpoint(conn: Connection, job: str) -> None:
    """Forget the job's position (full refresh)."""
    conn.execute(delete(checkpoints).where(checkpoints.c.job == job))
