"""Retries that show what is happening: while a run waits for its next attempt, the run page,
the dashboard and ``syncd history`` say which attempt comes next, when, and why the last
one failed; every attempt's error stays in the run's record.

The source refuses connections (nothing listens on port 1) and the backoff is long, so the
run is caught between two attempts however fast the machine is; it is cancelled there.
"""

from __future__ import annotations

import json
import re
import signal
from html import unescape
from typing import Any

from celery_helpers import wait_for
from test_cli import StderrLines
from test_sync import jobs_toml
from web_helpers import PASSWORD, login

REFUSED = "mysql+pymysql://reader:secret@127.0.0.1:1/crm"
SHOWN = "mysql+pymysql://reader:***@127.0.0.1:1/crm"


def history_json(env: Any) -> list[dict[str, Any]]:
    return json.loads(env.syncd("history", "--json", check=True).stdout)


def test_a_retrying_run_shows_its_attempts_everywhere(databases: Any, make_env: Any) -> None:
    from syncd import get_state
    from syncd.web.accounts import create_user

    env = make_env(databases.sqlite("local"), jobs_toml(REFUSED))
    env.extra_env.update(SYNCD_RETRY_ATTEMPTS="4", SYNCD_RETRY_BACKOFF="600")
    run = env.popen("run", "orders")
    err = StderrLines(run)
    try:
        wait_for(lambda: (rows := history_json(env)) and rows[0]["next_attempt_at"], 60,
                 lambda: f"the run never failed an attempt: {history_json(env)}\n{err.text()}")
        (row,) = history_json(env)
        assert (row["status"], row["attempts"], row["max_attempts"]) == ("running", 1, 4)
        (first,) = row["attempt_errors"]
        assert first["attempt"] == 1 and first["at"].endswith("Z")
        assert first["error"].startswith(f'source "src" ({SHOWN}): unreachable: ')
        assert "Connection refused" in first["error"] and "secret" not in first["error"]
        expected = re.compile(r"attempt 2 of 4, next try in (\d+) s: " + re.escape(
            first["error"]))
        match = expected.fullmatch(row["activity"])
        assert match and 290 <= int(match.group(1)) <= 900, row["activity"]  # 600 s x 0.5-1.5

        text = env.syncd("history", check=True).stdout.strip()  # what an operator reads
        assert "[cli] run #1 orders: running read=0" in text
        assert expected.search(text), text

        app = env.app()
        create_user(get_state(app), "alice", PASSWORD, "operator")
        client = app.test_client()
        assert login(client, "alice", PASSWORD).status_code == 303
        page = unescape(client.get("/runs/1").get_data(as_text=True))
        assert expected.search(page), page
        assert '<table class="attempts" id="run-attempts">' in page
        assert expected.search(unescape(client.get("/").get_data(as_text=True)))  # dashboard
        assert expected.search(unescape(client.get("/jobs/orders").get_data(as_text=True)))
        get_state(app).dispose()

        run.send_signal(signal.SIGINT)  # the wait for attempt 2 ends at once
        assert run.wait(timeout=30) == 130, err.text()
    finally:
        if run.poll() is None:
            run.kill()
    (row,) = history_json(env)
    assert (row["status"], row["cancelled_by"], row["next_attempt_at"]) == (
        "cancelled", "Ctrl-C", None)
    assert [a["attempt"] for a in row["attempt_errors"]] == [1]  # kept in the record
    assert row["activity"] is None


def test_a_run_that_gives_up_keeps_every_attempts_error(databases: Any, make_env: Any) -> None:
    env = make_env(databases.sqlite("local"), jobs_toml(REFUSED))
    env.extra_env.update(SYNCD_RETRY_ATTEMPTS="3", SYNCD_RETRY_BACKOFF="0.1")
    proc = env.syncd("run", "orders")
    assert proc.returncode == 1
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary.startswith("run #1 orders: failed ")
    assert f'-- gave up after 3 attempts: source "src" ({SHOWN}): unreachable: ' in summary
    (row,) = history_json(env)
    assert [a["attempt"] for a in row["attempt_errors"]] == [1, 2, 3]
    assert all("Connection refused" in a["error"] for a in row["attempt_errors"])
    assert (row["attempts"], row["max_attempts"], row["next_attempt_at"]) == (3, 3, None)
