"""Load and validate the jobs file (TOML) into frozen dataclasses.

The whole file is validated before anything runs; every mistake is reported
with the file, the job and the field (``jobs.toml: job "orders": field
"cursor": ...``). Checks against the source schema (tables, columns) happen in
``syncd.engine.schema.check_table`` because they need a connection.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.schedules import crontab

from syncd.engine.errors import ConfigError, cut, shown
from syncd.engine.spec import TableSync
from syncd.engine.urls import BadURL, database_url, masked, masked_if_parsed
from syncd.notify.config import NotifySpec, parse_notify

JOB_NAME = re.compile(r"^[a-z0-9_-]{1,100}$")
LOCAL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,47}$")
DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_NAME = 200  # longest table or column name accepted (MySQL allows 64, PostgreSQL 63)
MAX_DURATION = timedelta(days=3650)  # longer makes no sense as a schedule, timeout or lookback
SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|GB)?\s*$", re.IGNORECASE)
SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}
DEFAULT_BATCH_BYTES = 32 * 1024**2

SOURCE_KEYS = {"url", "timezone", "max_connections"}
JOB_KEYS = {
    "name", "source", "table", "target", "mode", "cursor", "primary_key", "columns",
    "schedule", "batch_size", "lookback", "deletes", "max_delete_ratio",
    "on_schema_change", "timeout", "on_unrepresentable", "max_age", "verify_schedule",
    "verify_repair", "batch_bytes",
    "tables", "overrides", "missing_cursor",  # a group job: see syncd.groups
}
DEFAULT_MAX_CONNECTIONS = 4
STALE_PERIODS = 3  # default max_age: this many schedule periods


@dataclass(frozen=True)
class SourceSpec:
    """A source database of the jobs file."""

    name: str
    url: str  # with ${VAR} expanded: never print it, use masked_url
    timezone: str = "UTC"
    max_connections: int = DEFAULT_MAX_CONNECTIONS  # runs of this source at once (slots)

    @property
    def masked_url(self) -> str:
        """The URL with its password hidden."""
        return mask_url(self.url)


@dataclass(frozen=True)
class Schedule:
    """A job's schedule: a 5-field cron (UTC) or a fixed interval."""

    text: str
    interval: timedelta | None = None
    cron: str | None = None

    def celery_schedule(self) -> Any:
        """The object Celery beat expects: a timedelta or a crontab."""
        if self.interval is not None:
            return self.interval
        return crontab.from_string(self.cron or "")

    def next_after(self, when: datetime) -> datetime:
        """Next fire time after ``when`` (aware, UTC); for a cron, never before now."""
        if self.interval is not None:
            return when + self.interval
        # remaining_estimate() measures from the current time, not from ``when``.
        now = datetime.now(UTC)
        return now + crontab.from_string(self.cron or "").remaining_estimate(when)

    def period(self, now: datetime) -> timedelta:
        """The time between two runs around ``now``."""
        if self.interval is not None:
            return self.interval
        first = self.next_after(now)
        return self.next_after(first + timedelta(seconds=1)) - first + timedelta(seconds=1)

    def describe(self) -> str:
        """The schedule in words."""
        if self.interval is not None:
            return f"every {self.text.strip()}"
        return f"cron {self.cron} (UTC)"


