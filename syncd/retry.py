"""Retrying what is transient: exponential backoff with jitter, a bounded number of attempts.

A run retries its source and its local database alike (SYNCD_RETRY_ATTEMPTS attempts,
the first wait SYNCD_RETRY_BACKOFF seconds, doubling, times a jitter of 0.5-1.5). The
runner's own writes to the local database (run row, attempts, lease, outcome) go
through ``local_write``, so a local database that restarts does not lose the run.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from syncd.engine.connect import from_driver, is_transient, short
from syncd.engine.errors import SourceUnavailable, SyncError

log = logging.getLogger(__name__)
T = TypeVar("T")


class LocalUnavailable(SourceUnavailable):
    """The local database could not be reached, after every attempt."""


@dataclass(frozen=True)
class Backoff:
    """How often and how patiently to retry."""

    attempts: int
    first: float  # seconds before the second attempt; doubles after each failure

    @classmethod
    def of(cls, config: Any) -> Backoff:
        """The retry settings of a Config."""
        return cls(max(1, int(config.SYNCD_RETRY_ATTEMPTS)), float(config.SYNCD_RETRY_BACKOFF))

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(self.first * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))


def is_transient_error(error: BaseException) -> bool:
    """True for errors worth a retry: a refused or lost connection, a lock timeout, a deadlock."""
    if isinstance(error, SyncError):
        return error.transient
    if isinstance(error, (DBAPIError, OSError)) or from_driver(error):
        return is_transient(error)
    return False


def describe_error(error: BaseException) -> str:
    """One line about an error, without SQLAlchemy's SQL and links."""
    if isinstance(error, SyncError):
        return str(error)
    if isinstance(error, DBAPIError) or from_driver(error):
        return short(error)
    return f"{type(error).__name__}: {error}"


def local_write(action: Callable[[], T], backoff: Backoff, what: str) -> T:
    """Run ``action`` (its own local transaction); retry it while the database is unreachable.

    Raises LocalUnavailable after the last attempt; any other error at once.
    """
    for attempt in range(1, backoff.attempts + 1):
        try:
            return action()
        except Exception as exc:
            if not is_transient_error(exc):
                raise
            message = describe_error(exc)
            if attempt == backoff.attempts:
                raise LocalUnavailable(
                    f"local database: gave up after {attempt} attempts to {what}: {message}"
                ) from exc
            delay = backoff.delay(attempt)
            log.warning("local database: could not %s (attempt %d of %d: %s); retrying in %.1fs",
                        what, attempt, backoff.attempts, message, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # attempts >= 1
