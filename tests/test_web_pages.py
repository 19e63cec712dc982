"""The admin pages: dashboard, job history (filters, paging, chart), run detail."""

from __future__ import annotations

import html as htmllib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from web_helpers import Site, make_site, site_fixture


@pytest.fixture
def site(databases: Any, make_env: Any) -> Iterator[Site]:
    yield from site_fixture(databases, make_env)

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def _text(response: Any) -> str:
    return response.get_data(as_text=True)


def test_dashboard_shows_each_job_with_last_run_success_schedule_and_rows(site: Any) -> None:
    from syncd.models import utcnow

    ok_at = utcnow() - timedelta(minutes=3)
    ok = site.add_run(status="succeeded", rows_read=1234, rows_inserted=1200, rows_updated=34,
                      queued_at=ok_at - timedelta(seconds=5), finished_at=ok_at)
    failed = site.add_run(status="failed", error="source unreachable")
    page = _text(site.login().get("/"))
    row = page[page.index('id="job-orders"'):page.index("</tr>", page.index('id="job-orders"'))]
    assert 'href="/jobs/orders"' in row
    assert "status-failed" in row and f"#{failed}" in row
    assert ok_at.strftime("%Y-%m-%d %H:%M:%S") in row  # last success, SYNCD_TIMEZONE=UTC
    # A slow machine may take a second or more between writing the run and rendering.
    assert re.search(r"\b3m( \d{1,2}s)? ago", row), row
    assert "fresh-fresh" in row  # every 5m, succeeded 3 minutes ago
    assert "every 5m" in row and "next:" in row
    assert "Sync now" in row and "Full resync" in row and "Pause" in row
    assert f"/runs/{ok}" not in row  # the last run shown is the newest one


def test_dashboard_marks_stale_and_paused_jobs(site: Any) -> None:
    from syncd.runner import set_paused

    site.add_run(status="succeeded", queued_at=T0)  # long ago for a 5m schedule
    set_paused(site.state, "orders", True, by="test")
    row = _text(site.login().get("/"))
    assert "fresh-stale" in row
    assert '<span class="badge paused">paused</span>' in row
    assert "Resume" in row and "next:" not in row


def test_times_are_shown_in_syncd_timezone(databases: Any, make_env: Any) -> None:
    berlin = make_site(databases, make_env, SYNCD_TIMEZONE="Europe/Berlin")
    run = berlin.add_run(queued_at=T0, started_at=T0, finished_at=T0 + timedelta(seconds=7))
    page = _text(berlin.login().get(f"/runs/{run}"))
    assert "2026-01-15 13:00:00 CET" in page  # 12:00 UTC
    assert "2026-01-15 13:00:07 CET" in page
    assert "times shown in Europe/Berlin" in page
    api = berlin.state  # stored and served in UTC
    with api.sessions() as session:
        from syncd.models import SyncRun

        assert session.get(SyncRun, run).to_dict()["started_at"] == "2026-01-15T12:00:00Z"


def test_run_page_shows_what_happened(site: Any) -> None:
    run = site.add_run(
        trigger="manual", started_by="alice", full_refresh=True, rows_read=10,
        rows_inserted=7, rows_updated=3, rows_deleted=1, cursor_before=json.dumps(["2026-01-01"]),
        cursor_after=json.dumps(["2026-01-02 10:00:00", 42]),
        warnings_json=json.dumps({"rows with a NULL cursor": 2}),
    )
    page = _text(site.login().get(f"/runs/{run}"))
    for text in ("manual", "alice", "full resync", "status-succeeded", "2026-01-01",
                 "2026-01-02 10:00:00, 42", "rows with a NULL cursor ×2", "4s"):
        assert text in page, text
    assert "run.js" not in page  # finished: nothing to poll


