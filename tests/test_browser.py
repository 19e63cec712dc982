"""End to end in a real browser: Debian's headless Chromium driven by Playwright.

A gunicorn-served web app, a real Celery worker and the embedded SQLite broker:
log in, press "Sync now", watch the run reach ``succeeded`` on the run page,
find it in the job's history; the dashboard's screenshot is saved under
``test-artifacts/``. Without /usr/bin/chromium the test is skipped locally and
fails under CI=true (``.ci/run`` installs the Debian package).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery_helpers import Service, running_services
from conftest import PROJECT_DIR, rows_of
from sample_tables import create_orders
from web_helpers import PASSWORD, jobs_file

CHROMIUM = os.environ.get("SYNCD_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = PROJECT_DIR / "test-artifacts"
ROWS = 500

pytestmark = pytest.mark.slow


@pytest.fixture
def chromium() -> str:
    """The browser's path; skip locally, fail under CI=true when it is missing."""
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return CHROMIUM
    message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def services() -> Iterator[Any]:
    yield from running_services()


@pytest.fixture
def web(databases: Any, make_env: Any, services: Any) -> Iterator[dict[str, Any]]:
    """A syncd install with the job "orders", its worker, and the web app under gunicorn."""
    from syncd import get_state
    from syncd.web.accounts import create_user

    source_url = databases.sqlite("source")
    create_orders(source_url, ROWS)
    local_url = databases.sqlite("local")
    env = make_env(local_url, jobs_file(source_url).replace('schedule = "5m"\n', ""))
    app = env.app()
    create_user(get_state(app), "alice", PASSWORD, "operator")
    get_state(app).dispose()
    services.worker(env, 1)
    port = _free_port()
    server = Service("web", [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                             "--workers", "2", "--no-control-socket",
                             "syncd.web:create_web_app()"],
                     env.env, env.tmp_path)
    services.started.append(server)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if server.proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the web app did not start:\n{server.log[-4000:]}")
        time.sleep(0.2)
    yield {"base": base, "local_url": local_url, "env": env}


