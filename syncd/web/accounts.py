"""Web users and API tokens in the local database: create, change, delete, check.

Passwords are hashed with werkzeug's scrypt; API tokens are random strings
stored as their SHA-256 hash (they carry 256 bits of entropy, so a slow hash
adds nothing), shown once when created. Every change is written to the audit
table (``syncd_audit``) in the same transaction, with who made it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from syncd import SyncdState
from syncd.models import ROLES, ApiToken, AuditEntry, User, utcnow

MIN_PASSWORD_LENGTH = 8
TOKEN_PREFIX = "syncd_"
# Checked against when the user does not exist, so both cases take as long.
_DUMMY_HASH = generate_password_hash("not a password of anybody")


class AccountError(ValueError):
    """A user or token could not be created or changed (message says why)."""


class UnknownAccount(AccountError):
    """No user or token of that name."""


def audit(session: Session, actor: str, action: str, target: str,
          detail: str | None = None) -> None:
    """Add an audit entry to ``session`` (committed with the change it describes)."""
    session.add(AuditEntry(at=utcnow(), actor=actor[:100], action=action, target=target[:100],
                           detail=detail))


def create_user(state: SyncdState, username: str, password: str, role: str,
                actor: str = "cli") -> User:
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
        audit(session, actor, "user.add", username, f"role {role}")
        session.flush()
        return user


def set_password(state: SyncdState, username: str, password: str, actor: str = "cli") -> None:
    """Replace a user's password (the user's open sessions end)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    with state.sessions.begin() as session:
        result = session.execute(update(User).where(User.username == username).values(
            password_hash=generate_password_hash(password)))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise UnknownAccount(_no_user(session, username))
        audit(session, actor, "user.passwd", username, "password changed")


def set_role(state: SyncdState, username: str, role: str, actor: str) -> str:
    """Give a user another role; returns the role it had. The last operator stays one."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    with state.sessions.begin() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise UnknownAccount(_no_user(session, username))
        before = user.role
        if before == "operator" and role != "operator":
            _keep_an_operator(session, user)
        user.role = role
        audit(session, actor, "user.role", username, f"{before} -> {role}")
        return before


def delete_user(state: SyncdState, username: str, actor: str) -> None:
    """Delete a web user (its open sessions end). The last operator cannot be deleted."""
    with state.sessions.begin() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise UnknownAccount(_no_user(session, username))
        if user.role == "operator":
            _keep_an_operator(session, user)
        session.delete(user)
        audit(session, actor, "user.delete", username, f"was {user.role}")


def list_users(state: SyncdState) -> list[User]:
    """All web users, by name."""
    with state.sessions() as session:
        return list(session.scalars(select(User).order_by(User.username)))


def _keep_an_operator(session: Session, user: User) -> None:
    others = session.scalar(select(func.count()).select_from(User).where(
        User.role == "operator", User.active.is_(True), User.id != user.id))
    if not others:
        raise AccountError(
            f'"{user.username}" is the last operator: nobody could act in the web app; '
            "make another user an operator first")


def _no_user(session: Session, username: str) -> str:
    names = list(session.scalars(select(User.username).order_by(User.username)))
    return f'no user "{username}" (users: {", ".join(names) or "none"})'


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


def ensure_admin(state: SyncdState, actor: str = "syncd up") -> str | None:
    """Create an operator "admin" with a random password if there is no user at all.

    Returns the password (to be printed once) or None when users already exist.
    """
    with state.sessions() as session:
        if session.scalar(select(func.count()).select_from(User)):
            return None
    password = secrets.token_urlsafe(12)
    create_user(state, "admin", password, "operator", actor=actor)
    return password


def hash_token(token: str) -> str:
    """The stored form of an API token."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(state: SyncdState, name: str, actor: str = "cli") -> str:
    """Create an API token called ``name`` (names are unique); returns the token.

    Only its hash is kept.
    """
    name = name.strip()
    if not name or len(name) > 100:
        raise AccountError("token name must be 1 to 100 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    taken = AccountError(f'an API token named "{name}" already exists '
                         f"(revoke it first: syncd tokens revoke {name})")
    try:
        with state.sessions.begin() as session:
            if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
                raise taken
            session.add(ApiToken(name=name, token_hash=hash_token(token), created_at=utcnow()))
            audit(session, actor, "token.add", name)
    except IntegrityError as exc:  # created by someone else at the same moment
        raise taken from exc
    return token


def revoke_token(state: SyncdState, name: str, actor: str) -> None:
    """Revoke (delete) the API token called ``name``: requests with it get 401 at once."""
    with state.sessions.begin() as session:
        result = session.execute(delete(ApiToken).where(ApiToken.name == name))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            names = list(session.scalars(select(ApiToken.name).order_by(ApiToken.name)))
            raise UnknownAccount(f'no API token "{name}" (tokens: {", ".join(names) or "none"})')
        audit(session, actor, "token.revoke", name)


def list_tokens(state: SyncdState) -> list[ApiToken]:
    """All API tokens (names and dates, never the tokens), by name."""
    with state.sessions() as session:
        return list(session.scalars(select(ApiToken).order_by(ApiToken.name)))


def recent_audit(state: SyncdState, limit: int = 100) -> list[AuditEntry]:
    """The newest audit entries, newest first."""
    with state.sessions() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())
                                    .limit(limit)))


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
