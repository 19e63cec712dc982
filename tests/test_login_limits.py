"""Failed-login limits are counted in the local database: every web process sees the same
count, so ten failures spread over several processes still lock the user name."""

from __future__ import annotations

import http.cookiejar
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import engine_for
from web_helpers import PASSWORD, csrf_token, login, make_site

from syncd.models import LoginFailure


def failures(url: str, username: str) -> int:
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(LoginFailure)
                                   .where(LoginFailure.username == username)) or 0)
    finally:
        engine.dispose()


def backdate_failures(url: str, minutes: float) -> None:
    """Make every recorded failure ``minutes`` older (the lock's window passes)."""
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            for row in conn.execute(sa.select(LoginFailure.id, LoginFailure.attempted_at)):
                conn.execute(sa.update(LoginFailure).where(LoginFailure.id == row.id).values(
                    attempted_at=row.attempted_at - timedelta(minutes=minutes)))
    finally:
        engine.dispose()


@pytest.mark.parametrize("local", ["sqlite", "postgres"])
def test_two_app_instances_share_the_failed_login_limit(databases: Any, make_env: Any,
                                                         local: str) -> None:
    site = make_site(databases, make_env, local=local)
    other = site.env.app()  # a second web process on the same local database
    try:
        apps = [site.app, other]
        for i in range(10):  # five failures in each process
            response = login(apps[i % 2].test_client(), "alice", "not the password")
            assert response.status_code == 200
            assert "Wrong user name or password" in response.get_data(as_text=True)
        assert failures(site.env.local_url, "alice") == 10

        for app in apps:  # the eleventh try is refused in either, even with the password
            refused = login(app.test_client(), "alice", PASSWORD)
            assert refused.status_code == 429
            assert "Too many failed logins" in refused.get_data(as_text=True)
        assert failures(site.env.local_url, "alice") == 10  # refusals do not prolong the lock
        assert login(other.test_client(), "vic", PASSWORD).status_code == 303  # others may

        backdate_failures(site.env.local_url, minutes=5)  # five minutes have passed
        assert login(other.test_client(), "alice", PASSWORD).status_code == 303
        assert failures(site.env.local_url, "alice") == 0  # a login clears the count
    finally:
        from syncd import get_state

        get_state(other).dispose()
        site.state.dispose()


def test_failures_older_than_the_window_do_not_count(databases: Any, make_env: Any) -> None:
    site = make_site(databases, make_env)
    try:
        for _ in range(9):
            assert login(site.client(), "alice", "wrong").status_code == 200
        backdate_failures(site.env.local_url, minutes=6)  # these nine are out of the window
        for _ in range(10):  # ten new failures: the tenth is still a normal failure
            assert login(site.client(), "alice", "wrong").status_code == 200
        assert login(site.client(), "alice", PASSWORD).status_code == 429
        assert failures(site.env.local_url, "alice") == 10  # old rows were cleared away
    finally:
        site.state.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Browser:
    """A fresh HTTP client with its own cookies (one login attempt each)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect)

    def login(self, username: str, password: str) -> tuple[int, str]:
        page = self.opener.open(self.base + "/login", timeout=30).read().decode()
        data = urllib.parse.urlencode({"username": username, "password": password,
                                       "csrf_token": csrf_token(page)}).encode()
        try:
            with self.opener.open(self.base + "/login", data=data, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_gunicorn_with_two_workers_refuses_the_eleventh_try(databases: Any,
                                                            make_env: Any) -> None:
    site = make_site(databases, make_env, local="postgres")
    site.state.dispose()
    port = free_port()
    log = site.env.tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
             "syncd.web:create_web_app()"],
            env=site.env.env, cwd=site.env.tmp_path, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                urllib.request.urlopen(base + "/healthz", timeout=5).read()
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        for _ in range(10):
            status, body = Browser(base).login("alice", "not the password")
            assert status == 200 and "Wrong user name or password" in body
        status, body = Browser(base).login("alice", PASSWORD)
        assert status == 429, body
        assert "Too many failed logins" in body
        assert Browser(base).login("vic", PASSWORD)[0] == 303
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