@dataclass(frozen=True)
class JobSpec:
    """One validated job of the jobs file."""

    name: str
    source: SourceSpec
    table: str
    target: str
    mode: str
    cursor: str | None
    primary_key: tuple[str, ...] | None
    columns: tuple[str, ...] | None
    schedule: Schedule | None
    batch_size: int
    lookback: timedelta
    deletes: str
    max_delete_ratio: float
    on_schema_change: str
    timeout: timedelta | None
    on_unrepresentable: str = "fail"
    max_age: timedelta | None = None  # as written in the jobs file; see stale_after()
    lookback_auto: bool = False  # lookback = "auto" (``lookback`` then holds the fallback)
    verify_schedule: Schedule | None = None  # scheduled `syncd verify` runs
    verify_repair: bool = False  # scheduled verifies also repair what they find
    batch_bytes: int = DEFAULT_BATCH_BYTES  # a batch also ends at this many bytes
    # A table job of a group (``tables = [...]``): see syncd.groups.
    group: str | None = None  # the group job it belongs to
    cursor_candidates: tuple[str, ...] = ()  # the first that exists is the cursor
    missing_cursor: str = "full"  # no candidate exists: "full" | "skip" | "fail"

    def stale_after(self, now: datetime) -> timedelta | None:
        """Data older than this is stale: ``max_age``, else three schedule periods.

        None for a job without schedule nor ``max_age``: it is never stale.
        """
        if self.max_age is not None:
            return self.max_age
        if self.schedule is None:
            return None
        return STALE_PERIODS * self.schedule.period(now)

    def table_sync(self) -> TableSync:
        """The engine's view of this job."""
        schema, _, table = self.table.rpartition(".")
        return TableSync(
            job=self.name,
            table=table,
            schema=schema or None,
            target=self.target,
            mode=self.mode,
            cursor=self.cursor,
            primary_key=self.primary_key,
            columns=self.columns,
            batch_size=self.batch_size,
            batch_bytes=self.batch_bytes,
            lookback=self.lookback,
            deletes=self.deletes,
            max_delete_ratio=self.max_delete_ratio,
            on_schema_change=self.on_schema_change,
            source_timezone=self.source.timezone,
            on_unrepresentable=self.on_unrepresentable,
            lookback_auto=self.lookback_auto,
            keyless_full=self.group is not None,
        )


@dataclass(frozen=True)
class JobsFile:
    """All sources and jobs of one jobs file."""

    path: str
    sources: dict[str, SourceSpec]
    jobs: dict[str, JobSpec]
    notify: NotifySpec = field(default_factory=NotifySpec)  # no [notify]: no targets
    groups: dict[str, Any] = field(default_factory=dict)  # name -> syncd.groups.GroupSpec

    def job(self, name: str) -> JobSpec:
        """The job called ``name`` (or ``<group>.<table>``); ConfigError if there is none."""
        if name in self.jobs:
            return self.jobs[name]
        group, dot, table = name.partition(".")
        if dot and group in self.groups:
            from syncd.groups import table_job

            return table_job(self.groups[group], table)
        if name in self.groups:
            raise ConfigError(f'{self.path}: job "{name}" is a group of tables: run one of its '
                              f'tables ("{name}.<table>") or the whole group')
        known = ", ".join(sorted(set(self.jobs) | set(self.groups))) or "none"
        raise ConfigError(f'{self.path}: no job named "{name}" (jobs: {known})') from None


def mask_url(url: str) -> str:
    """``mysql+pymysql://reader:secret@host/db`` -> ``mysql+pymysql://reader:***@host/db``."""
    return masked(url)


def parse_size(text: Any, where: str) -> int:
    """A size such as "32MB", "512KB" or a number of bytes (at least 1 KB)."""
    match = SIZE.match(str(text)) if isinstance(text, (str, int)) and not isinstance(
        text, bool) else None
    if not match:
        raise ConfigError(f'{where}: must be a size such as "32MB", "512KB" or bytes, '
                          f"got {shown(text)}")
    size = int(match.group(1)) * SIZE_UNITS[(match.group(2) or "b").lower()]
    if size < 1024:
        raise ConfigError(f"{where}: must be at least 1KB, got {shown(text)}")
    return size


def parse_duration(text: str, where: str) -> timedelta:
    """Parse "30s", "5m", "2h", "1d" into a timedelta (at most ten years)."""
    match = DURATION.match(str(text))
    if not match:
        raise ConfigError(f'{where}: {shown(text)} is not a duration (use e.g. "30s", "5m", "2h")')
    digits = match.group(1).lstrip("0") or "0"
    seconds = int(digits) * UNITS[match.group(2)] if len(digits) <= 12 else None
    if seconds is None or seconds > MAX_DURATION.total_seconds():
        raise ConfigError(f"{where}: {shown(text)} is too long (at most 3650d)")
    return timedelta(seconds=seconds)