def test_log_in_sync_now_and_watch_the_run_succeed(chromium: str, web: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base = web["base"]
    problems: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 800})
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("response", lambda r: r.status >= 400 and problems.append(
                f"{r.status} {r.url}"))

            page.goto(f"{base}/jobs/orders")
            assert urlpath(page.url) == "/login"
            page.fill("#username", "alice")
            page.fill("#password", PASSWORD)
            page.click("button:has-text('Log in')")
            page.wait_for_url(re.compile(r"/jobs/orders$"))
            page.goto(f"{base}/")

            row = page.locator("#job-orders")
            expect(row).to_contain_text("never run")
            row.get_by_role("button", name="Sync now").click()
            page.wait_for_url(re.compile(r"/runs/\d+$"))
            run_id = int(urlpath(page.url).rsplit("/", 1)[1])
            expect(page.locator(".flash")).to_contain_text(f"queued as run #{run_id}")
            # run.js polls the run's JSON and reloads the page when the run ends
            expect(page.locator("#run-status")).to_have_text("succeeded", timeout=90_000)
            facts = page.locator("dl.facts")
            expect(facts).to_contain_text("alice")
            expect(facts).to_contain_text(f"{ROWS:,}")
            page.screenshot(path=str(ARTIFACTS / "run.png"), full_page=True)

            page.click("h1 a:has-text('orders')")
            history_row = page.locator(f"#run-{run_id}")
            expect(history_row).to_contain_text("succeeded")
            expect(history_row).to_contain_text("manual")
            expect(history_row).to_contain_text("alice")
            expect(page.locator("figure.chart rect")).to_have_count(2)
            page.screenshot(path=str(ARTIFACTS / "job.png"), full_page=True)

            page.goto(f"{base}/")
            expect(page.locator("#job-orders .badge.status-succeeded")).to_be_visible()
            expect(page.locator("#job-orders .badge.fresh-manual")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        finally:
            browser.close()
    assert not problems, problems  # no script errors, no Content-Security-Policy violations
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
    assert len(rows_of(web["local_url"], "orders")) == ROWS


@pytest.fixture
def gated_web(databases: Any, make_env: Any, services: Any) -> Iterator[dict[str, Any]]:
    """Like ``web``, with a MySQL source whose reads the test can hold (SourceGate) and a
    worker with two processes: a run held mid-load and a run waiting for it."""
    from blocking import SourceGate

    from syncd import get_state
    from syncd.web.accounts import create_user

    source_url = databases.mysql()
    create_orders(source_url, 2_000)
    gate = SourceGate(source_url, at=1_001)
    local_url = databases.postgres()
    jobs = jobs_file(source_url).replace('schedule = "5m"\n', "").replace(
        'table = "orders"\n', 'table = "orders_gated"\ntarget = "orders"\nprimary_key = ["id"]\n'
        "batch_size = 100\n")
    env = make_env(local_url, jobs)
    app = env.app()
    create_user(get_state(app), "alice", PASSWORD, "operator")
    get_state(app).dispose()
    services.worker(env, 2)
    yield {"base": _serve(env, services), "local_url": local_url, "gate": gate,
           "source_url": source_url}


def _serve(env: Any, services: Any) -> str:
    port = _free_port()
    server = Service("web", [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                             "--workers", "2", "--no-control-socket",
                             "syncd.web:create_web_app()"], env.env, env.tmp_path)
    services.started.append(server)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return base
        except OSError:
            pass
        if server.proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the web app did not start:\n{server.log[-4000:]}")
        time.sleep(0.2)


def test_live_details_a_run_that_waits_and_cancel(chromium: str, gated_web: dict[str, Any],
                                                  ) -> None:
    """The details table follows the live progress; a full resync asked for during a run
    waits for it; Cancel stops the waiting run at once and the running one at a batch
    boundary."""
    from playwright.sync_api import expect, sync_playwright

    base, gate = gated_web["base"], gated_web["gate"]
    problems: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    with gate, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{base}/login")
            page.fill("#username", "alice")
            page.fill("#password", PASSWORD)
            page.click("button:has-text('Log in')")
            page.wait_for_url(re.compile(r"/$"))

            page.locator("#job-orders").get_by_role("button", name="Sync now").click()
            page.wait_for_url(re.compile(r"/runs/\d+$"))
            first = int(urlpath(page.url).rsplit("/", 1)[1])
            gate.wait_until_reached()  # the run holds the job, its first batches committed
            expect(page.locator("#run-status")).to_have_text("running", timeout=30_000)
            live = page.locator("#live [data-field=rows_read]")
            expect(live).not_to_have_text("0", timeout=30_000)
            facts = page.locator("#run-facts [data-field=rows_read]")
            expect(facts).to_have_text(live.inner_text())  # the details table follows
            expect(page.locator("#run-facts")).to_contain_text("of 2,000")

            page.goto(f"{base}/jobs/orders/resync")
            expect(page.locator(".flash-info")).to_contain_text(
                f"Run #{first} of this job is in progress: the full resync waits for it")
            page.click("button:has-text('Yes, start a full resync')")
            page.wait_for_url(re.compile(r"/runs/\d+$"))
            second = int(urlpath(page.url).rsplit("/", 1)[1])
            expect(page.locator(".flash")).to_contain_text(
                f"queued as run #{second}; it waits for run #{first} to finish, then starts")
            expect(page.locator("#run-activity")).to_have_text(
                f"waiting for run #{first} to finish", timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "run-waiting.png"), full_page=True)
            page.click("button:has-text('Cancel run')")
            expect(page.locator(".flash")).to_contain_text(
                f"Run #{second} of orders cancelled before it started.")
            expect(page.locator("#run-status")).to_have_text("cancelled")
            expect(page.locator("#run-facts")).to_contain_text("Cancelled by")

            page.goto(f"{base}/runs/{first}")
            page.click("button:has-text('Cancel run')")
            expect(page.locator("#run-activity")).to_have_text(
                "cancel requested by alice: stops at the next batch boundary")
            gate.open()  # the run commits its next batch and stops there
            expect(page.locator("#run-status")).to_have_text("cancelled", timeout=60_000)
            expect(page.locator("#run-error")).to_contain_text(
                "cancelled by alice: stopped after ")
            page.screenshot(path=str(ARTIFACTS / "run-cancelled.png"), full_page=True)
        finally:
            browser.close()
    assert not problems, problems
    rows = len(rows_of(gated_web["local_url"], "orders__syncd_staging"))
    assert 0 < rows < 2_000  # the full load stopped at a batch boundary, its rows kept


def urlpath(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path

