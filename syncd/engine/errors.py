"""The error hierarchy of syncd: what went wrong, and whether retrying helps.

And how an error shows a value it names: quoted, on one line, cut to 200 characters
(a jobs file may hold a 100,000-character name; the error line stays readable).
"""

from __future__ import annotations

import json
import re

VALUE_LIMIT = 200
_LONG_WORD = re.compile(r'[^\s"]{240,}')  # longer than a value cut by shown()


def cut(text: str, limit: int = VALUE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...({len(text)} characters)"


def shown(value: object) -> str:
    """A value as an error message shows it: a string quoted and escaped, cut to 200."""
    if isinstance(value, str):
        return json.dumps(cut(value), ensure_ascii=False)
    return cut(repr(value))


def one_line(message: str) -> str:
    """An error message on one line, every long value in it cut to 200 characters."""
    text = message.replace("\r\n", "\n").replace("\r", "\\r").replace("\n", "\\n")
    return _LONG_WORD.sub(lambda m: cut(m.group(0)), text)


class SyncError(Exception):
    """Base class of every error syncd raises on purpose."""

    transient = False


class ConfigError(SyncError):
    """The jobs file or a job's table/columns are wrong: fix the configuration."""


class SourceUnavailable(SyncError):
    """A database could not be reached or the connection was lost; worth retrying."""

    transient = True


class SourceRefused(SyncError):
    """A database answered but refused the connection (login, database name): no retry helps."""


class RunCancelled(SyncError):
    """Someone cancelled the run; it stopped at a batch boundary, its checkpoint committed."""

    def __init__(self, by: str, message: str | None = None) -> None:
        super().__init__(message or f"cancelled by {by}")
        self.by = by


class SchemaConflict(SyncError):
    """The source table changed in a way the job's settings do not allow."""


class DeleteLimitExceeded(SyncError):
    """Reconcile would delete more than max_delete_ratio of the local table."""


class JobLocked(SyncError):
    """Another run of the same job holds the lock."""


class RunTimedOut(SyncError):
    """The run went past the job's timeout."""


class ValueUnrepresentable(SyncError):
    """A source value the local column type cannot hold exactly (on_unrepresentable = "fail")."""


class LostJobLock(SyncError):
    """The run no longer owns its job (its lock died with a local database restart and
    another run or housekeeping took the job over): it stops without writing."""