def test_error_with_markup_is_shown_escaped_and_traceback_collapsed(site: Any) -> None:
    evil = "<script>alert('x')</script> table <b>gone</b>"
    run = site.add_run(status="failed", error=evil,
                       traceback='Traceback (most recent call last):\n  File "<script>"\n')
    client = site.login()
    for path in (f"/runs/{run}", "/jobs/orders", "/"):
        page = _text(client.get(path))
        assert "<script>alert" not in page, path
        assert "<b>gone</b>" not in page, path
    page = _text(client.get(f"/runs/{run}"))
    assert htmllib.escape(evil, quote=False) in page or "&lt;script&gt;alert(" in page
    traceback = page[page.index('<details class="traceback">'):]
    assert "<summary>Traceback</summary>" in traceback
    assert "File &#34;&lt;script&gt;&#34;" in traceback or "&lt;script&gt;" in traceback


def test_running_run_page_polls_its_json(site: Any) -> None:
    from syncd.models import utcnow

    run = site.add_run(status="running", started_at=utcnow(), rows_read=500, rows_total=2000,
                       phase="incremental")
    client = site.login()
    page = _text(client.get(f"/runs/{run}"))
    assert f'data-progress-url="/runs/{run}/progress"' in page
    assert re.search(r'<script src="/assets/run\.js[^"]*"></script>', page)
    assert 'max="2000" value="500"' in page
    data = client.get(f"/runs/{run}/progress").get_json()
    assert data["status"] == "running" and data["finished"] is False
    assert data["rows_read"] == 500 and data["rows_total"] == 2000
    assert client.get("/assets/run.js").status_code == 200


def test_unknown_job_and_run_give_404(site: Any) -> None:
    client = site.login()
    for path in ("/jobs/nope", "/runs/424242", "/runs/424242/progress", "/jobs/nope/resync"):
        assert client.get(path).status_code == 404, path
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', _text(client.get("/"))).group(1)
    for action in ("sync", "pause", "resume"):
        assert client.post(f"/jobs/nope/{action}", data={"csrf_token": token}).status_code == 404
    assert site.runs("nope") == []


def test_job_page_filters_by_status_and_trigger(site: Any) -> None:
    ids = {
        "ok_sched": site.add_run(status="succeeded", trigger="schedule"),
        "fail_sched": site.add_run(status="failed", trigger="schedule", error="x"),
        "ok_manual": site.add_run(status="succeeded", trigger="manual", started_by="alice"),
        "skip_api": site.add_run(status="skipped", trigger="api"),
    }
    client = site.login()

    def shown(**query: str) -> set[int]:
        page = _text(client.get("/jobs/orders", query_string=query))
        return {int(i) for i in re.findall(r'<tr id="run-(\d+)"', page)}

    assert shown() == set(ids.values())
    assert shown(status="succeeded") == {ids["ok_sched"], ids["ok_manual"]}
    assert shown(trigger="schedule") == {ids["ok_sched"], ids["fail_sched"]}
    assert shown(status="succeeded", trigger="manual") == {ids["ok_manual"]}
    assert shown(status="cancelled") == set()
    assert client.get("/jobs/orders?status=bogus").status_code == 400
    assert client.get("/jobs/orders?before=abc").status_code == 400


def test_job_page_pages_by_keyset_newest_first(site: Any) -> None:
    from syncd.models import SyncRun

    with site.state.sessions.begin() as session:
        session.add_all(SyncRun(job="orders", trigger="schedule", status="succeeded",
                                queued_at=T0 + timedelta(minutes=i)) for i in range(120))
    ids = [r.id for r in site.runs()]
    client = site.login()

    def page_ids(page: str) -> list[int]:
        return [int(i) for i in re.findall(r'<tr id="run-(\d+)"', page)]

    first = _text(client.get("/jobs/orders"))
    assert page_ids(first) == ids[::-1][:50]
    older = htmllib.unescape(re.search(r'href="([^"]+)">Older', first).group(1))
    assert "Newer" not in first
    second = _text(client.get(older))
    assert page_ids(second) == ids[::-1][50:100]
    third = _text(client.get(htmllib.unescape(re.search(r'href="([^"]+)">Older',
                                                          second).group(1))))
    assert page_ids(third) == ids[::-1][100:]
    assert "Older" not in third
    newer = htmllib.unescape(re.search(r'href="([^"]+)">← Newer', third).group(1))
    assert page_ids(_text(client.get(newer))) == ids[::-1][50:100]


