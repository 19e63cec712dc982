"""Local alert targets for the tests: an HTTP server that records webhooks and an SMTP
server (aiosmtpd) that records e-mails, both on 127.0.0.1 with a free port."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port_url() -> str:
    """A URL on which nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}/hook"


@dataclass
class Hook:
    """One webhook request as received."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        """True if X-Syncd-Signature is the HMAC-SHA256 of the body under ``secret``."""
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("x-syncd-signature", ""), expected)


class WebhookServer:
    """Records every POST; answers ``status`` (after ``fail_first`` answers of 500)."""

    def __init__(self, status: int = 200, fail_first: int = 0, reply: str = "ok") -> None:
        self.status = status
        self.fail_first = fail_first
        self.reply = reply
        self.received: list[Hook] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                server.received.append(Hook(self.path, {k.lower(): v for k, v in
                                                        self.headers.items()},
                                            self.rfile.read(length)))
                failing = len(server.received) <= server.fail_first
                code = 500 if failing else server.status
                body = server.reply.encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook", userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Mail:
    """One e-mail as received, with what the SMTP session looked like."""

    mail_from: str
    rcpt_tos: list[str]
    message: Message
    tls: bool
    login: str | None

    @property
    def text(self) -> str:
        payload = self.message.get_payload(decode=True)
        return payload.decode() if isinstance(payload, bytes) else str(payload)


@dataclass
class Inbox:
    """aiosmtpd handler: keeps every message."""

    mails: list[Mail] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        login = session.auth_data.login.decode() if session.authenticated else None
        tls = session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos),
                               message_from_bytes(envelope.original_content or envelope.content),
                               tls, login))
        return "250 OK"


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command is needed to make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


class SmtpServer:
    """An aiosmtpd server on a free port: plain, STARTTLS (+ login), or implicit TLS."""

    def __init__(self, cert: tuple[Path, Path] | None = None, implicit_tls: bool = False,
                 users: dict[str, str] | None = None) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.inbox = Inbox()
        self.port = free_port()
        context = None
        if cert is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(cert[0]), str(cert[1]))
        accounts = users or {}

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                         auth_data: Any) -> Any:
            ok = isinstance(auth_data, LoginPassword) and accounts.get(
                auth_data.login.decode()) == auth_data.password.decode()
            return AuthResult(success=ok, handled=False, auth_data=auth_data)

        kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": self.port}
        if implicit_tls:
            kwargs["ssl_context"] = context
        elif context is not None:
            kwargs["tls_context"] = context
        if users is not None:
            kwargs.update(authenticator=authenticate, auth_required=True,
                          auth_require_tls=True)
        self.controller = Controller(self.inbox, **kwargs)
        self.controller.start()

    @property
    def mails(self) -> list[Mail]:
        return self.inbox.mails

    def url(self, scheme: str = "smtp", userinfo: str = "") -> str:
        return f"{scheme}://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.controller.stop()


def trust(monkeypatch: pytest.MonkeyPatch, cert: Path) -> dict[str, str]:
    """Make this process (and the returned environment, for subprocesses) trust ``cert``."""
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return {"SSL_CERT_FILE": str(cert)}


def no_secret_in(texts: list[str], secrets: list[str]) -> None:
    """Assert that none of ``secrets`` occurs in any of ``texts``."""
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"secret {secret!r} leaked into: {text[:500]!r}"

