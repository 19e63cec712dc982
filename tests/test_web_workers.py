"""The workers page: workers alive and what each runs, the queue's depth and the runs waiting,
the time of beat's last tick; /readyz reports the broker too."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from celery_helpers import job_block, running_services, runs, sqlite_source_jobs, trigger, wait_for
from conftest import RABBITMQ_URL, require_service
from sample_tables import create_orders
from web_helpers import PASSWORD, login


@pytest.fixture
def services() -> Iterator[Any]:
    yield from running_services()


def _client(env: Any, **overrides: Any) -> Any:
    from syncd import get_state
    from syncd.web.accounts import AccountError, create_user

    app = env.app(**overrides)
    try:
        create_user(get_state(app), "vic", PASSWORD, "viewer")
    except AccountError:
        pass  # created for an earlier client of this test
    client = app.test_client()
    assert login(client, "vic", PASSWORD).status_code == 303
    return client


def _worker_row(page: str, name: str) -> str:
    start = page.index(f'<strong class="worker-name">{name}</strong>')
    return page[start:page.index("</tr>", start)]


def test_workers_page_shows_the_worker_its_run_the_queue_and_beat(databases, make_env,
                                                                   services):
    source = databases.mysql()
    create_orders(source, 200)
    env = make_env(databases.postgres(), sqlite_source_jobs(source, job_block("orders")))
    name = f"ux-{uuid.uuid4().hex[:8]}@testhost"
    client = _client(env)

    empty = client.get("/workers").get_data(as_text=True)
    assert "No worker has reported in the last day" in empty
    assert "no beat has ticked yet: no scheduled run starts" in empty

    blocker = sa.create_engine(source, poolclass=sa.pool.NullPool)
    with blocker.connect() as conn:
        # The source table is write-locked by the test: the run waits in its first read,
        # running, for as long as the test looks at the page.
        conn.exec_driver_sql("LOCK TABLES orders WRITE")
        services.worker(env, 1, "-n", name)
        services.beat(env)
        first = trigger(env, "orders")
        wait_for(lambda: [r for r in runs(env.local_url) if r["id"] == first
                          and r["status"] == "running"], 30, lambda: str(runs(env.local_url)))
        second = trigger(env, "orders")  # waits: the only worker process is busy
        page = wait_for(lambda: (lambda p: "last tick" in p and p)(
            client.get("/workers").get_data(as_text=True)), 30, "beat never ticked")
        conn.exec_driver_sql("UNLOCK TABLES")
    blocker.dispose()

    row = _worker_row(page, name)
    assert '<span class="badge status-succeeded">alive</span>' in row
    assert f'href="/runs/{first}">run #{first}</a> orders' in row
    assert "embedded SQLite broker cannot carry Celery&#39;s remote control" in page \
        or "embedded SQLite broker cannot carry Celery's remote control" in page
    assert re.search(r'<span id="queue-depth">1</span> message\(s\) waiting', page), page
    assert f'href="/runs/{second}">#{second}</a> orders (queued' in page
    beat = page[page.index('<dd id="beat">'):page.index("</dd>", page.index('<dd id="beat">'))]
    assert "last tick" in beat and re.search(r"\d+(ms|s) ago", beat), beat
    assert "not ticking" not in beat and "beats are ticking" not in beat


def test_workers_answer_celerys_ping_on_rabbitmq(databases, make_env, services):
    require_service("rabbitmq")
    env = make_env(databases.sqlite("local"))
    queue = f"syncd-test-{uuid.uuid4().hex[:10]}"
    env.extra_env.update(CELERY_BROKER_URL=RABBITMQ_URL, SYNCD_QUEUE=queue)
    name = f"ux-{uuid.uuid4().hex[:8]}@testhost"
    try:
        services.worker(env, 1, "-n", name)
        page = _client(env).get("/workers").get_data(as_text=True)
    finally:
        _delete_rabbitmq_queue(queue)
    row = _worker_row(page, name)
    assert "answered ping" in row and "alive" in row and "idle" in row
    assert "guest:***@127.0.0.1:5672" in page and "guest:guest" not in page
    assert f"<code>{queue}</code>" in page


def _delete_rabbitmq_queue(queue: str) -> None:
    from kombu import Connection

    with Connection(RABBITMQ_URL) as conn:
        channel = conn.channel()
        channel.queue_delete(queue)
        channel.exchange_delete(queue)


def test_readyz_is_503_with_the_reason_when_the_broker_is_down(databases, make_env) -> None:
    env = make_env(databases.sqlite("local"))
    assert env.app().test_client().get("/readyz").status_code == 200
    broker = "amqp://guest:brokersecret@127.0.0.1:1//"
    response = env.app(CELERY_BROKER_URL=broker).test_client().get("/readyz")
    body = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "broker unreachable (amqp://guest:***@127.0.0.1:1//)" in body
    assert "Connection refused" in body
    assert "brokersecret" not in body
    page = _client(env, CELERY_BROKER_URL=broker).get("/workers")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "broker unreachable (amqp://guest:***@127.0.0.1:1//)" in text
    assert "brokersecret" not in text
