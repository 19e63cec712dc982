"""The ``[notify]`` section of the jobs file: where alerts go and which events are sent.

```toml
[notify]
webhooks = ["https://hooks.example.com/syncd"]   # JSON POST, signed when `secret` is set
secret = "${SYNCD_WEBHOOK_SECRET}"
email_to = ["oncall@example.com"]
smtp_url = "smtp://user:${SMTP_PASSWORD}@mail.example.com:587"
email_from = "syncd@example.com"                 # optional
on = ["failed", "recovered", "stale", "failing:3"]
```

Values may use ``${NAME}``; every message names the file and the field. URLs are only
ever shown masked (``masked_url``): the password and query values become ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from syncd.engine.errors import ConfigError

NOTIFY_KEYS = {"webhooks", "secret", "email_to", "email_from", "smtp_url", "on"}
EVENTS = ("failed", "recovered", "stale")
DEFAULT_ON = ("failed", "recovered", "stale")
FAILING = re.compile(r"^failing:(\d{1,6})$")
EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")

Expand = Callable[[str, str], str]  # (value, where) -> value with ${NAME} replaced


@dataclass(frozen=True)
class Target:
    """One place an alert goes: a webhook URL, or one e-mail to all of ``email_to``."""

    kind: str  # "webhook" | "email"
    url: str  # webhook or SMTP URL, secrets included: show ``label`` instead
    recipients: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The target as it may be shown: URL masked, recipients listed."""
        if self.kind == "email":
            return f"email to {', '.join(self.recipients)} via {masked_url(self.url)}"
        return f"webhook {masked_url(self.url)}"


@dataclass(frozen=True)
class NotifySpec:
    """The validated ``[notify]`` section (empty: no alerts)."""

    webhooks: tuple[str, ...] = ()
    secret: str | None = None
    email_to: tuple[str, ...] = ()
    email_from: str | None = None
    smtp_url: str | None = None
    on: tuple[str, ...] = DEFAULT_ON

    @property
    def targets(self) -> list[Target]:
        """Every target, webhooks first."""
        out = [Target("webhook", url) for url in self.webhooks]
        if self.email_to and self.smtp_url:
            out.append(Target("email", self.smtp_url, self.email_to))
        return out

    @property
    def failing_after(self) -> tuple[int, ...]:
        """The N of each ``failing:N``, ascending."""
        return tuple(sorted(int(m.group(1)) for e in self.on if (m := FAILING.match(e))))

    def wants(self, event: str) -> bool:
        """True if ``event`` ("failed", "recovered", "stale") is in ``on``."""
        return event in self.on

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret of this section, to keep out of messages and logs."""
        found = [self.secret] if self.secret else []
        for url in (*self.webhooks, self.smtp_url or ""):
            parts = urlsplit(url)
            if parts.password:
                found += [parts.password, unquote(parts.password)]
            found += [v for _, _, v in _query_pairs(parts) if len(v) >= 4]
        return tuple(s for s in found if s)


def masked_url(url: str) -> str:
    """``https://u:secret@host/p?token=abc`` -> ``https://u:***@host/p?token=***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if parts.port is not None:
            netloc += f":{parts.port}"
    except ValueError:
        return re.sub(r"://[^/@]*@", "://***@", url.split("?", 1)[0])
    if parts.username is not None:
        user = parts.username + (":***" if parts.password is not None else "")
        netloc = f"{user}@{netloc}"
    query = "&".join(f"{k}{sep}***" if sep else k for k, sep, _ in _query_pairs(parts))
    return SplitResult(parts.scheme, netloc, parts.path, query, "").geturl()


def _query_pairs(parts: SplitResult) -> list[tuple[str, str, str]]:
    return [p.partition("=") for p in parts.query.split("&") if p]


