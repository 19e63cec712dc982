"""The job lock: one holder at a time, released on release() and when its process dies."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from syncd.locks import JobLock


@pytest.mark.parametrize("kind", ["postgres", "mysql", "sqlite"])
def test_second_holder_is_refused_until_release(databases, kind):
    url = databases.make(kind)
    engine_a, engine_b = sa.create_engine(url), sa.create_engine(url)
    first, second = JobLock(engine_a, "orders"), JobLock(engine_b, "orders")
    try:
        assert first.acquire()
        assert not second.acquire()
        assert JobLock(engine_b, "customers").acquire()  # other jobs are not blocked
        first.release()
        assert second.acquire()
        second.release()
    finally:
        first.release()
        engine_a.dispose()
        engine_b.dispose()


@pytest.mark.parametrize("kind", ["postgres", "mysql", "sqlite"])
def test_lock_dies_with_its_process(databases, kind):
    url = databases.make(kind)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time, sqlalchemy as sa; from syncd.locks import JobLock;"
         f"lock = JobLock(sa.create_engine({url!r}), 'orders');"
         "print(lock.acquire(), flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    engine = sa.create_engine(url)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        assert not JobLock(engine, "orders").acquire()
        holder.kill()
        holder.wait(timeout=10)
        lock = JobLock(engine, "orders")
        for _ in range(50):  # the server notices the closed connection within moments
            if lock.acquire():
                break
            time.sleep(0.1)
        else:
            pytest.fail("lock still held after its process was killed")
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()
        engine.dispose()
