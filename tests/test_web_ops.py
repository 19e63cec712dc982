"""Operations endpoints: /healthz, /readyz, /metrics; and the web users' command line."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from web_helpers import PASSWORD, Site, held_job_lock, login, make_site, site_fixture


@pytest.fixture
def site(databases: Any, make_env: Any) -> Iterator[Site]:
    yield from site_fixture(databases, make_env)

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def test_healthz_needs_no_login(site: Any) -> None:
    response = site.client().get("/healthz")
    assert response.status_code == 200 and response.get_data(as_text=True).strip() == "ok"


def test_readyz_ok_then_503_when_the_local_database_is_unreachable(site: Any) -> None:
    assert site.client().get("/readyz").status_code == 200
    app = site.env.app(SYNCD_DATABASE_URL="postgresql+psycopg2://nobody@127.0.0.1:1/nothing")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert "unreachable" in response.get_data(as_text=True)
    assert "nobody" not in response.get_data(as_text=True)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@pytest.mark.parametrize("local", ["sqlite", "postgres", "mysql"])
def test_metrics_from_the_run_history(databases: Any, make_env: Any, local: str) -> None:
    from syncd.models import utcnow

    made = make_site(databases, make_env, local=local)
    done = utcnow() - timedelta(seconds=30)
    made.add_run(status="succeeded", rows_read=10, rows_updated=10, queued_at=T0,
                 started_at=T0, finished_at=T0 + timedelta(seconds=90))
    made.add_run(status="failed", error="boom", queued_at=T0, started_at=T0,
                 finished_at=T0 + timedelta(seconds=4000))
    made.add_run(status="succeeded", rows_read=100, rows_inserted=60, rows_updated=40,
                 started_at=done - timedelta(seconds=2), finished_at=done, queued_at=done)
    made.add_run(status="running", finished_at=None, rows_read=7)
    made.add_run(job="customers", status="skipped", queued_at=T0, started_at=None,
                 finished_at=T0)
    with held_job_lock(made, "orders"):  # the running run is alive: housekeeping leaves it
        response = made.client().get("/metrics")  # no login
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    s = _samples(text)
    job = (("job", "orders"),)
    assert s[("syncd_runs_total", (("job", "orders"), ("status", "succeeded")))] == 2
    assert s[("syncd_runs_total", (("job", "orders"), ("status", "failed")))] == 1
    assert s[("syncd_runs_total", (("job", "customers"), ("status", "skipped")))] == 1
    assert s[("syncd_runs_active", (("job", "orders"), ("status", "running")))] == 1
    assert s[("syncd_rows_total", (("job", "orders"), ("kind", "read")))] == 117
    assert s[("syncd_rows_total", (("job", "orders"), ("kind", "updated")))] == 50
    assert s[("syncd_rows_total", (("job", "orders"), ("kind", "inserted")))] == 60
    assert 29 <= s[("syncd_job_seconds_since_last_success", job)] < 120
    assert s[("syncd_job_last_success_timestamp_seconds", job)] == pytest.approx(
        done.timestamp(), abs=1)
    assert s[("syncd_job_paused", job)] == 0
    # durations 2s, 90s, 4000s (the skipped run never started)
    assert s[("syncd_run_duration_seconds_count", job)] == 3
    assert s[("syncd_run_duration_seconds_sum", job)] == pytest.approx(4092, abs=0.01)
    assert s[("syncd_run_duration_seconds_bucket", (("job", "orders"), ("le", "5.0")))] == 1
    assert s[("syncd_run_duration_seconds_bucket", (("job", "orders"), ("le", "120.0")))] == 2
    assert s[("syncd_run_duration_seconds_bucket", (("job", "orders"), ("le", "3600.0")))] == 2
    assert s[("syncd_run_duration_seconds_bucket", (("job", "orders"), ("le", "+Inf")))] == 3
    assert "boom" not in text and made.source_url not in text
    made.state.dispose()


def test_users_add_from_stdin_then_log_in(site: Any) -> None:
    proc = site.env.syncd("users", "add", "carol", "--role", "viewer", "--password-stdin",
                          input="a long enough secret\n", check=True)
    assert 'user "carol" created (viewer)' in proc.stdout
    assert login(site.client(), "carol", "a long enough secret").status_code == 303
    again = site.env.syncd("users", "add", "carol", "--role", "viewer", "--password-stdin",
                           input="a long enough secret\n")
    assert again.returncode == 2 and "already exists" in again.stderr
    short = site.env.syncd("users", "add", "dave", "--role", "operator", "--password-stdin",
                           input="short\n")
    assert short.returncode == 2 and "at least 8" in short.stderr
    role = site.env.syncd("users", "add", "erin", "--role", "admin", "--password-stdin",
                          input="a long enough secret\n")
    assert role.returncode == 2
    asked = site.env.syncd("users", "add", "fred", "--role", "operator",
                           input="typed twice here\ntyped twice here\n", check=True)
    assert 'user "fred" created (operator)' in asked.stdout
    assert login(site.client(), "fred", "typed twice here").status_code == 303
    listed = site.env.syncd("users", "list", check=True).stdout
    assert "fred" in listed and "operator" in listed and "vic" in listed


def test_password_is_stored_hashed(site: Any) -> None:
    from sqlalchemy import select

    from syncd.models import User

    with site.state.sessions() as session:
        user = session.scalar(select(User).where(User.username == "alice"))
    assert PASSWORD not in user.password_hash and user.password_hash.startswith("scrypt:")


def test_ensure_admin_creates_one_operator_once(databases: Any, make_env: Any) -> None:
    from syncd import get_state
    from syncd.web.accounts import ensure_admin

    env = make_env(databases.sqlite())
    app = env.app()
    password = ensure_admin(get_state(app))
    assert password and len(password) >= 12
    assert ensure_admin(get_state(app)) is None
    client = app.test_client()
    assert login(client, "admin", password).status_code == 303
    token = client.get("/").get_data(as_text=True)
    assert "Log out" in token and "(operator)" in token


def test_metrics_totals_kept_between_scrapes_match_a_fresh_count(site: Any) -> None:
    from sqlalchemy import update

    from syncd.models import SyncRun

    client = site.client()

    def scraped(c: Any) -> dict[Any, float]:
        return {k: v for k, v in _samples(c.get("/metrics").get_data(as_text=True)).items()
                if not k[0].startswith("syncd_job_")}

    site.add_run(status="succeeded", rows_read=5)
    running = site.add_run(status="running", finished_at=None, rows_read=1)
    site.add_run(status="failed", rows_read=2)
    with held_job_lock(site, "orders"):  # the running run is alive: housekeeping leaves it
        for _ in range(3):
            scraped(client)  # settles what it can
    with site.state.sessions.begin() as session:
        session.execute(update(SyncRun).where(SyncRun.id == running).values(
            status="succeeded", finished_at=T0 + timedelta(seconds=30), rows_read=40))
    site.add_run(status="skipped", rows_read=0)
    kept = scraped(client)
    fresh = scraped(site.env.app().test_client())
    assert kept == fresh
    assert kept[("syncd_runs_total", (("job", "orders"), ("status", "succeeded")))] == 2
    assert kept[("syncd_rows_total", (("job", "orders"), ("kind", "read")))] == 47
