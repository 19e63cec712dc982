"""How values look on the pages: times in SYNCD_TIMEZONE, ages, durations, counts."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask, current_app

from syncd.models import utcnow
from syncd.web.dashboard import one_line

log = logging.getLogger(__name__)


def display_zone(name: str) -> ZoneInfo:
    """The ZoneInfo called ``name``; ValueError with a clear message if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"SYNCD_TIMEZONE: unknown time zone {name!r}") from exc


def local_time(value: datetime | None, zone: ZoneInfo, seconds: bool = True) -> str:
    """``2026-11-25 21:05:03 CET`` for an aware UTC datetime; "-" for None."""
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def words(seconds: float | None) -> str:
    """A span of time in short words: ``40ms``, ``2.5s``, ``3m 20s``, ``2h 5m``, ``3d 4h``."""
    if seconds is None:
        return "-"
    if seconds == 0:
        return "0s"
    if seconds < 0.9995:
        millis = round(seconds * 1000)
        return f"{millis}ms" if millis >= 1 else "<1ms"
    if seconds < 10:
        return f"{seconds:.1f}s" if seconds % 1 else f"{int(seconds)}s"
    total = int(round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    return f"{secs}s"


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """``5m ago`` / ``in 2m`` relative to now; "-" for None."""
    if value is None:
        return "-"
    delta = ((now or utcnow()) - value).total_seconds()
    return f"{words(delta)} ago" if delta >= 0 else f"in {words(-delta)}"


def count(value: int | None) -> str:
    """``1,234,567``; "-" for None."""
    return "-" if value is None else f"{value:,}"


def cursor_text(value: str | None) -> str:
    """A checkpoint cursor (stored as JSON) as text; "-" for none."""
    if not value:
        return "-"
    data = json.loads(value)
    if isinstance(data, list):
        return ", ".join(str(v) for v in data)
    return str(data)


def message(text: str | None, limit: int = 320) -> str:
    """A run's message for a table cell: whole when it fits, else its start and its end.

    The cause of an error comes last ("gave up after 4 attempts: source ...: connection
    refused"), so a long message loses its middle, never its end.
    """
    if not text:
        return ""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    head = limit // 3
    return f"{flat[:head].rstrip()} … {flat[-(limit - head - 3):].lstrip()}"


def iso_utc(value: datetime | None) -> str:
    """ISO 8601 in UTC, for ``<time datetime=...>``."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else ""


PHASES = {"starting": "starting", "full": "full load", "incremental": "incremental pass",
          "reconcile": "reconciling deletes"}


def phase_words(phase: str | None) -> str:
    """What a run is doing, in words ("full load", "incremental pass", ...)."""
    return PHASES.get(phase or "", phase or "")


def register_filters(app: Flask) -> None:
    """Add the display filters to ``app``'s templates."""
    try:
        zone = display_zone(str(app.config.get("SYNCD_TIMEZONE") or "UTC"))
    except ValueError as exc:
        log.warning("%s: showing times in UTC", exc)
        zone = ZoneInfo("UTC")
    app.extensions["syncd_zone"] = zone
    app.jinja_env.filters.update(
        localtime=lambda v, seconds=True: local_time(v, zone, seconds),
        ago=ago, duration=words, count=count, cursor=cursor_text, iso=iso_utc,
        one_line=one_line, phase=phase_words, message=message,
    )


def current_zone() -> ZoneInfo:
    """The time zone the current app shows times in."""
    return current_app.extensions["syncd_zone"]  # type: ignore[no-any-return]

