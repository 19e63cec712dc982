"""Alerts: the [notify] section, the events of runs and of stale jobs, their delivery to a
local webhook server (signature checked) and a local SMTP server, retries, the record of
every delivery, the alerts page and `syncd notify test`. No secret is ever shown."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from notify_helpers import (
    SmtpServer,
    WebhookServer,
    closed_port_url,
    no_secret_in,
    self_signed_cert,
    trust,
)
from sample_tables import create_orders, execute
from web_helpers import PASSWORD, make_site

from syncd import get_state
from syncd.engine.errors import ConfigError
from syncd.jobs import load_jobs
from syncd.models import AlertDelivery, SyncRun, utcnow
from syncd.notify.alerts import notify_housekeeping
from syncd.runner import RunRequest, run_job, set_paused

HOOK_SECRET = "hook-signing-secret-1234"
SOURCE_PASSWORD = "source-db-password-5678"
URL_PASSWORD = "hook-url-password-9012"
SMTP_PASSWORD = "smtp-password-3456"
SECRETS = [HOOK_SECRET, SOURCE_PASSWORD, URL_PASSWORD, SMTP_PASSWORD]
FAST = {"SYNCD_NOTIFY_ATTEMPTS": "3", "SYNCD_NOTIFY_BACKOFF": "0.05",
        "SYNCD_NOTIFY_TIMEOUT": "10", "SYNCD_RETRY_ATTEMPTS": "1"}


@pytest.fixture
def hooks() -> Iterator[list[WebhookServer]]:
    """Webhook servers made by the test (``hooks.append(WebhookServer())``), stopped after."""
    made: list[WebhookServer] = []
    yield made
    for server in made:
        server.stop()


@pytest.fixture
def smtp_servers() -> Iterator[list[SmtpServer]]:
    made: list[SmtpServer] = []
    yield made
    for server in made:
        server.stop()


def toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def notify_block(webhooks: Sequence[str] = (), secret: str | None = None,
                 email_to: Sequence[str] = (), smtp_url: str | None = None,
                 on: list[str] | None = None) -> str:
    lines = ["[notify]"]
    if webhooks:
        lines.append(f"webhooks = {toml_list(webhooks)}")
    if secret:
        lines.append(f'secret = "{secret}"')
    if email_to:
        lines.append(f"email_to = {toml_list(email_to)}")
    if smtp_url:
        lines.append(f'smtp_url = "{smtp_url}"')
    if on is not None:
        lines.append(f"on = {toml_list(on)}")
    return "\n".join(lines) + "\n"


def orders_jobs(source_url: str, notify: str, **job: str) -> str:
    fields = {"schedule": "5m", **job}
    extra = "".join(f'{k} = "{v}"\n' for k, v in fields.items())
    return (f'{notify}\n[sources.src]\nurl = "{source_url}"\n\n[[jobs]]\nname = "orders"\n'
            f'source = "src"\ntable = "orders"\ncursor = "updated_at"\n{extra}')


def setup_env(make_env: Any, local_url: str, jobs: str, **env: str) -> tuple[Any, Any]:
    made = make_env(local_url, jobs)
    made.extra_env.update(FAST, **env)
    return made, get_state(made.app())


def break_source(url: str) -> None:
    """Runs of "orders" fail from now on: the source table is gone."""
    execute(url, sa.text("ALTER TABLE orders RENAME TO orders_away"))


def mend_source(url: str) -> None:
    execute(url, sa.text("ALTER TABLE orders_away RENAME TO orders"))


def run(state: Any) -> SyncRun:
    result = run_job(state, RunRequest(job="orders", trigger="cli"))
    assert result is not None
    return result


def deliveries(state: Any) -> list[AlertDelivery]:
    with state.sessions() as session:
        return list(session.scalars(sa.select(AlertDelivery).order_by(AlertDelivery.id)))


# --- the [notify] section ------------------------------------------------------------


@pytest.mark.parametrize("notify,problem", [
    ('[notify]\nwebhooks = ["http://h/x"]\ncolour = "red"\n', "unknown field(s): colour"),
    ('[notify]\nwebhooks = ["ftp://h/x"]\n', 'field "webhooks"'),
    ('[notify]\nwebhooks = ["https://"]\n', 'field "webhooks"'),
    ('[notify]\nwebhooks = ["http://h/x"]\nsecret = "${NOT_SET_ANYWHERE}"\n',
     'field "secret": environment variable ${NOT_SET_ANYWHERE} is not set'),
    ('[notify]\nemail_to = ["a@example.com"]\nsmtp_url = "http://mail:25"\n',
     'field "smtp_url"'),
    ('[notify]\nemail_to = ["a@example.com"]\n', 'field "smtp_url": required'),
    ('[notify]\nemail_to = ["not an address"]\nsmtp_url = "smtp://m:25"\n', 'field "email_to"'),
    ('[notify]\nwebhooks = ["http://h/x"]\non = ["failed", "exploded"]\n', 'field "on"'),
    ('[notify]\nwebhooks = ["http://h/x"]\non = ["failing:0"]\n', 'field "on"'),
    ("[notify]\non = [\"failed\"]\n", "no target"),
])
def test_notify_section_is_validated(tmp_path: Path, notify: str, problem: str) -> None:
    path = tmp_path / "jobs.toml"
    path.write_text(notify)
    with pytest.raises(ConfigError) as caught:
        load_jobs(path, {})
    message = str(caught.value)
    assert message.startswith(f"{path}: [notify]: ")
    assert problem in message


def test_bad_url_message_masks_its_password(tmp_path: Path) -> None:
    path = tmp_path / "jobs.toml"
    path.write_text('[notify]\nemail_to = ["a@example.com"]\n'
                    'smtp_url = "smtps://u:${PW}@mail.example.com:465/path"\n')
    with pytest.raises(ConfigError) as caught:
        load_jobs(path, {"PW": SMTP_PASSWORD})
    assert 'field "smtp_url"' in str(caught.value)
    assert "smtps://u:***@mail.example.com:465/path" in str(caught.value)
    assert SMTP_PASSWORD not in str(caught.value)


def test_max_age_is_a_duration_and_defaults_to_three_periods(tmp_path: Path) -> None:
    path = tmp_path / "jobs.toml"
    base = '[sources.s]\nurl = "sqlite://"\n[[jobs]]\nname = "j"\nsource = "s"\n' \
           'table = "t"\nmode = "full"\n'
    path.write_text(base + 'max_age = "soon"\n')
    with pytest.raises(ConfigError, match='job "j": field "max_age"'):
        load_jobs(path, {})
    now = utcnow()
    path.write_text(base + 'schedule = "5m"\n')
    assert load_jobs(path, {}).job("j").stale_after(now) == timedelta(minutes=15)
    path.write_text(base + 'schedule = "5m"\nmax_age = "2h"\n')
    assert load_jobs(path, {}).job("j").stale_after(now) == timedelta(hours=2)
    path.write_text(base)  # no schedule, no max_age: never stale
    assert load_jobs(path, {}).job("j").stale_after(now) is None
    path.write_text(base + 'schedule = "0 * * * *"\n')  # hourly cron
    assert load_jobs(path, {}).job("j").stale_after(now) >= timedelta(hours=3)


# --- events of runs, delivered ----------------------------------------------------------


def test_failed_and_recovered_runs_are_posted_signed_and_mailed(
        databases: Any, make_env: Any, hooks: list[WebhookServer],
        smtp_servers: list[SmtpServer], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    hook = WebhookServer()
    hooks.append(hook)
    smtp = SmtpServer()
    smtp_servers.append(smtp)
    pg = databases.postgres()
    source_url = pg.replace("postgres@", "postgres:${SOURCE_PASSWORD}@")  # trust: ignored
    create_orders(pg, 20)
    notify = notify_block(webhooks=[hook.url("/alerts", f"syncd:{URL_PASSWORD}")],
                          secret="${HOOK_SECRET}", email_to=["ops@example.com", "db@example.com"],
                          smtp_url=smtp.url())
    _, state = setup_env(make_env, databases.sqlite("local"), orders_jobs(source_url, notify),
                         SOURCE_PASSWORD=SOURCE_PASSWORD, HOOK_SECRET=HOOK_SECRET)
    try:
        assert run(state).status == "succeeded"
        assert hook.received == [] and smtp.mails == []  # nothing to tell

        break_source(pg)
        failed = run(state)
        assert failed.status == "failed"
        [alert] = hook.received
        assert alert.path == "/alerts"
        assert alert.headers["content-type"] == "application/json"
        assert alert.headers["x-syncd-event"] == "failed"
        assert alert.signed_with(HOOK_SECRET)
        assert base64.b64decode(alert.headers["authorization"].split()[1]).decode() == \
            f"syncd:{URL_PASSWORD}"  # user:password of the URL: basic authentication
        body = alert.json
        assert body["event"] == "failed" and body["job"] == "orders"
        assert body["run_id"] == failed.id and body["status"] == "failed"
        assert body["failures_in_a_row"] == 1
        assert body["error"] and body["error"] in (failed.error or "")
        assert f'job "orders" failed (run #{failed.id})' in body["summary"]
        [mail] = smtp.mails
        assert mail.rcpt_tos == ["ops@example.com", "db@example.com"]
        assert mail.message["Subject"].startswith(f'syncd: job "orders" failed (run #{failed.id})')
        assert "event: failed" in mail.text and f"run_id: {failed.id}" in mail.text

        assert run(state).status == "failed"  # a second failure: alerted again
        assert [h.json["failures_in_a_row"] for h in hook.received] == [1, 2]

        mend_source(pg)
        recovered = run(state)
        assert recovered.status == "succeeded"
        assert len(hook.received) == 3 and len(smtp.mails) == 3
        body = hook.received[-1].json
        assert body["event"] == "recovered" and body["run_id"] == recovered.id
        assert "succeeded after 2 failed run(s)" in body["summary"]
        assert hook.received[-1].signed_with(HOOK_SECRET)
        assert "recovered" in smtp.mails[-1].message["Subject"]

        assert run(state).status == "succeeded"  # still fine: nothing more
        assert len(hook.received) == 3 and len(smtp.mails) == 3

        rows = deliveries(state)
        assert [(d.event, d.status, d.attempts) for d in rows] == [
            ("failed", "delivered", 1)] * 4 + [("recovered", "delivered", 1)] * 2
        assert rows[0].target == f"webhook http://syncd:***@127.0.0.1:{hook.port}/alerts"
        assert rows[1].target == ("email to ops@example.com, db@example.com via "
                                  f"smtp://127.0.0.1:{smtp.port}")
        texts = [h.body.decode() + str(h.headers.get("x-syncd-signature")) for h in hook.received]
        texts += [m.message.as_string() for m in smtp.mails]
        texts += [f"{d.target} {d.error}" for d in rows]
        texts += [r.getMessage() for r in caplog.records]
        no_secret_in(texts, SECRETS)
    finally:
        state.dispose()


def test_failing_n_alerts_once_when_the_streak_reaches_n(databases: Any, make_env: Any,
                                                         hooks: list[WebhookServer]) -> None:
    hook = WebhookServer()
    hooks.append(hook)
    source = databases.sqlite("source")
    create_orders(source, 5)
    notify = notify_block(webhooks=[hook.url()], on=["failing:3", "recovered"])
    env, state = setup_env(make_env, databases.sqlite("local"), orders_jobs(source, notify))
    try:
        break_source(source)
        assert run(state).status == "failed"
        assert run(state).status == "failed"
        with state.sessions.begin() as session:  # a skipped tick does not break the streak
            session.add(SyncRun(job="orders", trigger="schedule", status="skipped",
                                queued_at=utcnow(), finished_at=utcnow()))
        assert hook.received == []  # "failed" is not asked for
        third = run(state)
        [alert] = hook.received
        assert alert.json["event"] == "failing" and alert.json["run_id"] == third.id
        assert alert.json["failures_in_a_row"] == 3
        assert "has failed 3 runs in a row" in alert.json["summary"]
        assert run(state).status == "failed"  # the fourth: no new alert
        assert len(hook.received) == 1
        mend_source(source)
        assert run(state).status == "succeeded"
        assert [h.json["event"] for h in hook.received] == ["failing", "recovered"]
        assert "after 4 failed run(s)" in hook.received[-1].json["summary"]
    finally:
        state.dispose()


def test_failing_targets_are_retried_and_recorded_failed_without_failing_the_run(
        databases: Any, make_env: Any, hooks: list[WebhookServer]) -> None:
    broken = WebhookServer(status=500, reply=f"unauthorized: {URL_PASSWORD}")  # echoes a secret
    flaky = WebhookServer(fail_first=1)
    hooks += [broken, flaky]
    refused = closed_port_url()
    source = databases.sqlite("source")
    create_orders(source, 5)
    notify = notify_block(webhooks=[broken.url("/b", f"u:{URL_PASSWORD}"), refused,
                                    flaky.url("/f")], secret=HOOK_SECRET)
    env, state = setup_env(make_env, databases.sqlite("local"), orders_jobs(source, notify))
    try:
        break_source(source)
        failed = run(state)
        assert failed.status == "failed"  # the run's own outcome, recorded before any alert
        assert "orders" in (failed.error or "")

        rows = deliveries(state)
        assert [(d.status, d.attempts) for d in rows] == [
            ("failed", 3), ("failed", 3), ("delivered", 2)]
        assert rows[0].error.startswith("HTTP 500")
        assert "unauthorized: ***" in rows[0].error  # the echoed password is masked
        assert "cannot reach the webhook" in rows[1].error and "refused" in rows[1].error
        assert rows[2].error is None
        assert all(d.created_at >= failed.finished_at for d in rows)  # sent after recording
        assert len(broken.received) == 3  # every attempt sends the same signed body
        assert len({h.body for h in broken.received}) == 1
        assert all(h.signed_with(HOOK_SECRET) for h in broken.received + flaky.received)
        no_secret_in([f"{d.target} {d.error}" for d in rows], SECRETS)

        mend_source(source)
        assert run(state).status == "succeeded"  # failing targets never fail a run
    finally:
        state.dispose()


# --- stale jobs (housekeeping) ----------------------------------------------------------


def test_stale_jobs_are_alerted_once_per_episode(databases: Any, make_env: Any,
                                                 hooks: list[WebhookServer]) -> None:
    hook = WebhookServer()
    hooks.append(hook)
    source = databases.sqlite("source")
    create_orders(source, 5)
    jobs = (orders_jobs(source, notify_block(webhooks=[hook.url()]), schedule="1m")
            + '\n[[jobs]]\nname = "manual"\nsource = "src"\ntable = "orders"\n'
              'target = "m1"\nmode = "full"\n'
            + '\n[[jobs]]\nname = "manual-aged"\nsource = "src"\ntable = "orders"\n'
              'target = "m2"\nmode = "full"\nmax_age = "1h"\n'
            + '\n[[jobs]]\nname = "paused"\nsource = "src"\ntable = "orders"\n'
              'target = "m3"\nmode = "full"\nschedule = "1m"\n'
            + '\n[[jobs]]\nname = "never-ok"\nsource = "src"\ntable = "orders"\n'
              'target = "m4"\nmode = "full"\nschedule = "1m"\n'
            + '\n[[jobs]]\nname = "never-ran"\nsource = "src"\ntable = "orders"\n'
              'target = "m5"\nmode = "full"\nschedule = "1m"\n')
    env, state = setup_env(make_env, databases.sqlite("local"), jobs)
    now = utcnow()

    def success(job: str, ago: timedelta) -> int:
        with state.sessions.begin() as session:
            row = SyncRun(job=job, trigger="schedule", status="succeeded",
                          queued_at=now - ago, started_at=now - ago, finished_at=now - ago)
            session.add(row)
            session.flush()
            return row.id

    try:
        last_ok = success("orders", timedelta(minutes=10))  # every 1m: stale after 3m
        success("manual", timedelta(days=30))  # no schedule, no max_age: never stale
        success("manual-aged", timedelta(hours=2))  # max_age 1h
        success("paused", timedelta(hours=2))
        set_paused(state, "paused", True, by="test")
        with state.sessions.begin() as session:
            session.add(SyncRun(job="never-ok", trigger="schedule", status="failed",
                                queued_at=now - timedelta(hours=1), finished_at=now))

        with env.app().app_context():  # through beat's housekeeping task
            from syncd.tasks import housekeeping

            housekeeping()
        by_job = {h.json["job"]: h.json for h in hook.received}
        assert sorted(by_job) == ["manual-aged", "never-ok", "orders"]
        orders = by_job["orders"]
        assert orders["event"] == "stale" and orders["run_id"] == last_ok
        assert orders["max_age_s"] == 180 and orders["data_age_s"] >= 600
        assert re.search(r'job "orders" is stale: its data is \d+m.* old \(max_age 3m\); '
                         rf"last success: run #{last_ok} at ", orders["summary"])
        assert by_job["manual-aged"]["max_age_s"] == 3600
        assert "has not succeeded since its first run" in by_job["never-ok"]["summary"]

        notify_housekeeping(state)  # the same episodes: nothing new
        notify_housekeeping(state, now=now + timedelta(hours=1))
        assert len(hook.received) == 3

        success("orders", timedelta(0))  # fresh again: the episode ends
        notify_housekeeping(state, now=now)
        assert len(hook.received) == 3
        notify_housekeeping(state, now=now + timedelta(minutes=5))  # and a new one begins
        assert len(hook.received) == 4 and hook.received[-1].json["job"] == "orders"
    finally:
        state.dispose()


# --- e-mail over TLS -------------------------------------------------------------------


def test_smtp_starttls_with_login_and_smtps(databases: Any, make_env: Any, tmp_path: Path,
                                           smtp_servers: list[SmtpServer],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    cert = self_signed_cert(tmp_path)
    trust(monkeypatch, cert[0])
    starttls = SmtpServer(cert=cert, users={"alerts": SMTP_PASSWORD})
    implicit = SmtpServer(cert=cert, implicit_tls=True)
    plain = SmtpServer()  # offers no STARTTLS: a password is not sent to it
    smtp_servers += [starttls, implicit, plain]
    source = databases.sqlite("source")
    create_orders(source, 5)
    jobs = orders_jobs(source, notify_block(email_to=["ops@example.com"],
                                            smtp_url=starttls.url("smtp", "alerts:${SMTP_PW}")))
    env, state = setup_env(make_env, databases.sqlite("local"), jobs, SMTP_PW=SMTP_PASSWORD)
    try:
        break_source(source)
        run(state)
        [mail] = starttls.mails
        assert mail.tls and mail.login == "alerts"  # upgraded, then logged in
        assert "failed" in mail.message["Subject"]
        no_secret_in([mail.message.as_string()], SECRETS)

        for url in (implicit.url("smtps"), plain.url("smtp", "alerts:${SMTP_PW}")):
            env.write_jobs(orders_jobs(source, notify_block(email_to=["ops@example.com"],
                                                            smtp_url=url)))
            run(state)
        assert len(implicit.mails) == 1 and implicit.mails[0].tls
        assert plain.mails == []
        last = deliveries(state)[-1]
        assert last.status == "failed" and "refusing to send the password" in last.error
        assert last.target == f"email to ops@example.com via smtp://alerts:***@127.0.0.1:{plain.port}"
    finally:
        state.dispose()


# --- syncd notify test, the alerts page ------------------------------------------------


def test_notify_test_command_exit_codes(databases: Any, make_env: Any, tmp_path: Path,
                                        hooks: list[WebhookServer],
                                        smtp_servers: list[SmtpServer]) -> None:
    hook = WebhookServer()
    hooks.append(hook)
    smtp = SmtpServer()
    smtp_servers.append(smtp)
    source = databases.sqlite("source")
    good = notify_block(webhooks=[hook.url("/t", f"u:{URL_PASSWORD}")], secret="${HOOK_SECRET}",
                        email_to=["ops@example.com"], smtp_url=smtp.url())
    env = make_env(databases.sqlite("local"), orders_jobs(source, good))
    env.extra_env.update(FAST, HOOK_SECRET=HOOK_SECRET)

    ok = env.syncd("notify", "test")
    assert ok.returncode == 0, ok.stderr
    assert f"delivered: webhook http://u:***@127.0.0.1:{hook.port}/t (1 attempt(s))" in ok.stdout
    assert "delivered: email to ops@example.com via smtp://127.0.0.1" in ok.stdout
    assert "2 of 2 target(s) took the test alert" in ok.stdout
    [test_hook] = hook.received
    assert test_hook.json["event"] == "test" and test_hook.signed_with(HOOK_SECRET)
    assert len(smtp.mails) == 1 and "test alert" in smtp.mails[0].message["Subject"]

    bad = notify_block(webhooks=[hook.url("/t"), closed_port_url()])
    env.write_jobs(orders_jobs(source, bad))
    failed = env.syncd("notify", "test")
    assert failed.returncode == 1
    assert "failed: webhook http://127.0.0.1:" in failed.stdout
    assert "(3 attempt(s))" in failed.stdout
    assert "1 of 2 target(s) took the test alert" in failed.stdout

    env.write_jobs(orders_jobs(source, ""))
    none = env.syncd("notify", "test")
    assert none.returncode == 1 and "no [notify] section" in none.stderr

    env.write_jobs(orders_jobs(source, '[notify]\nwebhook = ["http://x"]\n'))
    broken = env.syncd("notify", "test")
    assert broken.returncode == 2
    assert f"{env.jobs_file}: [notify]: unknown field(s): webhook" in broken.stderr
    no_secret_in([ok.stdout, ok.stderr, failed.stdout, failed.stderr], SECRETS)


def test_alerts_page_lists_the_last_deliveries_masked(databases: Any, make_env: Any,
                                                      hooks: list[WebhookServer]) -> None:
    hook = WebhookServer()
    hooks.append(hook)
    site = make_site(databases, make_env)
    refused = closed_port_url()
    site.env.write_jobs(orders_jobs(site.source_url, notify_block(
        webhooks=[hook.url("/p", f"u:{URL_PASSWORD}") + f"?token={HOOK_SECRET}", refused],
        on=["failed", "failing:2"])))
    site.env.extra_env.update(FAST)
    try:
        proc = site.env.syncd("notify", "test")
        assert proc.returncode == 1

        anonymous = site.client().get("/alerts")
        assert anonymous.status_code in (302, 303) and "/login" in anonymous.headers["Location"]
        viewer = site.login("vic", PASSWORD)
        assert 'href="/alerts"' in viewer.get("/").get_data(as_text=True)  # in the nav
        page = viewer.get("/alerts")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert f"webhook http://u:***@127.0.0.1:{hook.port}/p?token=***" in html
        assert "failed, failing:2" in html  # the events sent
        assert html.count('class="badge status-delivered"') == 1
        assert html.count('class="badge status-failed"') == 1
        assert "cannot reach the webhook" in html
        no_secret_in([html], SECRETS)
        assert site.login("alice", PASSWORD).get("/alerts").status_code == 200
    finally:
        site.state.dispose()
