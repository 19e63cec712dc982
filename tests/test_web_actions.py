"""Operator actions on the pages: Sync now, Full resync (confirmed), pause, resume."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from web_helpers import PASSWORD, Site, held_job_lock, login, make_site, page_token, site_fixture


@pytest.fixture
def site(databases: Any, make_env: Any) -> Iterator[Site]:
    yield from site_fixture(databases, make_env)


def _broker_messages(site: Any) -> list[str]:
    """Bodies of the messages waiting in the embedded (SQLite) broker."""
    url = site.env.env["CELERY_BROKER_URL"].removeprefix("sqla+")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("kombu_message"):
                return []
            return [str(p) for (p,) in conn.exec_driver_sql("SELECT payload FROM kombu_message")]
    finally:
        engine.dispose()


def test_sync_now_queues_a_run_through_the_broker_and_shows_it(site: Any) -> None:
    client = site.login()
    response = client.post("/jobs/orders/sync",
                           data={"csrf_token": page_token(client), "full_refresh": "0"})
    assert response.status_code == 303
    (run,) = site.runs()
    assert response.headers["Location"] == f"/runs/{run.id}"
    assert (run.status, run.trigger, run.started_by, run.full_refresh) == (
        "queued", "manual", "alice", False)
    assert run.task_id
    messages = _broker_messages(site)
    assert len(messages) == 1 and run.task_id in messages[0]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "queued as run" in page and "status-queued" in page and "alice" in page


def test_buttons_are_disabled_and_sync_refused_while_a_run_is_queued(site: Any) -> None:
    # A run someone asked for and no worker started yet: asking again adds nothing.
    from syncd.models import utcnow

    queued = site.add_run(status="queued", trigger="manual", full_refresh=True,
                          started_by="bob", queued_at=utcnow())  # not yet expired
    client = site.login()
    dashboard = client.get("/").get_data(as_text=True)
    assert re.search(r'<button type="submit" class="primary" disabled[^>]*>Sync now', dashboard)
    assert '<span class="button disabled"' in dashboard
    confirm = client.get("/jobs/orders/resync").get_data(as_text=True)
    assert re.search(r'<button type="submit" class="danger" disabled>', confirm)
    for full in ("0", "1"):  # a queued full resync does what a sync would do, and more
        response = client.post("/jobs/orders/sync", data={"csrf_token": page_token(client),
                                                          "full_refresh": full})
        assert response.status_code == 303
        assert response.headers["Location"] == f"/runs/{queued}"
    assert [r.id for r in site.runs()] == [queued]
    assert "already queued as run" in client.get(f"/runs/{queued}").get_data(as_text=True)


def test_sync_while_a_run_is_running_queues_a_run_that_waits_for_it(site: Any) -> None:
    """Who asked is never dropped: the new run waits for the running one (a worker holds
    it queued, "waiting for run #N"; tests/test_worker.py runs it)."""
    running = site.add_run(status="running", finished_at=None)
    client = site.login()
    with held_job_lock(site):  # the running run is alive
        dashboard = client.get("/").get_data(as_text=True)
        assert re.search(r'<button type="submit" class="primary" title="run #\d+ is in '
                         r'progress: a new run waits for it">Sync now', dashboard)
        confirm = client.get("/jobs/orders/resync").get_data(as_text=True)
        assert f"Run <a href=\"/runs/{running}\">#{running}</a> of this job is in progress: " \
            "the full resync waits for it to finish, then starts." in confirm
        assert re.search(r'<button type="submit" class="danger" >Yes, start', confirm)
        response = client.post("/jobs/orders/sync",
                               data={"csrf_token": page_token(client), "full_refresh": "1"})
    assert response.status_code == 303
    first, new = site.runs()
    assert first.id == running
    assert response.headers["Location"] == f"/runs/{new.id}"
    assert (new.status, new.full_refresh, new.started_by) == ("queued", True, "alice")
    page = client.get(f"/runs/{new.id}").get_data(as_text=True)
    assert f"queued as run #{new.id}; it waits for run #{running} to finish, then starts" in page


def test_full_resync_goes_through_a_confirmation_page(site: Any) -> None:
    client = site.login()
    dashboard = client.get("/").get_data(as_text=True)
    assert 'href="/jobs/orders/resync"' in dashboard
    confirm = client.get("/jobs/orders/resync").get_data(as_text=True)
    form = confirm[confirm.index('<form method="post" action="/jobs/orders/sync"'):]
    assert '<input type="hidden" name="full_refresh" value="1">' in form
    assert site.runs() == []  # asking is not doing
    response = client.post("/jobs/orders/sync",
                           data={"csrf_token": page_token(client), "full_refresh": "1"})
    assert response.status_code == 303
    (run,) = site.runs()
    assert run.full_refresh is True and run.trigger == "manual" and run.started_by == "alice"


def test_pause_and_resume_are_recorded_with_the_user(site: Any) -> None:
    client = site.login()
    response = client.post("/jobs/orders/pause",
                           data={"csrf_token": page_token(client), "next": "/"})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    state = site.paused()
    assert state.paused is True and state.changed_by == "alice"
    assert "Resume" in client.get("/").get_data(as_text=True)
    bob = make_bob(site)
    response = bob.post("/jobs/orders/resume", data={"csrf_token": page_token(bob),
                                                     "next": "https://evil.example/"})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    state = site.paused()
    assert state.paused is False and state.changed_by == "bob"
    response = bob.post("/jobs/orders/pause", data={"csrf_token": page_token(bob)})
    assert response.headers["Location"] == "/jobs/orders"


def make_bob(site: Any) -> Any:
    from syncd.web.accounts import create_user

    create_user(site.state, "bob", PASSWORD, "operator")
    client = site.client()
    assert login(client, "bob", PASSWORD).status_code == 303
    return client


def test_sync_with_the_broker_down_says_so(databases: Any, make_env: Any) -> None:
    down = make_site(databases, make_env, CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:1//")
    client = down.login()
    response = client.post("/jobs/orders/sync", data={"csrf_token": page_token(client)})
    assert response.status_code == 303
    assert response.headers["Location"] == "/jobs/orders"
    (run,) = down.runs()
    assert run.status == "failed" and "broker unreachable" in run.error
    page = client.get("/jobs/orders").get_data(as_text=True)
    assert "could not queue the run" in page


def test_cancel_a_queued_and_a_running_run_from_their_pages(site: Any) -> None:
    from syncd.models import utcnow

    queued = site.add_run(status="queued", trigger="manual", started_by="bob",
                          queued_at=utcnow())
    vic = site.login("vic")
    assert "Cancel run" not in vic.get(f"/runs/{queued}").get_data(as_text=True)
    assert vic.post(f"/runs/{queued}/cancel",
                    data={"csrf_token": page_token(vic)}).status_code == 403
    client = site.login()
    page = client.get(f"/runs/{queued}").get_data(as_text=True)
    assert f'<form method="post" action="/runs/{queued}/cancel"' in page
    assert client.post(f"/runs/{queued}/cancel").status_code == 400  # no CSRF token
    assert site.runs()[0].status == "queued"  # ...changed nothing
    response = client.post(f"/runs/{queued}/cancel", data={"csrf_token": page_token(client)})
    assert response.status_code == 303 and response.headers["Location"] == f"/runs/{queued}"
    (run,) = site.runs()
    assert (run.status, run.cancelled_by) == ("cancelled", "alice")
    page = client.get(f"/runs/{queued}").get_data(as_text=True)
    assert f"Run #{queued} of orders cancelled before it started." in page
    assert "Cancel run" not in page and "<dt>Cancelled by</dt><dd>alice" in page

    running = site.add_run(status="running", finished_at=None, queued_at=utcnow())
    with held_job_lock(site):  # its process is alive: it is asked to stop
        response = client.post(f"/runs/{running}/cancel",
                               data={"csrf_token": page_token(client)})
        page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "cancel requested by alice; it stops at the next batch boundary" in page
    assert "cancel requested by alice: stops at the next batch boundary" in page  # activity
    assert "Cancel run" not in page  # asked once
    assert site.runs()[1].status == "running"
    assert client.post("/runs/987654/cancel",
                       data={"csrf_token": page_token(client)}).status_code == 404


def test_history_messages_keep_their_cause(site: Any) -> None:
    cause = "connection refused to crm-db:3306; is the server running and listening"
    long_error = "gave up after 4 attempts: source \"crm\" (" + "x" * 400 + "): " + cause
    site.add_run(status="failed", error=long_error)
    page = site.login().get("/jobs/orders").get_data(as_text=True)
    cell = page[page.index('<td class="message'):]
    cell = cell[cell.index(">") + 1:cell.index("</td>")]
    assert cell.startswith("gave up after 4 attempts: source") and cell.endswith(cause), cell
    assert len(cell) <= 330