def parse_schedule(text: Any, where: str) -> Schedule:
    """Parse an interval ("30s") or a 5-field cron expression."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f'{where}: must be a cron expression or an interval such as "5m", '
                          f"not {shown(text)}")
    if DURATION.match(text):
        interval = parse_duration(text, where)
        if interval.total_seconds() < 1:
            raise ConfigError(f'{where}: interval "{text}" must be at least 1s')
        return Schedule(text=text, interval=interval)
    fields = text.split()
    if len(fields) != 5:
        raise ConfigError(
            f'{where}: {shown(text)} is neither an interval ("30s", "5m", "2h") '
            "nor a 5-field cron expression (minute hour day month weekday)"
        )
    try:
        crontab.from_string(" ".join(fields))
    except Exception as exc:  # noqa: BLE001  (Celery's parser raises ParseException, ValueError...)
        raise ConfigError(f"{where}: bad cron expression {shown(text)}: {cut(str(exc))}") from exc
    return Schedule(text=text, cron=" ".join(fields))


def expand_env(value: str, environ: Mapping[str, str], where: str) -> str:
    """Replace each ${NAME} by its value in ``environ``; unset names are an error."""

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise ConfigError(f"{where}: environment variable ${{{cut(name)}}} is not set")
        return environ[name]

    return ENV_REF.sub(repl, value)


def load_jobs(path: str | Path, environ: Mapping[str, str]) -> JobsFile:
    """Read and validate a jobs file; raises ConfigError naming file, job and field."""
    label = str(path)
    return parse_jobs_text(read_jobs_text(path), label, environ)


def read_jobs_text(path: str | Path) -> str:
    """The text of a jobs file; ConfigError if it is missing or not UTF-8."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: jobs file not found (set SYNCD_JOBS_FILE or create it)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the jobs file: {exc.strerror}") from exc


