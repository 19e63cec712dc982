"""Web users and API tokens in the local database: create, check, look up.

Passwords are hashed with werkzeug's scrypt; API tokens are random strings
stored as their SHA-256 hash (they carry 256 bits of entropy, so a slow hash
adds nothing), shown once when created.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from syncd import SyncdState
from syncd.models import ROLES, ApiToken, User, utcnow

MIN_PASSWORD_LENGTH = 8
TOKEN_PREFIX = "syncd_"
# Checked against when the user does not exist, so both cases take as long.
_DUMMY_HASH = generate_password_hash("not a password of anybody")


class AccountError(ValueError):
    """A user or token could not be created (message says why)."""


def create_user(state: SyncdState, username: str, password: str, role: str) -> User:
    """Create an active web user with a hashed password."""
    username = username.strip()
    if not username or len(username) > 100:
        raise AccountError("user name must be 1 to 100 characters")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    with state.sessions.begin() as session:
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise AccountError(f'user "{username}" already exists')
        user = User(username=username, password_hash=generate_password_hash(password),
                    role=role, active=True, created_at=utcnow())
        session.add(user)
        session.flush()
        return user


def set_password(state: SyncdState, username: str, password: str) -> None:
    """Replace a user's password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    with state.sessions.begin() as session:
        result = session.execute(update(User).where(User.username == username).values(
            password_hash=generate_password_hash(password)))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise AccountError(f'no user "{username}"')


def authenticate(state: SyncdState, username: str, password: str) -> User | None:
    """The active user with this name and password, or None."""
    with state.sessions() as session:
        user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    return user


def load_user(state: SyncdState, user_id: int) -> User | None:
    """The active user with this id, or None."""
    with state.sessions() as session:
        user = session.get(User, user_id)
    return user if user is not None and user.active else None


def ensure_admin(state: SyncdState) -> str | None:
    """Create an operator "admin" with a random password if there is no user at all.

    Returns the password (to be printed once) or None when users already exist.
    """
    with state.sessions() as session:
        if session.scalar(select(func.count()).select_from(User)):
            return None
    password = secrets.token_urlsafe(12)
    create_user(state, "admin", password, "operator")
    return password


def hash_token(token: str) -> str:
    """The stored form of an API token."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(state: SyncdState, name: str) -> str:
    """Create an API token called ``name``; returns the token (only its hash is kept)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise AccountError("token name must be 1 to 100 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with state.sessions.begin() as session:
        session.add(ApiToken(name=name, token_hash=hash_token(token), created_at=utcnow()))
    return token


def check_token(state: SyncdState, token: str) -> ApiToken | None:
    """The valid (not revoked) API token ``token``, marked as used now; or None."""
    digest = hash_token(token)
    with state.sessions.begin() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
        if row is None or row.revoked or not hmac.compare_digest(row.token_hash, digest):
            return None
        now = utcnow()
        if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
            row.last_used_at = now  # at most one write a minute per token
        return row