def test_job_page_draws_a_chart_of_duration_and_rows(site: Any) -> None:
    for i in range(5):
        site.add_run(rows_read=100 * (i + 1), queued_at=T0 + timedelta(minutes=i),
                     started_at=T0 + timedelta(minutes=i),
                     finished_at=T0 + timedelta(minutes=i, seconds=i + 1))
    site.add_run(status="failed", error="x")
    page = _text(site.login().get("/jobs/orders"))
    chart = page[page.index('<figure class="chart">'):page.index("</figure>")]
    assert chart.count("<svg") == 2
    assert chart.count("<rect") == 12  # 6 runs x (duration, rows)
    assert "Duration <span class=\"sub\">(top of scale 5.0s)" in chart
    assert "Rows read <span class=\"sub\">(top of scale 500)" in chart
    assert "bar status-failed" in chart


def test_chart_geometry_is_scaled_to_the_largest_run() -> None:
    from syncd.models import SyncRun
    from syncd.web.chart import PANEL_HEIGHT, run_chart

    runs = [SyncRun(id=i, status="succeeded", rows_read=r, started_at=T0,
                    finished_at=T0 + timedelta(seconds=d))
            for i, (r, d) in enumerate([(0, 1), (50, 2), (100, 4)], start=1)]
    chart = run_chart(list(reversed(runs)))  # newest first in, oldest drawn left
    duration, rows = chart.panels
    assert [b.run_id for b in duration.bars] == [1, 2, 3]
    assert [b.height for b in duration.bars] == [PANEL_HEIGHT / 4, PANEL_HEIGHT / 2, PANEL_HEIGHT]
    assert [b.height for b in rows.bars] == [0, PANEL_HEIGHT / 2, PANEL_HEIGHT]
    assert all(b.y + b.height == PANEL_HEIGHT for b in rows.bars)
    assert rows.bars[-1].x + rows.bars[-1].width <= chart.width  # newest at the right edge
    assert rows.bars[-1].x > chart.width * 0.9 and rows.bars[0].x < rows.bars[1].x


def test_job_dropped_from_the_jobs_file_keeps_its_history_page(site: Any) -> None:
    site.add_run(job="retired", status="succeeded")
    page = site.login().get("/jobs/retired")
    assert page.status_code == 200
    assert "no longer in the jobs file" in _text(page)


def test_broken_jobs_file_is_reported_not_a_crash(site: Any) -> None:
    site.env.write_jobs('[[jobs]]\nname = "x"\nbogus = 1\n')
    client = site.login()
    page = client.get("/")
    assert page.status_code == 200
    assert "does not validate" in _text(page)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', _text(page)).group(1)
    assert client.post("/jobs/orders/sync", data={"csrf_token": token}).status_code == 409


@pytest.mark.parametrize("value,expected", [(None, "-"), (3, "3s"), (2.5, "2.5s"), (75, "1m 15s"),
                                            (3600, "1h"), (90000, "1d 1h")])
def test_durations_in_words(value: float | None, expected: str) -> None:
    from syncd.web.display import words

    assert words(value) == expected


