"""Verify from the web app and the JSON API, its run page, the job page's line, the metric,
and scheduled verifies in beat's schedule."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from sample_tables import execute
from web_helpers import Site, page_token, site_fixture

from syncd.verify_tasks import VERIFY_TASK, verify


@pytest.fixture
def site(databases: Any, make_env: Any) -> Iterator[Site]:
    yield from site_fixture(databases, make_env)


@pytest.fixture
def token(site: Site) -> str:
    from syncd.web.accounts import create_token

    return create_token(site.state, "ci")


def _messages(site: Site) -> list[str]:
    url = site.env.env["CELERY_BROKER_URL"].removeprefix("sqla+")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("kombu_message"):
                return []
            return [str(p) for (p,) in conn.exec_driver_sql("SELECT payload FROM kombu_message")]
    finally:
        engine.dispose()


def _synced(site: Site) -> None:
    from syncd.runner import RunRequest, run_job

    run = run_job(site.state, RunRequest(job="orders", trigger="cli"))
    assert run is not None and run.status == "succeeded", run and run.error


def test_verify_and_repair_button_queues_a_verify_run_for_operators_only(site: Site) -> None:
    client = site.login()
    dashboard = client.get("/").get_data(as_text=True)
    assert re.search(r'action="/jobs/orders/verify"[^>]*>\s*<input type="hidden" '
                     r'name="csrf_token"[^>]*>\s*<input type="hidden" name="repair" value="1">',
                     dashboard)
    assert ">Verify and repair</button>" in dashboard
    assert client.post("/jobs/orders/verify", data={"repair": "1"}).status_code == 400
    viewer = site.login("vic")
    assert viewer.post("/jobs/orders/verify", data={"repair": "1", "csrf_token": page_token(
        viewer)}).status_code == 403
    assert site.runs() == [] and _messages(site) == []

    response = client.post("/jobs/orders/verify",
                           data={"repair": "1", "csrf_token": page_token(client)})
    assert response.status_code == 303
    (run,) = site.runs()
    assert response.headers["Location"] == f"/runs/{run.id}"
    assert (run.trigger, run.status, run.started_by) == ("verify", "queued", "alice")
    assert run.to_dict()["verify"] == {"repair": True}
    (message,) = _messages(site)
    assert VERIFY_TASK in message and run.task_id in message


def test_api_verify_takes_a_boolean_repair_and_refuses_anything_else(site: Site,
                                                                     token: str) -> None:
    client = site.client()
    auth = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/jobs/orders/verify", json={"repair": True}).status_code == 401
    for bad in ({"json": {"repair": "yes"}}, {"json": {"repair": 1}}, {"json": [True]},
                {"data": "repair=1", "content_type": "application/x-www-form-urlencoded"},
                {"data": "{not json", "content_type": "application/json"}):
        response = client.post("/api/jobs/orders/verify", headers=auth, **bad)
        assert response.status_code == 400, bad
        assert response.is_json and "repair" in response.get_json()["error"]
    assert client.post("/api/jobs/nope/verify", headers=auth, json={}).status_code == 404
    assert site.runs() == [] and _messages(site) == []

    response = client.post("/api/jobs/orders/verify", headers=auth, json={"repair": True})
    assert response.status_code == 202
    body = response.get_json()
    assert (body["trigger"], body["status"], body["started_by"]) == ("verify", "queued",
                                                                     "token:ci")
    assert body["verify"] == {"repair": True} and body["rows_different"] is None
    assert response.headers["Location"] == f"/api/runs/{body['id']}"
    plain = client.post("/api/jobs/orders/verify", headers=auth)  # no body: report only
    assert plain.status_code == 202 and plain.get_json()["verify"] == {"repair": False}
    assert len(_messages(site)) == 2


def test_queued_verify_runs_on_the_worker_and_shows_on_the_pages_and_metrics(
        site: Site, token: str) -> None:
    _synced(site)
    client = site.login()
    job_page = client.get("/jobs/orders").get_data(as_text=True)
    assert re.search(r'id="last-verified">never<', job_page)
    execute(site.source_url, "UPDATE orders SET note = 'changed' WHERE id IN (3, 7)",
            "DELETE FROM orders WHERE id = 11")

    found = site.client().post("/api/jobs/orders/verify", json={"repair": False},
                               headers={"Authorization": f"Bearer {token}"}).get_json()
    assert verify(run_id=found["id"]) == "failed"
    page = client.get(f"/runs/{found['id']}").get_data(as_text=True)
    assert "Rows different</dt><dd>3 (0 missing locally, 1 extra locally, 2 with different " \
           "values)" in page
    assert re.search(r"<code>id=3</code></td>\s*<td>different</td><td>note</td>", page)
    assert re.search(r"<code>id=11</code></td>\s*<td>extra locally</td>", page)
    job_page = client.get("/jobs/orders").get_data(as_text=True)
    assert re.search(r'id="last-verified"><a href="/runs/\d+">[^<]+</a>: 3 rows differ<', job_page)
    assert _gauge(client) == 3

    repair = client.post("/jobs/orders/verify",
                         data={"repair": "1", "csrf_token": page_token(client)})
    run_id = int(repair.headers["Location"].rsplit("/", 1)[1])
    assert verify(run_id=run_id) == "succeeded"
    assert re.search(r'id="last-verified"><a href="/runs/\d+">[^<]+</a>: 3 rows differed, '
                     r"repaired<", client.get("/jobs/orders").get_data(as_text=True))
    assert "Rows repaired</dt><dd>3</dd>" in client.get(f"/runs/{run_id}").get_data(as_text=True)
    again = site.client().post("/api/jobs/orders/verify", json={"repair": False},
                               headers={"Authorization": f"Bearer {token}"}).get_json()
    assert verify(run_id=again["id"]) == "succeeded"
    assert "identical" in client.get("/jobs/orders").get_data(as_text=True)
    assert _gauge(client) == 0
    from syncd.status import last_successes  # a verify copies nothing: not the last success

    assert last_successes(site.state, ["orders"])["orders"].trigger == "cli"


def _gauge(client: Any) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "syncd_job_rows_different" and sample.labels == {"job": "orders"}:
                return float(sample.value)
    raise AssertionError(f"no syncd_job_rows_different for orders:\n{text}")


def test_verify_schedule_is_a_beat_entry_and_is_validated() -> None:
    from beat_schedule import build_beat_schedule, entry_name, verify_entry_name
    from syncd.engine.errors import ConfigError
    from syncd.jobs import parse_jobs

    def jobs(extra: str) -> Any:
        text = ('[sources.s]\nurl = "sqlite:///x.sqlite"\n\n[[jobs]]\nname = "orders"\n'
                'source = "s"\ntable = "orders"\ncursor = "updated_at"\n' + extra)
        return parse_jobs(tomllib.loads(text), "jobs.toml", {})

    spec = jobs('schedule = "5m"\nverify_schedule = "0 3 * * *"\nverify_repair = true\n'
                'lookback = "auto"\n')
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    schedule = build_beat_schedule(spec, 60, 3600, now=now)
    assert set(schedule) >= {entry_name("orders"), verify_entry_name("orders")}
    entry = schedule[verify_entry_name("orders")]
    assert (entry["task"], entry["kwargs"]) == (VERIFY_TASK, {"job": "orders"})
    assert entry["options"]["expires"] == timedelta(days=1).total_seconds()
    job = spec.job("orders")
    assert job.verify_repair is True and job.lookback_auto is True
    assert job.lookback == timedelta(minutes=1)  # the fallback of "auto"
    assert job.table_sync().lookback_auto is True
    with pytest.raises(ConfigError, match='job "orders": field "verify_schedule"'):
        jobs('verify_schedule = "every day"\n')
    with pytest.raises(ConfigError, match='job "orders": field "verify_repair"'):
        jobs('verify_repair = "yes"\n')


def test_verify_asked_for_while_a_run_is_running_waits_for_it_then_runs(site: Site) -> None:
    """Who asked is never dropped: a verify queued from the page while a run holds the job
    waits ("waiting for run #N") and runs once the job is free."""
    import threading

    from celery_helpers import wait_for
    from web_helpers import held_job_lock

    from syncd.models import SyncRun

    _synced(site)
    running = site.add_run(status="running", finished_at=None)
    client = site.login()
    outcome: list[str | None] = []
    with held_job_lock(site):  # the running run's process is alive and has the job
        response = client.post("/jobs/orders/verify",
                               data={"repair": "1", "csrf_token": page_token(client)})
        assert response.status_code == 303
        run_id = int(response.headers["Location"].rsplit("/", 1)[1])
        assert run_id != running
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        assert f"Verify and repair of orders queued as run #{run_id}; it waits for run " \
               f"#{running} to finish, then starts." in page
        worker = threading.Thread(target=lambda: outcome.append(verify(run_id=run_id)),
                                  daemon=True)
        worker.start()

        def waiting() -> SyncRun | None:
            with site.state.sessions() as session:
                found = session.get(SyncRun, run_id)
            return found if found is not None and found.waiting_for == running else None

        wait_for(waiting, 30, lambda: "the verify does not wait for the running run")
        assert waiting().status == "queued"  # type: ignore[union-attr]
        assert worker.is_alive()
        with site.state.sessions.begin() as session:  # the running run ends, its lock goes
            session.get(SyncRun, running).status = "succeeded"  # type: ignore[union-attr]
    worker.join(60)
    assert outcome == ["succeeded"]
    assert "Rows repaired</dt><dd>0</dd>" in client.get(f"/runs/{run_id}").get_data(as_text=True)
