"""The on-call pages in a real browser (Debian's Chromium, 1024 px wide): the dashboard with
its run strips, failed jobs first and the last error in one line; a job page whose full
load dwarfs the increments; the workers page with a live worker and beat; the admin
page; the banner of a rejected jobs file. No page scrolls sideways. Screenshots go to
``test-artifacts/`` (look at them when the layout changes)."""

from __future__ import annotations

import re
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from celery_helpers import Service, running_services
from sample_tables import create_orders
from test_browser import ARTIFACTS, CHROMIUM_ARGS, _free_port, chromium  # noqa: F401
from web_helpers import PASSWORD

pytestmark = pytest.mark.slow

WIDTH = 1024
TYPO = '\n[[jobs]]\nname = "late"\nsource = "src"\ntable = "orders"\ntarget = "late_copy"\n' \
       'cursor = "updated_at"\nshedule = "15s"\n'


def jobs_text(source_url: str) -> str:
    jobs = [("orders", None), ("billing_accounts_eu", "5m"), ("customers", "5m"),
            ("stale_one", "5m")]
    blocks = [f'[sources.src]\nurl = "{source_url}"\n']
    for name, schedule in jobs:
        target = "orders" if name == "orders" else f"{name}_copy"
        blocks.append(f'[[jobs]]\nname = "{name}"\nsource = "src"\ntable = "orders"\n'
                      f'target = "{target}"\ncursor = "updated_at"\n'
                      + (f'schedule = "{schedule}"\n' if schedule else ""))
    return "\n".join(blocks)


@pytest.fixture
def services() -> Iterator[Any]:
    yield from running_services()


def _seed_history(state: Any) -> None:
    """Runs written straight into the history: a failing job, a stale one, a busy strip."""
    from syncd.models import SyncRun, utcnow

    now = utcnow()
    statuses = ["succeeded"] * 3 + ["skipped", "succeeded", "cancelled", "succeeded",
                                    "failed", "succeeded", "abandoned"]
    with state.sessions.begin() as session:
        for i in range(24):  # a strip of 20 and more, the first one a full load
            start = now - timedelta(minutes=24 - i)
            full = i == 0
            session.add(SyncRun(
                job="customers", trigger="schedule", status=statuses[i % len(statuses)],
                queued_at=start, started_at=start,
                finished_at=start + (timedelta(seconds=95) if full else timedelta(milliseconds=60)),
                rows_read=1_200_000 if full else 40 + i, phase="full" if full else "incremental",
                error="skipped: another run of this job is in progress" if i % 10 == 3 else None))
        for i in range(6):
            start = now - timedelta(minutes=5 * (6 - i))
            failed = i >= 4
            session.add(SyncRun(
                job="billing_accounts_eu", trigger="schedule",
                status="failed" if failed else "succeeded", queued_at=start, started_at=start,
                finished_at=start + timedelta(seconds=2), rows_read=10,
                error=("gave up after 4 attempts: source unreachable: (2003, \"Can't connect to "
                       "MySQL server on 'billing-db.eu.internal' ([Errno 111] Connection "
                       "refused)\")\nwhile reading billing.accounts_eu " + "x" * 300)
                if failed else None))
        start = now - timedelta(days=2)
        session.add(SyncRun(job="stale_one", trigger="schedule", status="succeeded",
                            queued_at=start, started_at=start,
                            finished_at=start + timedelta(seconds=3), rows_read=5))


@pytest.fixture
def site(databases: Any, make_env: Any, services: Any) -> Iterator[dict[str, Any]]:
    """Jobs with history, a worker, beat, and the web app under gunicorn."""
    from syncd import get_state
    from syncd.web.accounts import create_user

    source_url = databases.sqlite("source")
    create_orders(source_url, 300)
    env = make_env(databases.sqlite("local"), jobs_text(source_url))
    app = env.app()
    state = get_state(app)
    create_user(state, "alice", PASSWORD, "operator")
    state.jobs()  # the jobs file validates: it is the last good one from now on
    _seed_history(state)
    state.dispose()
    env.syncd("tokens", "add", "deploy-bot", check=True)
    services.worker(env, 1)
    services.beat(env)
    port = _free_port()
    server = Service("web", [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                             "--workers", "2", "syncd.web:create_web_app()"],
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
    yield {"base": base, "env": env, "source_url": source_url}


def _no_sideways_scroll(page: Any, name: str) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    if widths[0] > widths[1]:
        shot = ARTIFACTS / f"{name.replace(' ', '-')}-{WIDTH}-too-wide.png"
        page.screenshot(path=str(shot))
        pytest.fail(f"{name} scrolls sideways at {WIDTH} px: {widths} (see {shot})")


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}-{WIDTH}.png"), full_page=True)


