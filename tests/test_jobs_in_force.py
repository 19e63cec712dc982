"""A jobs file that does not validate never stops good jobs: the last file that validated
stays in force (kept in the local database with its hash and load time) for beat, worker,
web and CLI alike, and the rejection is shown where it matters. The example is the typo
``shedule = "15s"`` in one job of two."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from celery_helpers import job_block, running_services, runs, sqlite_source_jobs, wait_for
from sample_tables import create_orders, table_rows
from web_helpers import PASSWORD, make_site, page_token
from web_helpers import jobs_file as web_jobs_file

FIELD_ERROR = 'job "customers": field "shedule": unknown field (did you mean "schedule"?)'


def good_jobs(source: str, schedule: str = "2s") -> str:
    """Two jobs: "orders" on a schedule, "customers" by hand."""
    return sqlite_source_jobs(
        source, job_block("orders", schedule=schedule),
        job_block("customers", target="customers_copy"))


def typo_jobs(source: str, schedule: str = "2s") -> str:
    """The same file after an edit: "customers" was to get a schedule, spelt ``shedule``."""
    return sqlite_source_jobs(
        source, job_block("orders", schedule=schedule),
        job_block("customers", target="customers_copy", shedule="15s"))


@pytest.fixture
def services():  # type: ignore[no-untyped-def]
    yield from running_services()


def _jobs_files(state: Any) -> list[Any]:
    from sqlalchemy import select

    from syncd.models import JobsFileVersion

    with state.sessions() as session:
        return list(session.scalars(select(JobsFileVersion).order_by(JobsFileVersion.id)))


@pytest.mark.parametrize("local", ["sqlite", "postgres", "mysql"])
def test_the_last_good_file_is_kept_with_its_hash_and_stays_in_force(databases, make_env, local):
    from syncd.engine.errors import ConfigError

    source = databases.sqlite("source")
    env = make_env(databases.make(local), good_jobs(source))
    state = _state(env)
    try:
        assert sorted(state.jobs().jobs) == ["customers", "orders"]
        [version] = _jobs_files(state)
        assert version.text == good_jobs(source)
        assert version.sha256 == hashlib.sha256(good_jobs(source).encode()).hexdigest()
        assert version.path == str(env.jobs_file)

        env.write_jobs(typo_jobs(source))
        force = state.jobs_in_force()
        assert sorted(force.require().jobs) == ["customers", "orders"]  # the last good file
        assert force.rejected == f"{env.jobs_file}: {FIELD_ERROR}"
        assert force.rejection() == {"file": str(env.jobs_file), "job": "customers",
                                     "field": "shedule",
                                     "problem": 'unknown field (did you mean "schedule"?)'}
        assert force.good is not None and force.good.sha256 == version.sha256
        assert force.good.loaded_at == version.loaded_at
        assert f"the last good jobs file stays in force: {env.jobs_file}" in force.explanation()
        assert len(_jobs_files(state)) == 1  # a rejected file is never recorded

        fixed = good_jobs(source).replace('"2s"', '"3s"')
        env.write_jobs(fixed)
        assert state.jobs().jobs["orders"].schedule.text == "3s"
        assert [v.text for v in _jobs_files(state)] == [good_jobs(source), fixed]
    finally:
        state.dispose()

    fresh = make_env(databases.make(local), typo_jobs(source))  # nothing ever validated here
    state = _state(fresh)
    try:
        force = state.jobs_in_force()
        assert force.jobs is None and FIELD_ERROR in force.rejected
        assert force.explanation() == ("no jobs file has validated yet, so no job runs until "
                                       "it is fixed")
        with pytest.raises(ConfigError, match="shedule"):
            state.jobs()
    finally:
        state.dispose()


def _state(env: Any) -> Any:
    from syncd import get_state

    return get_state(env.app())


def test_beat_and_worker_keep_running_the_last_good_jobs(databases, make_env, services):
    source = databases.sqlite("source")
    create_orders(source, 50)
    env = make_env(databases.sqlite("local"), good_jobs(source))
    assert env.syncd("jobs", check=True).returncode == 0  # the file validates: it is in force
    env.write_jobs(typo_jobs(source))

    services.worker(env)
    beat = services.beat(env)  # started with the broken file on disk

    beat.wait_for_log("jobs file rejected")
    assert FIELD_ERROR in beat.log
    assert "the last good jobs file stays in force" in beat.log
    assert "1 job(s) scheduled" in beat.log  # orders, from the last good file
    scheduled = wait_for(
        lambda: [r for r in runs(env.local_url, "orders")
                 if r["trigger"] == "schedule" and r["status"] == "succeeded"], 30,
        lambda: f"no scheduled run on the last good file: {runs(env.local_url)}\n{beat.log}")
    assert scheduled
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")

    # A run asked for by hand is carried out by the worker on the last good definition too.
    trigger = env.syncd("trigger", "customers")
    assert trigger.returncode == 0, trigger.stderr
    assert FIELD_ERROR in trigger.stderr and "stays in force" in trigger.stderr
    run_id = int(trigger.stdout.strip().splitlines()[-1])
    done = wait_for(lambda: [r for r in runs(env.local_url, "customers")
                             if r["id"] == run_id and r["status"] == "succeeded"], 30,
                    lambda: f"the triggered run did not succeed: {runs(env.local_url)}")
    assert done[0]["rows_read"] == 50
    assert table_rows(env.local_url, "customers_copy") == table_rows(source, "orders")


def test_with_no_good_file_ever_nothing_runs_and_the_worker_says_why(databases, make_env,
                                                                      services):
    from syncd.tasks import SYNC_TASK

    source = databases.sqlite("source")
    create_orders(source, 5)
    env = make_env(databases.sqlite("local"), typo_jobs(source))
    worker = services.worker(env)
    app = env.app()
    app.extensions["celery"].send_task(SYNC_TASK, kwargs={"job": "orders"})  # a beat tick
    worker.wait_for_log("scheduled run not started")
    assert FIELD_ERROR in worker.log
    assert runs(env.local_url) == []


def test_cli_shows_the_rejection_and_works_on_the_last_good_file(databases, make_env):
    source = databases.sqlite("source")
    create_orders(source, 30)
    env = make_env(databases.sqlite("local"), good_jobs(source, schedule="5m"))
    assert env.syncd("check").returncode == 0
    env.write_jobs(typo_jobs(source, schedule="5m"))

    check = env.syncd("check")
    assert check.returncode == 2
    assert f"error: {env.jobs_file}: {FIELD_ERROR}" in check.stderr
    assert f"the last good jobs file stays in force: {env.jobs_file} (loaded " in check.stderr

    listed = env.syncd("jobs")
    assert listed.returncode == 0, listed.stderr
    assert f"warning: jobs file rejected: {env.jobs_file}: {FIELD_ERROR}" in listed.stderr
    assert "stays in force" in listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["customers", "orders"]
    as_json = json.loads(env.syncd("jobs", "--json", check=True).stdout)  # stdout: JSON alone
    assert [j["name"] for j in as_json] == ["customers", "orders"]

    ran = env.syncd("run", "orders")
    assert ran.returncode == 0, ran.stderr
    assert "succeeded" in ran.stdout.splitlines()[-1]
    assert FIELD_ERROR in ran.stderr
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")

    fresh = make_env(databases.sqlite("other"), typo_jobs(source))
    nothing = fresh.syncd("jobs")
    assert nothing.returncode == 2
    assert FIELD_ERROR in nothing.stderr
    assert "no jobs file has validated yet, so no job runs until it is fixed" in nothing.stderr


def _metric(client: Any, name: str) -> list[str]:
    text = client.get("/metrics").get_data(as_text=True)
    return [line for line in text.splitlines() if line.startswith(name)]


def test_dashboard_banner_names_file_job_and_field_and_jobs_stay_usable(databases, make_env):
    site = make_site(databases, make_env, extra_jobs=(
        '[[jobs]]\nname = "customers"\nsource = "src"\ntable = "orders"\n'
        'target = "customers_copy"\ncursor = "updated_at"\n',))
    try:
        client = site.login()
        assert "jobs-file-banner" not in client.get("/").get_data(as_text=True)
        assert _metric(client, "syncd_jobs_file_valid ") == ["syncd_jobs_file_valid 1.0"]
        site.env.write_jobs(web_jobs_file(site.source_url) + (
            '[[jobs]]\nname = "customers"\nsource = "src"\ntable = "orders"\n'
            'target = "customers_copy"\ncursor = "updated_at"\nshedule = "15s"\n'))

        page = client.get("/").get_data(as_text=True)
        banner = page[page.index('id="jobs-file-banner"'):page.index("</section>")]
        assert "does not validate and was rejected as a whole" in banner
        assert "The last good jobs file stays in force" in banner
        assert f"<dt>File</dt><dd><code>{site.env.jobs_file}</code></dd>" in banner
        assert "<dt>Job</dt><dd>customers</dd>" in banner
        assert "<dt>Field</dt><dd><code>shedule</code></dd>" in banner
        assert "did you mean &#34;schedule&#34;?" in banner or 'did you mean "schedule"?' in banner
        assert 'id="job-orders"' in page and 'id="job-customers"' in page  # the normal dashboard
        assert page.index('id="jobs-file-banner"') < page.index('id="job-orders"')

        job_page = client.get("/jobs/customers").get_data(as_text=True)
        assert "no longer in the jobs file" not in job_page
        assert "customers_copy" in job_page and "jobs-file-banner" in job_page

        assert _metric(client, "syncd_jobs_file_valid ") == ["syncd_jobs_file_valid 0.0"]
        assert any('job="orders"' in line for line in _metric(client, "syncd_job_info"))

        sync = client.post("/jobs/customers/sync", data={"csrf_token": page_token(client)})
        assert sync.status_code == 303 and "/runs/" in sync.headers["Location"]
        assert [r.status for r in site.runs("customers")] == ["queued"]  # no worker here
    finally:
        site.state.dispose()


def test_with_no_good_file_ever_the_banner_says_nothing_runs(databases, make_env):
    site = make_site(databases, make_env)
    try:
        site.env.write_jobs(web_jobs_file(site.source_url).replace("schedule", "shedule"))
        client = site.login("vic", PASSWORD)
        page = client.get("/").get_data(as_text=True)
        assert "No jobs file has validated yet, so no job runs until it is fixed." in page
        assert "<dt>Job</dt><dd>orders</dd>" in page
        assert 'id="job-orders"' not in page
        assert _metric(client, "syncd_jobs_file_valid ") == ["syncd_jobs_file_valid 0.0"]
    finally:
        site.state.dispose()
