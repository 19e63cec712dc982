"""Failed-login limits kept in the local database, so every web process counts the same.

After ``attempts`` failed logins of one user name within ``window`` seconds, the
name is refused until the oldest of them is older than the window. Each attempt
is written before its password is checked and counted with the others, so
attempts running at the same time in several processes cannot slip past the limit;
a refused attempt is not written (it does not prolong the lock) and a successful
login clears the name's failures.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select

from syncd import SyncdState
from syncd.models import LoginFailure, utcnow

NAME_CHARS = 100  # the column's size; the login form allows no longer names


class LoginThrottle:
    """Counts failed logins per user name in ``syncd_login_failures``."""

    def __init__(self, state: SyncdState, attempts: int = 10, window: float = 300.0) -> None:
        self.state = state
        self.attempts = attempts
        self.window = window

    def admit(self, username: str) -> int | None:
        """Record a login attempt of ``username``; its id, or None when the name is locked."""
        name = username[:NAME_CHARS]
        now = utcnow()
        since = now - timedelta(seconds=self.window)
        with self.state.sessions.begin() as session:
            session.execute(delete(LoginFailure).where(LoginFailure.attempted_at <= since))
            attempt = LoginFailure(username=name, attempted_at=now)
            session.add(attempt)
            session.flush()
            attempt_id = attempt.id
        with self.state.sessions.begin() as session:
            count = session.scalar(select(func.count()).select_from(LoginFailure).where(
                LoginFailure.username == name, LoginFailure.attempted_at > since))
            if (count or 0) > self.attempts:
                session.execute(delete(LoginFailure).where(LoginFailure.id == attempt_id))
                return None
        return attempt_id

    def succeeded(self, username: str) -> None:
        """A right password: forget the name's failures."""
        with self.state.sessions.begin() as session:
            session.execute(delete(LoginFailure).where(
                LoginFailure.username == username[:NAME_CHARS]))
