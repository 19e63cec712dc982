"""``lookback = "auto"``: the checkpoint never passes the oldest transaction open at the source.

A row written inside a transaction that started at T and commits later carries a
cursor value near T when the database sets it (``DEFAULT CURRENT_TIMESTAMP ON
UPDATE``, ``now()``, a trigger). Before each batch is read, the source is asked
for its clock and for the start of the oldest transaction still open:

- PostgreSQL: ``min(xact_start)`` of ``pg_stat_activity`` in the source database
  (client sessions other than syncd's own reads; other users' sessions are only
  visible with ``pg_read_all_stats`` or ``pg_monitor``). ``now()`` is the
  transaction's start, so any open transaction may still write that value.
- MySQL/MariaDB: ``min(trx_started)`` of ``information_schema.innodb_trx`` over
  transactions that hold locks (have written or are writing; needs ``PROCESS``).
  ``NOW()`` is a statement's start, so a transaction that has written nothing yet
  writes later values. The view is server-wide and in the server's system zone.

The bound is that start (or the source's current time when nothing is open) less
CLOCK_MARGIN (which also covers innodb_trx's cache, refreshed every 0.1 s, and
trx_started's whole seconds). Rows past it are upserted, but the checkpoint stops at the bound,
so the next run reads them again with whatever the open transaction commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc

CLOCK_MARGIN = timedelta(seconds=1)
HELD_WARNING_AGE = timedelta(seconds=5)  # a transaction this old holding the checkpoint: warn
TIME_FAMILIES = ("datetime", "timestamp_utc", "timestamptz", "date")

_PG_CLOCK = """
SELECT clock_timestamp(), min(xact_start) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
  AND backend_type = 'client backend' AND application_name IS DISTINCT FROM 'syncd'
"""
_MYSQL_CLOCK = """
SELECT UTC_TIMESTAMP(6), MIN(trx_started), CONVERT_TZ(MIN(trx_started), 'SYSTEM', '+00:00')
FROM information_schema.innodb_trx
WHERE trx_mysql_thread_id <> CONNECTION_ID() AND (trx_lock_structs > 0 OR trx_rows_modified > 0)
"""


@dataclass(frozen=True)
class SourceClock:
    """One look at the source: its time and the start of its oldest open transaction (UTC)."""

    now: datetime
    oldest: datetime | None

    @property
    def bound(self) -> datetime:
        """The latest cursor time every row committed later is known to be after."""
        return (self.oldest if self.oldest is not None else self.now) - CLOCK_MARGIN

    @property
    def age(self) -> timedelta | None:
        """How long the oldest open transaction has been open."""
        return None if self.oldest is None else max(self.now - self.oldest, timedelta(0))


def privilege_problem(conn: Connection, cursor_family: str | None = None) -> str | None:
    """Why ``lookback = "auto"`` cannot work on this source (None: it can)."""
    if cursor_family is not None and cursor_family not in TIME_FAMILIES:
        return "the cursor is not a date or time column"
    name = conn.dialect.name
    if name == "postgresql":
        user, allowed = conn.exec_driver_sql(
            "SELECT current_user, rolsuper OR pg_has_role(current_user, 'pg_read_all_stats', "
            "'USAGE') FROM pg_roles WHERE rolname = current_user").one()
        if not allowed:
            return (f'the source user "{user}" cannot see other sessions\' transactions '
                    "(GRANT pg_read_all_stats, or pg_monitor, TO it)")
        return None
    if name in ("mysql", "mariadb"):
        try:
            # A WHERE the optimizer knows is false would skip the privilege check.
            conn.exec_driver_sql("SELECT COUNT(*) FROM information_schema.innodb_trx").all()
        except sa_exc.DBAPIError as exc:
            code = getattr(exc.orig, "args", (None,))[0]
            if code in (1227, 1142, 1044):
                user = conn.exec_driver_sql("SELECT CURRENT_USER()").scalar()
                return (f"the source user {user} cannot read information_schema.innodb_trx "
                        "(GRANT PROCESS ON *.* TO it)")
            raise
        return None
    return f"a {name} source shows no open transactions of other connections"


def read_clock(conn: Connection) -> SourceClock:
    """The source's clock and the start of its oldest open transaction, in one query."""
    if conn.dialect.name == "postgresql":
        now, oldest = conn.exec_driver_sql(_PG_CLOCK).one()
        return SourceClock(_utc(now), None if oldest is None else _utc(oldest))
    now, started, oldest = conn.exec_driver_sql(_MYSQL_CLOCK).one()
    if started is not None and oldest is None:
        raise RuntimeError("the source cannot convert times from its system time zone "
                           "(CONVERT_TZ(..., 'SYSTEM', '+00:00') is NULL)")
    return SourceClock(_utc(now), None if oldest is None else _utc(oldest))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def as_cursor(moment: datetime, family: str, source_timezone: str) -> Any:
    """``moment`` (UTC) as a cursor value of this family compares with the source's values."""
    if family == "timestamptz":
        return moment
    if family == "timestamp_utc":
        return moment.replace(tzinfo=None)
    local = moment.astimezone(ZoneInfo(source_timezone)).replace(tzinfo=None)
    return local.date() if family == "date" else local