def parse_notify(raw: Any, label: str, expand: Expand) -> NotifySpec:
    """Validate the ``[notify]`` table; ConfigError names the file and the field."""
    where = f"{label}: [notify]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table ([notify] with webhooks, email_to, ...)")
    unknown = set(raw) - NOTIFY_KEYS
    if unknown:
        raise ConfigError(f'{where}: unknown field(s): {", ".join(sorted(unknown))} '
                          f'(known: {", ".join(sorted(NOTIFY_KEYS))})')

    def field(key: str) -> str:
        return f'{where}: field "{key}"'

    webhooks = tuple(_webhook(expand(u, field("webhooks")), field("webhooks"))
                     for u in _strings(raw, "webhooks", field("webhooks")))
    secret = None
    if "secret" in raw:
        if not isinstance(raw["secret"], str):
            raise ConfigError(f"{field('secret')}: must be a string")
        secret = expand(raw["secret"], field("secret"))
        if not secret:
            raise ConfigError(f"{field('secret')}: is empty")
    email_to = tuple(_address(expand(a, field("email_to")), field("email_to"))
                     for a in _strings(raw, "email_to", field("email_to")))
    email_from = None
    if "email_from" in raw:
        if not isinstance(raw["email_from"], str):
            raise ConfigError(f"{field('email_from')}: must be an e-mail address")
        email_from = _address(expand(raw["email_from"], field("email_from")),
                              field("email_from"))
    smtp_url = None
    if "smtp_url" in raw:
        if not isinstance(raw["smtp_url"], str):
            raise ConfigError(f"{field('smtp_url')}: must be a string")
        smtp_url = _smtp(expand(raw["smtp_url"], field("smtp_url")), field("smtp_url"))
    if email_to and smtp_url is None:
        raise ConfigError(f'{field("smtp_url")}: required with "email_to" '
                          '(e.g. "smtp://mail.example.com:587")')
    if smtp_url is not None and not email_to:
        raise ConfigError(f'{field("email_to")}: required with "smtp_url" (a list of addresses)')
    if not webhooks and not email_to:
        raise ConfigError(f'{where}: no target: set "webhooks" and/or "email_to" + "smtp_url"')
    on = _events(raw, field("on")) if "on" in raw else DEFAULT_ON
    return NotifySpec(webhooks=webhooks, secret=secret, email_to=email_to,
                      email_from=email_from, smtp_url=smtp_url, on=on)


def _strings(raw: dict[str, Any], key: str, where: str) -> list[str]:
    value = raw.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: must be a list of strings")
    return value


def _webhook(url: str, where: str) -> str:
    problem = _url_problem(url, ("http", "https"))
    if problem:
        raise ConfigError(f"{where}: {masked_url(url)!r} is not a webhook URL: {problem}")
    return url


def _smtp(url: str, where: str) -> str:
    problem = _url_problem(url, ("smtp", "smtps"))
    if not problem:
        parts = urlsplit(url)
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            problem = "no path or query allowed, only smtp[s]://[user:password@]host[:port]"
    if problem:
        raise ConfigError(f"{where}: {masked_url(url)!r} is not an SMTP URL: {problem}")
    return url


def _url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    if any(c.isspace() for c in url):
        return "it contains spaces"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError as exc:
        return str(exc)
    if parts.scheme.lower() not in schemes:
        return f"the scheme must be {' or '.join(s + '://' for s in schemes)}"
    if not parts.hostname:
        return "no host"
    return None


def _address(value: str, where: str) -> str:
    if not EMAIL.match(value):
        raise ConfigError(f"{where}: {value[:200]!r} is not an e-mail address")
    return value


def _events(raw: dict[str, Any], where: str) -> tuple[str, ...]:
    value = raw["on"]
    allowed = '"failed", "recovered", "stale" or "failing:N" (N at least 1)'
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: must be a list of events: {allowed}")
    for event in value:
        match = FAILING.match(event) if isinstance(event, str) else None
        if event not in EVENTS and not (match and int(match.group(1)) >= 1):
            raise ConfigError(f"{where}: unknown event {str(event)[:200]!r}: use {allowed}")
    return tuple(dict.fromkeys(value))