@pytest.mark.parametrize("f", [
    {}, {"status": "failed"}, {"trigger": "manual"}, {"before": 500}, {"after": 10},
])
def test_history_page_query_walks_an_index_without_sorting(site: Any, f: dict[str, Any]) -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    from syncd.web.history import RunFilter, active_run_queries, runs_query

    query = runs_query(RunFilter(job="orders", **f))
    pg_sql = str(query.compile(dialect=postgresql.dialect()))
    assert "OFFSET" not in pg_sql.upper() and "traceback" not in pg_sql
    sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with site.state.engine.connect() as conn:
        for q in (sql, *(str(a.compile(dialect=sqlite.dialect(),
                                       compile_kwargs={"literal_binds": True}))
                         for a in active_run_queries("orders"))):
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + q))
            assert "USING INDEX ix_syncd_runs_job" in plan or "USING COVERING INDEX" in plan, plan
            assert "TEMP B-TREE" not in plan, plan


EXTRA_JOBS = (
    '[[jobs]]\nname = "alpha"\nsource = "src"\ntable = "orders"\ntarget = "alpha_copy"\n'
    'cursor = "updated_at"\nschedule = "5m"\n',
    '[[jobs]]\nname = "zeta"\nsource = "src"\ntable = "orders"\ntarget = "zeta_copy"\n'
    'cursor = "updated_at"\nschedule = "5m"\n',
)


def _job_block(page: str, job: str) -> str:
    start = page.index(f'<tbody id="job-{job}"')
    return page[start:page.index("</tbody>", start)]


def test_dashboard_puts_failed_and_stale_jobs_first_with_the_last_error_in_one_line(
        databases: Any, make_env: Any) -> None:
    from syncd.models import utcnow

    site = make_site(databases, make_env, extra_jobs=EXTRA_JOBS)
    try:
        now = utcnow()
        site.add_run(job="alpha", status="succeeded", queued_at=now - timedelta(minutes=1),
                     finished_at=now)
        site.add_run(job="alpha", status="skipped", error="skipped: another run of this job "
                     "is in progress (run #1)", queued_at=now, finished_at=now)
        site.add_run(job="orders", status="succeeded", queued_at=now - timedelta(minutes=2),
                     finished_at=now - timedelta(minutes=1))
        failed = site.add_run(job="orders", status="failed", queued_at=now, finished_at=now,
                              error="source unreachable: (2003, \"Can't connect to MySQL\")\n"
                                    "    while reading crm.orders\n" + "x" * 400)
        site.add_run(job="zeta", status="succeeded", queued_at=T0)  # long ago: stale
        page = _text(site.login().get("/"))

        order = re.findall(r'<tbody id="job-([a-z]+)"', page)
        assert order == ["orders", "zeta", "alpha"]  # failed and stale first, then by name
        orders = _job_block(page, "orders")
        line = re.search(r'<span class="error-line" title="([^"]*)">(.*?)</span>\s*</div>',
                         orders, re.S)
        assert line, orders
        shown = htmllib.unescape(re.sub(r"<[^>]+>", "", line.group(2)))
        assert "\n" not in shown.strip()
        assert f"last error, run #{failed}" in shown
        assert "source unreachable: (2003, \"Can't connect to MySQL\") while reading crm.orders" \
            in shown
        assert shown.endswith("…") and len(shown) < 300
        assert "x" * 400 in htmllib.unescape(line.group(1))  # the whole error on hover
        assert 'class="job attention"' in _job_block(page, "zeta").split(">")[0] + ">"
        alpha = _job_block(page, "alpha")
        assert "attention" not in alpha.split(">")[0] and "error-line" not in alpha
        assert "status-skipped" in alpha  # the last run: skipped, neutral
        assert "stale after 15m" in alpha  # three periods of 5m
        assert "by default three schedule periods" in page
    finally:
        site.state.dispose()


def test_skipped_is_neutral_grey_and_only_failures_are_red() -> None:
    from pathlib import Path

    css = (Path(__file__).resolve().parent.parent / "syncd/web/static/style.css").read_text()
    rules = {sel.strip(): body for sels, body in re.findall(r"([^{}]+)\{([^}]*)\}", css)
             for sel in sels.split(",")}
    assert "var(--idle)" in rules[".status-skipped"]
    assert "var(--bad)" in rules[".status-failed"]
    assert "var(--bad)" not in rules["td.message"] and "var(--bad)" in rules["td.message.bad"]