def parse_jobs_text(text: str, label: str, environ: Mapping[str, str]) -> JobsFile:
    """Validate the text of a jobs file; ``label`` names it in messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: not valid TOML: {exc}") from exc
    return parse_jobs(data, label, environ)


def parse_jobs(data: dict[str, Any], label: str, environ: Mapping[str, str]) -> JobsFile:
    """Validate the parsed TOML of a jobs file."""
    unknown = set(data) - {"sources", "jobs", "notify"}
    if unknown:
        raise ConfigError(f"{label}: unknown top-level key(s): {_listed(unknown)}")
    sources_raw = data.get("sources", {})
    if not isinstance(sources_raw, dict):
        raise ConfigError(f"{label}: [sources] must be a table of sources")
    sources = {name: _parse_source(name, raw, label, environ) for name, raw in sources_raw.items()}
    jobs_raw = data.get("jobs", [])
    if not isinstance(jobs_raw, list):
        raise ConfigError(f"{label}: jobs must be written as [[jobs]] entries")
    jobs: dict[str, JobSpec] = {}
    groups: dict[str, Any] = {}
    for index, raw in enumerate(jobs_raw, start=1):
        if isinstance(raw, dict) and "tables" in raw:
            from syncd.groups import parse_group

            group = parse_group(index, raw, label, sources)
            _refuse_duplicate(group.name, jobs, groups, label)
            groups[group.name] = group
            continue
        job = _parse_job(index, raw, label, sources)
        _refuse_duplicate(job.name, jobs, groups, label)
        jobs[job.name] = job
    targets: dict[str, str] = {}
    for job in jobs.values():
        if job.target in targets:
            raise ConfigError(
                f'{label}: job "{job.name}": field "target": local table "{job.target}" '
                f'is already the target of job "{targets[job.target]}"'
            )
        targets[job.target] = job.name
    notify = NotifySpec()
    if "notify" in data:
        notify = parse_notify(data["notify"], label,
                              lambda value, where: expand_env(value, environ, where))
    return JobsFile(path=label, sources=sources, jobs=jobs, notify=notify, groups=groups)


def _refuse_duplicate(name: str, jobs: dict[str, Any], groups: dict[str, Any],
                      label: str) -> None:
    if name in jobs or name in groups:
        raise ConfigError(f'{label}: job "{name}": field "name": duplicate job name')


def _listed(names: set[str]) -> str:
    """Names for an error message: each shown, at most ten."""
    ordered = sorted(names)
    more = f" and {len(ordered) - 10} more" if len(ordered) > 10 else ""
    return ", ".join(shown(name) for name in ordered[:10]) + more


def _parse_source(name: str, raw: Any, label: str, environ: Mapping[str, str]) -> SourceSpec:
    where = f"{label}: source {shown(name)}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table with a url")
    _refuse_unknown(set(raw) - SOURCE_KEYS, SOURCE_KEYS, where)
    if not isinstance(raw.get("url"), str) or not raw["url"]:
        raise ConfigError(f'{where}: field "url" is required')
    url = expand_env(raw["url"], environ, f'{where}: field "url"')
    _check_url(url, f'{where}: field "url"')
    tz = raw.get("timezone", "UTC")
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ConfigError(f'{where}: field "timezone": unknown time zone {shown(tz)}') from exc
    slots = raw.get("max_connections", DEFAULT_MAX_CONNECTIONS)
    if not isinstance(slots, int) or isinstance(slots, bool) or not 1 <= slots <= 1000:
        raise ConfigError(f'{where}: field "max_connections": must be a whole number from 1 '
                          f"to 1000, not {shown(slots)}")
    return SourceSpec(name=name, url=url, timezone=str(tz), max_connections=slots)


def _check_url(url: str, where: str) -> None:
    """ConfigError unless ``url`` is a database URL syncd can read (its kind, its driver)."""
    try:
        database_url(url)
    except BadURL as exc:
        url_shown = masked_if_parsed(url)  # a URL that does not parse may hide a password
        if url_shown is None:
            raise ConfigError(f"{where}: {exc}") from exc
        raise ConfigError(f"{where}: {shown(url_shown)}: {exc}") from exc


def _refuse_unknown(unknown: set[str], known: set[str], where: str) -> None:
    """ConfigError naming each unknown field, with the known field it most resembles."""
    if not unknown:
        return
    names = sorted(unknown)
    hints = [difflib.get_close_matches(n, sorted(known), n=1, cutoff=0.75) for n in names]
    if len(names) == 1 and hints[0]:
        raise ConfigError(f'{where}: field "{names[0]}": unknown field '
                          f'(did you mean "{hints[0][0]}"?)')
    quoted = ", ".join(f'"{n}"' + (f' (did you mean "{h[0]}"?)' if h else "")
                       for n, h in zip(names, hints, strict=True))
    which = "field" if len(names) == 1 else "fields"
    raise ConfigError(f"{where}: {which} {quoted}: unknown {which} "
                      f"(known: {', '.join(sorted(known))})")


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(
        isinstance(v, str) and 0 < len(v) <= MAX_NAME for v in value
    ):
        raise ConfigError(f"{where}: must be a non-empty list of column names (each at most "
                          f"{MAX_NAME} characters), not {shown(value)}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: lists a column twice")
    return tuple(value)


def _choice(raw: dict[str, Any], key: str, choices: tuple[str, ...], where: str) -> str:
    value = raw.get(key, choices[0])
    if value not in choices:
        allowed = " or ".join(f'"{c}"' for c in choices)
        raise ConfigError(f'{where}: field "{key}": must be {allowed}, not {shown(value)}')
    return str(value)


def _parse_job(index: int, raw: Any, label: str, sources: dict[str, SourceSpec]) -> JobSpec:
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: job #{index}: must be a table")
    name = raw.get("name")
    if not isinstance(name, str) or not JOB_NAME.match(name):
        raise ConfigError(
            f'{label}: job #{index}: field "name": required, lower-case letters, digits, "_" '
            f'and "-" only, at most 100 (got {shown(name)})'
        )
    where = f'{label}: job "{name}"'
    _refuse_unknown(set(raw) - JOB_KEYS, JOB_KEYS, where)
    for key in sorted({"overrides", "missing_cursor"} & set(raw)):
        raise ConfigError(f'{where}: field "{key}": only for a job with "tables"')
    source_name = raw.get("source")
    if not isinstance(source_name, str) or source_name not in sources:
        known = _listed(set(sources)) or "none defined"
        raise ConfigError(
            f'{where}: field "source": unknown source {shown(source_name)} ({known})')
    table = raw.get("table")
    if not isinstance(table, str) or not table or table.count(".") > 1 or len(table) > MAX_NAME:
        raise ConfigError(f'{where}: field "table": required, "table" or "schema.table" (at '
                          f"most {MAX_NAME} characters), not {shown(table)}")
    target = raw.get("target", table.rpartition(".")[2])
    if not isinstance(target, str) or not LOCAL_NAME.match(target) or target.startswith("syncd_"):
        field = "target" if "target" in raw else "table"
        hint = "" if "target" in raw else ' (the local table takes this name: set "target")'
        raise ConfigError(
            f'{where}: field "{field}": local table name must be letters, digits and "_" '
            f'(at most 48, not starting with "syncd_"), got {shown(target)}{hint}'
        )
    mode = _choice(raw, "mode", ("incremental", "full"), where)
    cursor = raw.get("cursor")
    if mode == "incremental" and not cursor:
        raise ConfigError(f'{where}: field "cursor": required for an incremental job')
    if cursor is not None and (not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_NAME):
        raise ConfigError(f'{where}: field "cursor": must be a column name (at most {MAX_NAME} '
                          f"characters), not {shown(cursor)}")
    pk = raw.get("primary_key")
    columns = raw.get("columns")
    batch_size = raw.get("batch_size", 10000)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f'{where}: field "batch_size": must be a whole number of at least 1')
    ratio = raw.get("max_delete_ratio", 0.5)
    if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not 0 <= ratio <= 1:
        raise ConfigError(f'{where}: field "max_delete_ratio": must be a number from 0 to 1')
    schedule = raw.get("schedule")
    timeout = raw.get("timeout")
    max_age = raw.get("max_age")
    lookback = raw.get("lookback", "1m")
    lookback_auto = lookback == "auto"
    verify_schedule = raw.get("verify_schedule")
    return JobSpec(
        name=name,
        source=sources[source_name],
        table=table,
        target=target,
        mode=mode,
        cursor=cursor,
        primary_key=_names(pk, f'{where}: field "primary_key"') if pk is not None else None,
        columns=_names(columns, f'{where}: field "columns"') if columns is not None else None,
        schedule=parse_schedule(schedule, f'{where}: field "schedule"') if schedule else None,
        batch_size=batch_size,
        batch_bytes=parse_size(raw.get("batch_bytes", "32MB"), f'{where}: field "batch_bytes"'),
        lookback=parse_duration("1m" if lookback_auto else lookback,
                                f'{where}: field "lookback"'),
        deletes=_choice(raw, "deletes", ("ignore", "reconcile"), where),
        max_delete_ratio=float(ratio),
        on_schema_change=_choice(raw, "on_schema_change", ("evolve", "fail"), where),
        timeout=parse_duration(timeout, f'{where}: field "timeout"') if timeout else None,
        on_unrepresentable=_choice(raw, "on_unrepresentable", ("fail", "null"), where),
        max_age=_max_age(max_age, f'{where}: field "max_age"') if max_age is not None else None,
        lookback_auto=lookback_auto,
        verify_schedule=parse_schedule(verify_schedule, f'{where}: field "verify_schedule"')
        if verify_schedule is not None else None,
        verify_repair=_flag(raw, "verify_repair", where),
    )


def _flag(raw: dict[str, Any], key: str, where: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f'{where}: field "{key}": must be true or false')
    return value


def _max_age(value: Any, where: str) -> timedelta:
    if not isinstance(value, str):
        raise ConfigError(f'{where}: must be a duration such as "2h"')
    age = parse_duration(value, where)
    if age.total_seconds() < 1:
        raise ConfigError(f'{where}: must be at least "1s"')
    return age


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)
