"""The jobs in force: the jobs file when it validates, else the last one that did.

A jobs file that does not validate is rejected as a whole and the last file that
validated stays in force, for beat, worker, web and CLI alike. Each process that
reads a valid file records it in the local database (``syncd_jobs_files``: its
text, SHA-256 and load time) unless it is already the newest version there; a
process that finds the file on disk broken parses that newest version instead
and reports why the file was rejected. With no good file ever recorded, no job
runs. Without syncd's tables (before ``syncd db upgrade``) a valid file is used
as it is and a broken one is simply an error, as before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError

from syncd.engine.errors import ConfigError
from syncd.jobs import JobsFile, parse_jobs_text, read_jobs_text
from syncd.models import JobsFileVersion, utcnow

log = logging.getLogger("syncd.jobs")

KEEP_VERSIONS = 20  # versions of the jobs file kept in the local database
REJECTED_PARTS = (  # how a validation message names the job (or section) and the field
    ("job", re.compile(r'job "([^"]+)": ')),
    ("section", re.compile(r'(source "[^"]+"|\[notify\]): ')),
    ("field", re.compile(r'fields? (.+?): ')),
)


@dataclass(frozen=True)
class GoodFile:
    """A jobs file that validated: where it came from, its hash, when it was first loaded."""

    path: str
    sha256: str
    loaded_at: datetime

    @property
    def short_hash(self) -> str:
        """The first 12 hex digits of the SHA-256."""
        return self.sha256[:12]

    def describe(self) -> str:
        """``jobs.toml (loaded 2026-11-26 08:00:00 UTC, sha256 1a2b3c4d5e6f)``."""
        return (f"{self.path} (loaded {self.loaded_at:%Y-%m-%d %H:%M:%S} UTC, "
                f"sha256 {self.short_hash})")


@dataclass(frozen=True)
class JobsInForce:
    """The jobs that run now, and why the file on disk was rejected (if it was)."""

    jobs: JobsFile | None  # None: no jobs file ever validated, nothing runs
    good: GoodFile | None  # the file the jobs come from (None if it could not be recorded)
    rejected: str | None = None  # the validation error of the file on disk
    path: str = ""  # the jobs file on disk

    def rejection(self) -> dict[str, str] | None:
        """The rejection split into file, job, field and problem (those it names)."""
        if self.rejected is None:
            return None
        parts: dict[str, str] = {}
        rest = self.rejected
        if self.path and rest.startswith(self.path + ": "):
            parts["file"], rest = self.path, rest[len(self.path) + 2:]
        for key, pattern in REJECTED_PARTS:
            match = pattern.match(rest)
            if match:
                value, rest = match.group(1), rest[match.end():]
                single = value.startswith('"') and value.endswith('"') and value.count('"') == 2
                parts[key] = value[1:-1] if single else value
        parts["problem"] = rest
        return parts

    def require(self) -> JobsFile:
        """The jobs in force; ConfigError (the rejection) when there are none."""
        if self.jobs is None:
            raise ConfigError(self.rejected or "no jobs file")
        return self.jobs

    def explanation(self) -> str | None:
        """What a rejection means for the jobs, in one sentence; None when the file is good."""
        if self.rejected is None:
            return None
        if self.jobs is not None and self.good is not None:
            return f"the last good jobs file stays in force: {self.good.describe()}"
        return "no jobs file has validated yet, so no job runs until it is fixed"


def file_hash(text: str) -> str:
    """The SHA-256 of a jobs file's text, in hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class JobsKeeper:
    """Reads the jobs file on each call and keeps the last good one in the local database."""

    def __init__(self, path: str, environ: dict[str, str], engine: Any, sessions: Any) -> None:
        self.path = path
        self.environ = environ
        self.engine = engine
        self.sessions = sessions
        self._recorded: GoodFile | None = None  # the version this process saw recorded
        self._parsed: tuple[str, JobsFile] | None = None  # (sha256, jobs) of a stored version
        self._current: tuple[str, JobsFile] | None = None  # (sha256, jobs) of the file
        self._reported: str | None = None  # the last rejection logged

    def current(self) -> JobsInForce:
        """The jobs in force now."""
        try:
            text = read_jobs_text(self.path)
            digest = file_hash(text)
            if self._current is not None and self._current[0] == digest:
                jobs = self._current[1]  # the same text: parsed once
            else:
                jobs = parse_jobs_text(text, str(self.path), self.environ)
                self._current = (digest, jobs)
        except ConfigError as exc:
            return self._last_good(str(exc))
        self._reported = None
        return JobsInForce(jobs=jobs, good=self._record(text, digest), path=str(self.path))

    def _record(self, text: str, digest: str) -> GoodFile:
        """Store a valid file as the newest version unless it already is."""
        if self._recorded is not None and self._recorded.sha256 == digest:
            return self._recorded
        unsaved = GoodFile(path=str(self.path), sha256=digest, loaded_at=utcnow())
        if not self._database_exists():
            return unsaved
        try:
            with self.sessions.begin() as session:
                newest = session.scalar(
                    select(JobsFileVersion).order_by(JobsFileVersion.id.desc()).limit(1))
                if newest is None or newest.sha256 != digest:
                    newest = JobsFileVersion(
                        sha256=digest, path=str(self.path), text=text, loaded_at=unsaved.loaded_at,
                        loaded_by=f"{socket.gethostname()}:{os.getpid()}")
                    session.add(newest)
                    session.flush()
                    _prune(session, newest.id)
                    log.info("jobs file %s (sha256 %s) is in force", self.path, digest[:12])
                good = _good(newest)
        except SQLAlchemyError as exc:
            log.debug("jobs file not recorded (local database: %s)", exc)
            return unsaved
        self._recorded = good
        return good

    def _last_good(self, rejected: str) -> JobsInForce:
        """The newest recorded version, parsed, with the rejection of the file on disk."""
        stored = self._newest_version()
        if stored is None:
            force = JobsInForce(jobs=None, good=None, rejected=rejected, path=str(self.path))
        else:
            good, text = stored
            try:
                jobs = self._parse_stored(good, text)
            except ConfigError as exc:
                rejected += f"; the last good jobs file does not validate here either: {exc}"
                jobs = None
            force = JobsInForce(jobs=jobs, good=good if jobs is not None else None,
                                rejected=rejected, path=str(self.path))
        if rejected != self._reported:
            self._reported = rejected
            log.error("jobs file rejected: %s; %s", rejected, force.explanation())
        return force

    def _newest_version(self) -> tuple[GoodFile, str] | None:
        if not self._database_exists():
            return None
        try:
            with self.sessions() as session:
                newest = session.scalar(
                    select(JobsFileVersion).order_by(JobsFileVersion.id.desc()).limit(1))
        except SQLAlchemyError as exc:
            log.debug("no last good jobs file (local database: %s)", exc)
            return None
        return None if newest is None else (_good(newest), newest.text)

    def _parse_stored(self, good: GoodFile, text: str) -> JobsFile:
        if self._parsed is not None and self._parsed[0] == good.sha256:
            return self._parsed[1]
        jobs = parse_jobs_text(text, good.path, self.environ)
        self._parsed = (good.sha256, jobs)
        return jobs

    def _database_exists(self) -> bool:
        """False for a SQLite file that does not exist yet (reading must not create it)."""
        url = self.engine.url
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return True
        return Path(url.database).exists()


def _good(row: JobsFileVersion) -> GoodFile:
    return GoodFile(path=row.path, sha256=row.sha256, loaded_at=row.loaded_at)


def _prune(session: Any, newest_id: int) -> None:
    """Keep the newest KEEP_VERSIONS versions."""
    oldest_kept = session.scalar(
        select(JobsFileVersion.id).where(JobsFileVersion.id <= newest_id)
        .order_by(JobsFileVersion.id.desc()).offset(KEEP_VERSIONS - 1).limit(1))
    if oldest_kept is not None:
        session.execute(delete(JobsFileVersion).where(JobsFileVersion.id < oldest_kept))