def test_on_call_pages_at_1024_px(chromium: str, site: dict[str, Any]) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    base = site["base"]
    problems: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 800})
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("response", lambda r: r.status >= 400 and problems.append(
                f"{r.status} {r.url}"))
            page.goto(f"{base}/login")
            page.fill("#username", "alice")
            page.fill("#password", PASSWORD)
            page.click("button:has-text('Log in')")
            page.wait_for_url(re.compile(r"/$"))

            # Dashboard: failed and stale first, the last error on one line, the strips.
            ids = page.locator("tbody.job").evaluate_all("els => els.map(e => e.id)")
            assert ids == ["job-billing_accounts_eu", "job-stale_one", "job-customers",
                           "job-orders"]
            error = page.locator("#job-billing_accounts_eu .error-line")
            expect(error).to_contain_text("gave up after 4 attempts: source unreachable")
            box = error.bounding_box()
            line = error.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")
            assert box is not None and box["height"] < 1.6 * line, (box, line)
            expect(page.locator("#job-customers .strip a.cell")).to_have_count(20)
            expect(page.locator("#job-customers .strip .cell.status-skipped").first).to_be_visible()
            skipped = page.locator("#job-customers .strip .cell.status-skipped").first.evaluate(
                "e => getComputedStyle(e).backgroundColor")
            failed = page.locator("#job-customers .strip .cell.status-failed").first.evaluate(
                "e => getComputedStyle(e).backgroundColor")
            assert skipped != failed  # skipped is neutral, not the colour of failure
            expect(page.locator("#job-orders .strip .cell.none")).to_have_count(20)
            expect(page.locator(".legend")).to_contain_text("by default three schedule periods")
            _no_sideways_scroll(page, "dashboard")
            _shot(page, "dashboard")

            # A real sync from the dashboard shows up in its strip.
            page.locator("#job-orders").get_by_role("button", name="Sync now").click()
            page.wait_for_url(re.compile(r"/runs/\d+$"))
            expect(page.locator("#run-status")).to_have_text("succeeded", timeout=90_000)
            _no_sideways_scroll(page, "run page")
            _shot(page, "run")
            page.goto(f"{base}/")
            expect(page.locator("#job-orders .strip a.cell.status-succeeded")).to_have_count(1)

            # Job page: a full load of 1.2 million rows beside runs of ~50 rows.
            page.goto(f"{base}/jobs/customers")
            expect(page.locator(".panel-label").first).to_contain_text("log scale")
            expect(page.locator("line.full-mark")).to_have_count(2)
            heights = page.locator("svg.panel").first.locator("rect.bar").evaluate_all(
                "els => els.map(e => e.getBoundingClientRect().height)")
            visible = [h for h in heights[1:] if h > 0]
            assert visible and min(visible) > 10, heights  # small runs stay readable
            expect(page.locator("table.runs")).not_to_contain_text("0.0s")
            expect(page.locator("table.runs")).to_contain_text("60ms")
            _no_sideways_scroll(page, "job page")
            _shot(page, "job")

            # Workers page: the worker alive, beat ticking, the queue.
            page.goto(f"{base}/workers")
            expect(page.locator("tr.worker").first).to_contain_text("alive")
            expect(page.locator("#beat")).to_contain_text("last tick")
            expect(page.locator("#queue-facts")).to_contain_text("message(s) waiting")
            _no_sideways_scroll(page, "workers page")
            _shot(page, "workers")

            page.goto(f"{base}/admin")
            expect(page.locator("#token-deploy-bot")).to_be_visible()
            expect(page.locator("table.audit")).to_contain_text("token.add")
            _no_sideways_scroll(page, "admin page")
            _shot(page, "admin")

            page.goto(f"{base}/alerts")
            _no_sideways_scroll(page, "alerts page")

            # A typo in the jobs file: the banner names file, job and field; jobs stay.
            site["env"].write_jobs(jobs_text(site["source_url"]) + TYPO)
            page.goto(f"{base}/")
            banner = page.locator("#jobs-file-banner")
            expect(banner).to_contain_text("The last good jobs file stays in force")
            expect(banner.locator("dl.rejection")).to_contain_text("late")
            expect(banner.locator("dl.rejection")).to_contain_text("shedule")
            expect(page.locator("tbody.job")).to_have_count(4)
            _no_sideways_scroll(page, "dashboard with the banner")
            _shot(page, "dashboard-banner")
        finally:
            browser.close()
    assert not problems, problems  # no script errors, no Content-Security-Policy violations
