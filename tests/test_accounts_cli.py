"""``syncd users list|delete|role|passwd`` and ``syncd tokens list|revoke``: names unique, exit 2
for an unknown name, every change in the audit table, shown on the operators' admin page."""

from __future__ import annotations

import os
import pwd
import re
from collections.abc import Iterator
from typing import Any

import pytest
from web_helpers import PASSWORD, Site, login, page_token, site_fixture

ACTOR = f"cli:{pwd.getpwuid(os.geteuid()).pw_name}"


@pytest.fixture
def site(databases: Any, make_env: Any) -> Iterator[Site]:
    yield from site_fixture(databases, make_env)


def _audit(site: Site) -> list[tuple[str, str, str, str | None]]:
    from syncd.web.accounts import recent_audit

    return [(e.actor, e.action, e.target, e.detail) for e in reversed(recent_audit(site.state))]


def test_users_role_delete_and_passwd_with_exit_2_for_unknown_names(site: Site) -> None:
    viewer = site.login("vic")
    assert viewer.get("/admin").status_code == 403

    listed = site.env.syncd("users", "list", check=True).stdout.splitlines()
    assert [line.split()[:2] for line in listed] == [["alice", "operator"], ["vic", "viewer"]]

    promoted = site.env.syncd("users", "role", "vic", "operator", check=True)
    assert 'user "vic" is now operator (was viewer)' in promoted.stdout
    assert viewer.get("/admin").status_code == 200  # the open session has the new role

    unknown = site.env.syncd("users", "role", "victor", "viewer")
    assert unknown.returncode == 2
    assert 'no user "victor" (users: alice, vic)' in unknown.stderr
    assert site.env.syncd("users", "delete", "victor").returncode == 2
    assert site.env.syncd("users", "passwd", "victor", "--password-stdin",
                          input="long enough here\n").returncode == 2
    assert site.env.syncd("users", "role", "vic", "admin").returncode == 2  # not a role

    changed = site.env.syncd("users", "passwd", "vic", "--password-stdin",
                             input="a new password\n", check=True)
    assert 'password of "vic" changed' in changed.stdout
    assert viewer.get("/").status_code == 302  # sessions of the old password end
    assert login(site.client(), "vic", "a new password").status_code == 303

    deleted = site.env.syncd("users", "delete", "vic", check=True)
    assert 'user "vic" deleted' in deleted.stdout
    assert login(site.client(), "vic", "a new password").status_code == 200  # refused
    assert "vic" not in site.env.syncd("users", "list", check=True).stdout

    last = site.env.syncd("users", "role", "alice", "viewer")
    assert last.returncode == 2 and '"alice" is the last operator' in last.stderr
    assert site.env.syncd("users", "delete", "alice").returncode == 2

    assert _audit(site)[-3:] == [  # refused changes leave no entry
        (ACTOR, "user.role", "vic", "viewer -> operator"),
        (ACTOR, "user.passwd", "vic", "password changed"),
        (ACTOR, "user.delete", "vic", "was operator"),
    ]


def test_tokens_are_unique_listed_without_secrets_and_revoked(site: Site) -> None:
    added = site.env.syncd("tokens", "add", "deploy-bot", check=True)
    token = added.stdout.strip().splitlines()[-1]
    again = site.env.syncd("tokens", "add", "deploy-bot")
    assert again.returncode == 2
    assert 'an API token named "deploy-bot" already exists' in again.stderr
    api = site.client()
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/jobs", headers=headers).status_code == 200

    listed = site.env.syncd("tokens", "list", check=True).stdout
    assert "deploy-bot" in listed and "last used 20" in listed
    assert token not in listed and token[6:] not in listed

    unknown = site.env.syncd("tokens", "revoke", "deploy")
    assert unknown.returncode == 2
    assert 'no API token "deploy" (tokens: deploy-bot)' in unknown.stderr
    revoked = site.env.syncd("tokens", "revoke", "deploy-bot", check=True)
    assert 'API token "deploy-bot" revoked' in revoked.stdout
    assert api.get("/api/jobs", headers=headers).status_code == 401
    assert site.env.syncd("tokens", "list", check=True).stdout.strip() == "no API tokens"
    assert site.env.syncd("tokens", "add", "deploy-bot").returncode == 0  # the name is free

    assert [(a, act, t) for a, act, t, _ in _audit(site) if act.startswith("token.")] == [
        (ACTOR, "token.add", "deploy-bot"), (ACTOR, "token.revoke", "deploy-bot"),
        (ACTOR, "token.add", "deploy-bot")]
    assert token not in str(_audit(site))


def test_admin_page_shows_users_tokens_and_the_audit_to_operators(site: Site) -> None:
    site.env.syncd("tokens", "add", "ci", check=True)
    site.env.syncd("users", "role", "vic", "operator", check=True)
    anonymous = site.client().get("/admin")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    client = site.login()
    dashboard = client.get("/").get_data(as_text=True)
    assert 'href="/admin">Admin</a>' in dashboard
    page = client.get("/admin").get_data(as_text=True)
    assert re.search(r'<tr id="user-alice"><td>alice</td><td>operator</td>', page)
    assert re.search(r'<tr id="user-vic"><td>vic</td><td>operator</td>', page)
    assert '<tr id="token-ci"><td>ci</td>' in page
    audit = page[page.index("<h2>Audit</h2>"):]
    assert audit.index("user.role") < audit.index("token.add")  # newest first
    assert f"<td>{ACTOR}</td><td>user.role</td><td>vic</td><td>viewer -&gt; operator</td>" \
        in audit
    assert client.post("/admin", data={"csrf_token": page_token(client)}).status_code == 405


@pytest.mark.parametrize("local", ["sqlite", "postgres", "mysql"])
def test_migration_makes_token_names_unique_keeping_the_newest(databases: Any, make_env: Any,
                                                                local: str) -> None:
    import sqlalchemy as sa

    from syncd.db import make_local_engine, upgrade

    url = databases.make(local)
    env = make_env(url, migrate=False)
    engine = make_local_engine(url)
    try:
        upgrade(engine, "0004")
        with engine.begin() as conn:
            for i in range(3):
                conn.execute(sa.text(
                    "INSERT INTO syncd_api_tokens (name, token_hash, created_at, revoked) "
                    "VALUES (:n, :h, CURRENT_TIMESTAMP, :r)"),
                    {"n": "bot" if i < 2 else "other", "h": f"{i:064d}", "r": False})
        upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT id, name FROM syncd_api_tokens ORDER BY id")).all()
        assert [name for _, name in rows] == [f"bot-{rows[0][0]}", "bot", "other"]
    finally:
        engine.dispose()
    assert env.syncd("tokens", "add", "bot").returncode == 2  # unique from now on


def test_audit_keeps_who_added_a_user(site: Site) -> None:
    site.env.syncd("users", "add", "carol", "--role", "viewer", "--password-stdin",
                   input=PASSWORD + "\n", check=True)
    assert (ACTOR, "user.add", "carol", "role viewer") in _audit(site)
