"""The JSON API: bearer tokens, jobs, runs (DESIGN section 5), queueing a sync."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from web_helpers import Site, held_job_lock, site_fixture


@pytest.fixture
def site(databases: Any, make_env: Any) -> Iterator[Site]:
    yield from site_fixture(databases, make_env)

RUN_KEYS = {"id", "job", "trigger", "status", "full_refresh", "queued_at", "started_at",
            "finished_at", "duration_s", "rows_read", "rows_inserted", "rows_updated",
            "rows_deleted", "cursor_before", "cursor_after", "error", "warnings"}


@pytest.fixture
def token(site: Any) -> str:
    from syncd.web.accounts import create_token

    return create_token(site.state, "ci")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/jobs"), ("GET", "/api/runs"), ("GET", "/api/runs/1"),
    ("POST", "/api/jobs/orders/sync"), ("POST", "/api/runs/1/cancel"),
])
def test_401_without_a_valid_token_never_a_redirect(site: Any, token: str, method: str,
                                                    path: str) -> None:
    client = site.client()
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {token}"},
                    {"Authorization": "Bearer "}):
        response = client.open(path, method=method, headers=headers)
        assert response.status_code == 401, headers
        assert "Location" not in response.headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.is_json and "token" in response.get_json()["error"]
    logged_in = site.login()  # a browser session is no API token either
    assert logged_in.open(path, method=method).status_code == 401
    assert site.runs() == []


def test_revoked_token_is_refused(site: Any, token: str) -> None:
    from sqlalchemy import update

    from syncd.models import ApiToken

    client = site.client()
    assert client.get("/api/jobs", headers=_auth(token)).status_code == 200
    with site.state.sessions.begin() as session:
        session.execute(update(ApiToken).values(revoked=True))
    assert client.get("/api/jobs", headers=_auth(token)).status_code == 401


def test_token_is_stored_as_its_sha256_only(site: Any, token: str) -> None:
    from sqlalchemy import select

    from syncd.models import ApiToken

    with site.state.sessions() as session:
        (row,) = session.scalars(select(ApiToken))
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (row.name, row.token_hash)


def test_jobs(site: Any, token: str) -> None:
    run = site.add_run(status="succeeded")
    data = site.client().get("/api/jobs", headers=_auth(token)).get_json()
    (job,) = data
    assert job["name"] == "orders" and job["mode"] == "incremental"
    assert job["schedule"] == "5m" and job["paused"] is False
    assert job["last_run"]["id"] == run and set(job["last_run"]) >= RUN_KEYS


def test_runs_with_filters_and_limit(site: Any, token: str) -> None:
    ok = [site.add_run(status="succeeded") for _ in range(3)]
    bad = site.add_run(status="failed", error="boom")
    other = site.add_run(job="customers", status="succeeded")
    client = site.client()

    def ids(**query: Any) -> list[int]:
        response = client.get("/api/runs", query_string=query, headers=_auth(token))
        assert response.status_code == 200, response.get_data(as_text=True)
        return [r["id"] for r in response.get_json()]

    assert ids() == [other, bad, *ok[::-1]]
    assert ids(job="orders") == [bad, *ok[::-1]]
    assert ids(job="orders", status="succeeded") == ok[::-1]
    assert ids(job="orders", limit=2) == [bad, ok[2]]
    assert ids(job="orders", before=ok[2]) == [ok[1], ok[0]]
    assert ids(job="nope") == []
    for bad_query in ({"status": "bogus"}, {"limit": "0"}, {"limit": "x"}):
        assert client.get("/api/runs", query_string=bad_query,
                          headers=_auth(token)).status_code == 400


def test_one_run_has_the_design_keys(site: Any, token: str) -> None:
    run = site.add_run(status="failed", error="<script>x</script>", rows_read=5)
    client = site.client()
    data = client.get(f"/api/runs/{run}", headers=_auth(token)).get_json()
    assert set(data) >= RUN_KEYS
    assert data["id"] == run and data["status"] == "failed" and data["rows_read"] == 5
    assert data["error"] == "<script>x</script>"  # JSON is data, not markup
    assert data["queued_at"].endswith("Z") and data["duration_s"] == 4.0
    missing = client.get("/api/runs/987654", headers=_auth(token))
    assert missing.status_code == 404 and missing.is_json


def test_post_sync_queues_a_run_without_csrf(site: Any, token: str) -> None:
    client = site.client()
    response = client.post("/api/jobs/orders/sync", json={"full_refresh": True},
                           headers=_auth(token))
    assert response.status_code == 202, response.get_data(as_text=True)
    data = response.get_json()
    assert data["status"] == "queued" and data["trigger"] == "api" and data["full_refresh"]
    assert response.headers["Location"] == f"/api/runs/{data['id']}"
    (run,) = site.runs()
    assert run.id == data["id"] and run.started_by == "token:ci"
    plain = client.post("/api/jobs/orders/sync", headers=_auth(token))
    assert plain.status_code == 202 and plain.get_json()["full_refresh"] is False
    unknown = client.post("/api/jobs/nope/sync", headers=_auth(token))
    assert unknown.status_code == 404 and unknown.is_json
    assert len(site.runs()) == 2


def test_tokens_add_prints_the_token_alone_on_the_last_line(site: Any) -> None:
    proc = site.env.syncd("tokens", "add", "deploy-bot", check=True)
    token = proc.stdout.strip().splitlines()[-1]
    assert token.startswith("syncd_") and " " not in token
    response = site.client().get("/api/runs", headers=_auth(token))
    assert response.status_code == 200


@pytest.mark.parametrize("body,content_type,words", [
    ('{"full_refresh": "false"}', "application/json", 'full_refresh must be true or false'),
    ('{"full_refresh": 1}', "application/json", "full_refresh must be true or false"),
    ('{"full_refresh": null}', "application/json", "full_refresh must be true or false"),
    ('{"full_refresh": tru}', "application/json", "the body must be JSON"),
    ("full_refresh=1", "application/x-www-form-urlencoded", "the body must be JSON"),
    ('"full_refresh"', "application/json", "the body must be a JSON object"),
    ('[true]', "application/json", "the body must be a JSON object"),
    ('{"fullrefresh": true}', "application/json", 'unknown field(s) "fullrefresh"'),
    ('{"full_refresh": false}', "text/plain", None),  # JSON, whatever its label says
])
def test_post_sync_body_must_be_json_booleans_else_400_and_nothing_queued(
        site: Any, token: str, body: str, content_type: str, words: str | None) -> None:
    response = site.client().post("/api/jobs/orders/sync", data=body,
                                  content_type=content_type, headers=_auth(token))
    if words is None:
        assert response.status_code == 202
        assert response.get_json()["full_refresh"] is False
        return
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.is_json and words in response.get_json()["error"], response.get_json()
    assert site.runs() == []  # nothing queued, no full resync started


def test_post_cancel_cancels_a_queued_run_and_says_so_for_others(site: Any, token: str) -> None:
    from syncd.models import utcnow

    client = site.client()
    queued = site.add_run(status="queued", trigger="manual", queued_at=utcnow())
    response = client.post(f"/api/runs/{queued}/cancel", headers=_auth(token))
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()
    assert (data["status"], data["cancelled_by"], data["cancel"]) == (
        "cancelled", "token:ci", "cancelled")
    assert data["finished_at"] and data["error"] == "cancelled by token:ci before it started"

    running = site.add_run(status="running", finished_at=None, queued_at=utcnow())
    with held_job_lock(site):  # its process is alive: it is asked to stop
        data = client.post(f"/api/runs/{running}/cancel", headers=_auth(token)).get_json()
    assert (data["status"], data["cancelled_by"], data["cancel"]) == (
        "running", "token:ci", "requested")
    assert data["cancel_requested_at"] and data["activity"] == (
        "cancel requested by token:ci: stops at the next batch boundary")

    done = site.add_run(status="succeeded")
    data = client.post(f"/api/runs/{done}/cancel", headers=_auth(token)).get_json()
    assert (data["status"], data["cancel"], data["cancelled_by"]) == (
        "succeeded", "finished", None)
    missing = client.post("/api/runs/987654/cancel", headers=_auth(token))
    assert missing.status_code == 404 and missing.is_json
    bad = client.post(f"/api/runs/{done}/cancel", data="x", headers=_auth(token))
    assert bad.status_code == 400
