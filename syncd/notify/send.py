"""Talking to alert targets: one attempt each, raising DeliveryFailed with a short reason.

- webhook: ``POST`` of the JSON body, ``Content-Type: application/json``; with a
  secret, ``X-Syncd-Signature: sha256=<hex HMAC-SHA256 of the body>``. Any 2xx
  is delivered; redirects are not followed (the body would be lost); a
  ``user:password@`` in the URL is sent as HTTP basic authentication.
- e-mail: ``smtps://`` speaks TLS from the start; ``smtp://`` upgrades with
  STARTTLS whenever the server offers it, and refuses to send a password over a
  connection that is not encrypted. Certificates are verified.

Reasons never contain the URL (the caller shows the masked target).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import unquote, urlsplit

USER_AGENT = "syncd-alerts/1"
MAX_REASON = 300


class DeliveryFailed(Exception):
    """One attempt to reach a target failed; the message says why, without secrets."""


def signature(body: bytes, secret: str) -> str:
    """The ``X-Syncd-Signature`` header value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx response then raises HTTPError


def post_webhook(url: str, body: bytes, headers: dict[str, str], secret: str | None,
                 timeout: float) -> None:
    """POST ``body`` (JSON) to ``url``; DeliveryFailed unless the answer is 2xx."""
    all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    if secret:
        all_headers["X-Syncd-Signature"] = signature(body, secret)
    parts = urlsplit(url)
    if parts.username is not None:  # user:password@ in the URL: HTTP basic authentication
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        all_headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    request = urllib.request.Request(url, data=body, headers=all_headers, method="POST")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(65536)
    except urllib.error.HTTPError as exc:
        text = exc.read(200).decode("utf-8", "replace").strip() if exc.fp else ""
        raise DeliveryFailed(_cut(f"HTTP {exc.code} {exc.reason}" + (f": {text}" if text else "")
                                  )) from None
    except urllib.error.URLError as exc:
        raise DeliveryFailed(_cut(f"cannot reach the webhook: {_reason(exc.reason)}")) from None
    except (OSError, ValueError) as exc:  # timeouts, resets, bad responses
        raise DeliveryFailed(_cut(f"webhook: {_reason(exc)}")) from None


def send_email(smtp_url: str, sender: str, recipients: tuple[str, ...], subject: str,
               text: str, timeout: float) -> None:
    """Send one plain-text e-mail through ``smtp_url``; DeliveryFailed on any error."""
    parts = urlsplit(smtp_url)
    implicit_tls = parts.scheme.lower() == "smtps"
    host = parts.hostname or ""
    port = parts.port or (465 if implicit_tls else 25)
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password or "")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(text)
    context = ssl.create_default_context()
    try:
        client: smtplib.SMTP
        if implicit_tls:
            client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            client.ehlo()
            encrypted = implicit_tls
            if not implicit_tls and client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
                encrypted = True
            if user is not None:
                if not encrypted:
                    raise DeliveryFailed("the SMTP server offers no STARTTLS: refusing to send "
                                         "the password unencrypted (use smtps:// or drop it)")
                client.login(user, password)
            client.send_message(message, from_addr=sender, to_addrs=list(recipients))
    except DeliveryFailed:
        raise
    except smtplib.SMTPResponseException as exc:
        detail = exc.smtp_error.decode("utf-8", "replace") if isinstance(
            exc.smtp_error, bytes) else str(exc.smtp_error)
        raise DeliveryFailed(_cut(f"SMTP {exc.smtp_code}: {detail}")) from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryFailed(_cut(f"recipients refused: {', '.join(exc.recipients)}")) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(_cut(f"SMTP: {_reason(exc)}")) from None


def default_sender() -> str:
    """``syncd@<this host's name>``, when ``email_from`` is not set."""
    return f"syncd@{socket.gethostname() or 'localhost'}"


def _reason(exc: object) -> str:
    if isinstance(exc, BaseException):
        text = str(exc) or type(exc).__name__
        return text if type(exc).__name__ in text else f"{type(exc).__name__}: {text}"
    return str(exc)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_REASON else text[:MAX_REASON] + "..."