class AutoLookback:
    """The checkpoint of one run under ``lookback = "auto"``.

    ``checkpoint(key, clock)`` is asked after each batch, with the (cursor, pk) of
    its last row and the clock read just before it: the key when that row is before
    the bound, else the bare bound (and the checkpoint stays there for the rest of
    the run: later batches were read after rows that are not final yet).
    """

    def __init__(self, family: str, source_timezone: str) -> None:
        self.family = family
        self.source_timezone = source_timezone
        self.held: Any = None  # the bound the checkpoint stopped at
        self.held_by: timedelta | None = None  # the age of the transaction that set it
        self.last: SourceClock | None = None

    def checkpoint(self, key: tuple[Any, ...], clock: SourceClock) -> tuple[Any, ...] | None:
        """The checkpoint to save after this batch (None: keep the one saved)."""
        self.last = clock
        if self.held is not None:
            return None
        bound = as_cursor(clock.bound, self.family, self.source_timezone)
        try:
            final = key[0] < bound
        except TypeError:  # a cursor value not comparable with a time: no bound
            return key
        if final:
            return key
        self.held, self.held_by = bound, clock.age
        return (bound,)

    def load_start(self, value: Any, clock: SourceClock) -> Any:
        """Where incremental runs take over after a full load: ``value``, or the bound."""
        self.last = clock
        bound = as_cursor(clock.bound, self.family, self.source_timezone)
        try:
            return value if value < bound else bound
        except TypeError:
            return value

    def record(self) -> dict[str, Any] | None:
        """What the run record keeps: the bound used, whether it held the checkpoint back."""
        if self.last is None:
            return None
        bound = self.held if self.held is not None else as_cursor(
            self.last.bound, self.family, self.source_timezone)
        age = self.held_by if self.held is not None else self.last.age
        return {"bound": _iso(bound), "held": self.held is not None,
                "oldest_transaction_age_s": None if age is None else round(
                    age.total_seconds(), 3)}

    def warning(self) -> str | None:
        """A warning when a long open source transaction held the checkpoint back."""
        if self.held is None or self.held_by is None or self.held_by < HELD_WARNING_AGE:
            return None
        return (f'lookback = "auto": checkpoint held at {_iso(self.held)} by a source '
                f"transaction open for {duration_words(self.held_by)}; the rows after it are read "
                "again by the next run")


def _iso(value: Any) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def duration_words(age: timedelta) -> str:
    """``45s``, ``1m``, ``3m 20s``, ``2h 5m``."""
    seconds = int(age.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    return f"{secs}s"


def start_auto(ctx: Any) -> AutoLookback | None:
    """The run's AutoLookback, or None (with a warning why) when ``auto`` cannot work.

    ``ctx`` is the run's SyncContext; without ``lookback = "auto"`` this is None.
    """
    spec = ctx.spec
    if not spec.lookback_auto or spec.cursor is None:
        return None
    plan = next(p for p in ctx.plans if p.name == spec.cursor)
    from syncd.engine.connect import translated_errors

    with translated_errors(f"source {spec.qualified_table}"), ctx.source.connect() as conn:
        problem = privilege_problem(conn, plan.family)
    if problem is not None:
        ctx.progress.warn(f'lookback = "auto" fell back to the fixed lookback of '
                          f"{duration_words(spec.lookback)}: {problem}")
        return None
    return AutoLookback(plan.family, spec.source_timezone)


def check_auto(spec: Any, source: Any) -> str | None:
    """For ``syncd check``: why ``lookback = "auto"`` would fall back on this job (None: it
    works). ``spec`` is a TableSync, ``source`` its source Engine."""
    from syncd.engine.catalog import describe_columns
    from syncd.engine.connect import translated_errors
    from syncd.engine.typemap import family

    with translated_errors(f"source {spec.qualified_table}"), source.connect() as conn:
        column = describe_columns(conn, spec.table, spec.schema).get(spec.cursor)
        return privilege_problem(conn, family(column) if column is not None else None)