def test_dashboard_strip_shows_the_last_20_runs_oldest_left(site: Any) -> None:
    statuses = ["succeeded", "failed", "skipped", "cancelled", "abandoned"]
    ids = [site.add_run(status=statuses[i % 5], queued_at=T0 + timedelta(minutes=i),
                        phase="full" if i == 0 else "incremental") for i in range(25)]
    page = _text(site.login().get("/"))
    strip = re.search(r'<span class="strip"[^>]*>(.*?)</span>', _job_block(page, "orders"),
                      re.S).group(1)
    cells = re.findall(r'<a class="cell status-(\w+)[^"]*" href="/runs/(\d+)"', strip)
    assert [int(i) for _, i in cells] == ids[5:]  # the newest 20, oldest on the left
    assert [s for s, _ in cells] == [statuses[i % 5] for i in range(5, 25)]
    assert 'class="cell none"' not in strip

    few = _text(site.login().get("/jobs/orders"))  # the first run, a full load, is tagged
    first_row = few[few.index(f'<tr id="run-{ids[0]}">'):]
    assert '<span class="tag" title="full load">full</span>' in first_row[:first_row.index("</tr>")]


def test_job_chart_stays_readable_when_a_full_load_dwarfs_the_increments(site: Any) -> None:
    from syncd.web.chart import PANEL_HEIGHT

    site.add_run(status="succeeded", phase="full", rows_read=1_000_000, queued_at=T0,
                 started_at=T0, finished_at=T0 + timedelta(seconds=95))
    for i in range(1, 11):
        start = T0 + timedelta(minutes=i)
        site.add_run(status="succeeded", phase="incremental", rows_read=100 + i,
                     queued_at=start, started_at=start,
                     finished_at=start + timedelta(milliseconds=40 + i))
    page = _text(site.login().get("/jobs/orders"))
    chart = page[page.index('<figure class="chart">'):page.index("</figure>")]
    assert 'Duration <span class="sub">(top of scale 1m 35s, log scale)' in chart
    assert 'Rows read <span class="sub">(top of scale 1,000,000, log scale)' in chart
    assert chart.count('class="full-mark"') == 2  # the full load, marked in both panels
    assert "a dark mark under a bar = a full load" in chart
    heights = [float(h) for h in re.findall(r'height="([\d.]+)" class="bar status-', chart)]
    small = heights[1:11]  # the duration panel's incremental runs
    assert min(small) > PANEL_HEIGHT * 0.3, heights  # visible, not one-pixel slivers
    assert "0.0s" not in page and "top of scale 0" not in page
    assert "41ms" in page  # a sub-second run reads in milliseconds


def test_run_page_labels_read_as_words(site: Any) -> None:
    run = site.add_run(trigger="manual", started_by="alice", full_refresh=True, phase="full",
                       queued_at=T0, started_at=T0,
                       finished_at=T0 + timedelta(milliseconds=250))
    page = _text(site.login().get(f"/runs/{run}"))
    status_line = page[page.index('<p class="status-line">'):page.index("</p>",
                                                                       page.index("status-line"))]
    words_only = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", status_line)).strip()
    assert words_only == "succeeded full resync"
    assert "250ms" in page and "0.2s" not in page and "0.0s" not in page
    first = site.add_run(status="succeeded", phase="full")  # an incremental job's first load
    assert '<span class="tag">full load</span>' in _text(site.login().get(f"/runs/{first}"))


@pytest.mark.parametrize("value,expected", [(0.04, "40ms"), (0.0004, "<1ms"), (0.9994, "999ms"),
                                            (0.9996, "1.0s"), (0, "0s")])
def test_sub_second_durations_in_milliseconds(value: float, expected: str) -> None:
    from syncd.web.display import words

    assert words(value) == expected
