"""Login, logout, roles, CSRF, cookies and security headers of the admin web app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from web_helpers import PASSWORD, Site, csrf_token, login, make_site, page_token, site_fixture


@pytest.fixture
def site(databases: Any, make_env: Any) -> Iterator[Site]:
    yield from site_fixture(databases, make_env)

PAGES = ["/", "/jobs/orders", "/runs/{run}", "/jobs/orders/resync", "/runs/{run}/progress"]
ACTIONS = ["/jobs/orders/sync", "/jobs/orders/pause", "/jobs/orders/resume"]


def test_anonymous_page_requests_redirect_to_login(site: Any) -> None:
    run = site.add_run()
    client = site.client()
    for path in PAGES:
        response = client.get(path.format(run=run))
        assert response.status_code in (302, 303), path
        location = urlsplit(response.headers["Location"])
        assert location.path == "/login"
        assert parse_qs(location.query)["next"] == [path.format(run=run)]


def test_anonymous_post_redirects_to_login_and_changes_nothing(site: Any) -> None:
    client = site.client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    for path in ACTIONS:
        response = client.post(path, data={"csrf_token": token})
        assert response.status_code in (302, 303)
        assert urlsplit(response.headers["Location"]).path == "/login"
    assert site.runs() == []
    assert site.paused() is None


def test_login_then_next_page(site: Any) -> None:
    client = site.client()
    response = login(client, "alice", PASSWORD, next_url="/jobs/orders?status=failed")
    assert response.status_code == 303
    assert response.headers["Location"] == "/jobs/orders?status=failed"
    assert client.get("/jobs/orders").status_code == 200


def test_wrong_password_or_unknown_user_stays_logged_out(site: Any) -> None:
    for user, password in (("alice", "wrong password"), ("mallory", PASSWORD)):
        client = site.client()
        response = login(client, user, password)
        assert response.status_code == 200
        assert "Wrong user name or password" in response.get_data(as_text=True)
        assert client.get("/").status_code == 302


@pytest.mark.parametrize("target", [
    "https://evil.example", "https://evil.example/jobs", "//evil.example/", "/\\evil.example",
    "http:/evil.example", "javascript:alert(1)", "  https://evil.example",
])
def test_next_to_another_site_is_not_followed(site: Any, target: str) -> None:
    client = site.client()
    response = login(client, "alice", PASSWORD, next_url=target)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    # and a logged-in user visiting /login?next=... is not sent away either
    again = client.get("/login", query_string={"next": target})
    assert again.headers["Location"] == "/"


def test_login_form_needs_csrf_token(site: Any) -> None:
    client = site.client()
    response = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_logout_is_a_post_with_csrf(site: Any) -> None:
    client = site.login()
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400  # no token: still logged in
    assert client.get("/").status_code == 200
    response = client.post("/logout", data={"csrf_token": page_token(client)})
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == "/login"
    assert client.get("/").status_code == 302


def test_every_logged_in_page_has_the_logout_form(site: Any) -> None:
    run = site.add_run()
    client = site.login()
    for path in ["/", "/jobs/orders", f"/runs/{run}", "/jobs/orders/resync", "/jobs/nope",
                 "/runs/999999"]:
        html = client.get(path).get_data(as_text=True)
        form = html[html.index('action="/logout"') - 40:]
        assert 'method="post"' in form[:80], path
        assert 'name="csrf_token"' in form[:400], path


def test_viewer_reads_but_cannot_act(site: Any) -> None:
    run = site.add_run(status="failed", error="boom")
    client = site.login("vic")
    for path in ["/", "/jobs/orders", f"/runs/{run}"]:
        assert client.get(path).status_code == 200
    dashboard = client.get("/").get_data(as_text=True)
    assert "Sync now" not in dashboard
    assert client.get("/jobs/orders/resync").status_code == 403
    token = page_token(client)
    for path in ACTIONS:
        response = client.post(path, data={"csrf_token": token, "full_refresh": "1"})
        assert response.status_code == 403, path
    assert [r.id for r in site.runs()] == [run]
    assert site.paused() is None


def test_post_without_valid_csrf_token_is_refused_and_changes_nothing(site: Any) -> None:
    client = site.login()
    good = page_token(client)
    other = site.login()  # another session's token is not valid here
    foreign = page_token(other)
    for path in ACTIONS:
        for data in ({}, {"csrf_token": ""}, {"csrf_token": "forged"}, {"csrf_token": foreign}):
            response = client.post(path, data={**data, "full_refresh": "1"})
            assert response.status_code == 400, (path, data)
    assert site.runs() == []
    assert site.paused() is None
    # the same session with its own token may act
    response = client.post("/jobs/orders/pause", data={"csrf_token": good})
    assert response.status_code == 303
    assert site.paused().paused is True


def test_session_cookie_is_httponly_and_samesite_not_secure_by_default(site: Any) -> None:
    client = site.client()
    response = login(client, "alice", PASSWORD)
    cookie = _session_cookie(response)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_with_syncd_secure_cookies(databases: Any, make_env: Any) -> None:
    secure = make_site(databases, make_env, SYNCD_SECURE_COOKIES=True)
    client = secure.client()
    response = login(client, "alice", PASSWORD)
    assert "Secure" in _session_cookie(response)


def _session_cookie(response: Any) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, response.headers
    return cookies[-1]


def test_security_headers(site: Any) -> None:
    client = site.login()
    for path in ["/login", "/", "/jobs/orders", "/jobs/nope", "/healthz", "/api/jobs"]:
        headers = client.get(path).headers
        assert "default-src 'self'" in headers["Content-Security-Policy"], path
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "unsafe-inline" not in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"


def test_changing_the_password_ends_open_sessions(site: Any) -> None:
    from syncd.web.accounts import set_password

    client = site.login()
    assert client.get("/").status_code == 200
    set_password(site.state, "alice", "a brand new password")
    assert client.get("/").status_code == 302
    assert login(site.client(), "alice", "a brand new password").status_code == 303


def test_inactive_user_cannot_log_in(site: Any) -> None:
    from sqlalchemy import update

    from syncd.models import User

    with site.state.sessions.begin() as session:
        session.execute(update(User).where(User.username == "vic").values(active=False))
    response = login(site.client(), "vic", PASSWORD)
    assert response.status_code == 200


def test_production_without_secret_key_refuses_to_start(site: Any) -> None:
    from syncd.web import MissingSecretKey, create_web_app

    env = dict(site.env.env, SYNCD_PRODUCTION="1")
    env.pop("SYNCD_SECRET_KEY", None)
    from config import Config

    with pytest.raises(MissingSecretKey, match="SYNCD_SECRET_KEY"):
        create_web_app(Config(environ=env))
    app = create_web_app(Config(environ=dict(env, SYNCD_SECRET_KEY="x" * 40)))
    assert app.config["SECRET_KEY"] == "x" * 40
    # an app built without the check (create_app) serves nothing but the operations endpoints
    from syncd import create_app

    unsafe = create_app(Config(environ=env)).test_client()
    assert unsafe.get("/login").status_code == 503
    assert unsafe.get("/").status_code == 503
    assert unsafe.get("/healthz").status_code == 200


def test_too_many_failed_logins_lock_the_user_name_for_a_while(site: Any) -> None:
    for _ in range(10):
        assert login(site.client(), "alice", "not the password").status_code == 200
    blocked = login(site.client(), "alice", PASSWORD)  # even the right password, for now
    assert blocked.status_code == 429
    assert "Too many failed logins" in blocked.get_data(as_text=True)
    assert login(site.client(), "vic", PASSWORD).status_code == 303  # other users unaffected
    site.app.extensions["syncd_login_throttle"].window = 0.0  # the window has passed
    assert login(site.client(), "alice", PASSWORD).status_code == 303
