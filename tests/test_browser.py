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


def urlpath(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path

