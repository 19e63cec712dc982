"""Keep the demo shop changing (new orders, status changes, new customers, deletes) and
write the jobs file that syncs it."""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from syncd.demo.source import ORDER_STATUSES, connect, customer_row, order_row, stamp

log = logging.getLogger(__name__)

DEMO_JOBS = """\
# Demo jobs written by `syncd up --demo`: a shop database (SQLite) that keeps changing.
# Copy this file to jobs.toml and point the source at your own database to sync real data
# (see jobs.example.toml for every field).

[sources.shop]
url = "sqlite:///{source}"

[[jobs]]
name = "orders"
source = "shop"
table = "orders"
target = "shop_orders"
mode = "incremental"
cursor = "updated_at"
schedule = "10s"
batch_size = 5000
lookback = "5s"
deletes = "reconcile"        # cancelled orders are deleted at the source
timeout = "5m"

[[jobs]]
name = "customers"
source = "shop"
table = "customers"
target = "shop_customers"
cursor = "updated_at"
schedule = "15s"
batch_size = 5000
lookback = "5s"

[[jobs]]
name = "products"
source = "shop"
table = "products"
target = "shop_products"
mode = "full"                # small table: reloaded and swapped in whole
schedule = "30s"
"""


def write_demo_jobs(path: Path, source: Path) -> Path:
    """Write the demo jobs file for the shop at ``source``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DEMO_JOBS.format(source=source.resolve()), encoding="utf-8")
    return path


class DemoWriter:
    """A background thread that changes the demo shop every ``interval`` seconds."""

    def __init__(self, path: Path, interval: float = 1.0, seed: int | None = None) -> None:
        self.path = path
        self.interval = interval
        self.rnd = random.Random(seed)
        self.changes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="demo-writer", daemon=True)

    def start(self) -> None:
        """Start writing in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop writing and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        conn = connect(self.path)
        try:
            while not self._stop.wait(self.interval):
                try:
                    self.step(conn)
                except sqlite3.OperationalError as exc:  # busy: try again next tick
                    log.warning("demo writer: %s", exc)
        finally:
            conn.close()

    def step(self, conn: sqlite3.Connection) -> None:
        """One burst of shop activity, in one transaction."""
        rnd, now = self.rnd, stamp(datetime.now(UTC))
        conn.execute("BEGIN IMMEDIATE")
        try:
            customers = conn.execute("SELECT MAX(id) FROM customers").fetchone()[0] or 0
            if rnd.random() < 0.3:
                customers += 1
                conn.execute("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)",
                             customer_row(rnd, customers, datetime.now(UTC)))
            if rnd.random() < 0.3:
                cid = rnd.randint(1, customers)
                conn.execute("UPDATE customers SET email = ?, updated_at = ? WHERE id = ?",
                             (f"customer{cid}.{rnd.randint(1, 999)}@example.net", now, cid))
            prices = [p for (p,) in conn.execute("SELECT price FROM products ORDER BY id")]
            last = conn.execute("SELECT MAX(id) FROM orders").fetchone()[0] or 0
            new = rnd.randint(1, 5)
            conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                order_row(rnd, last + i, customers, prices, datetime.now(UTC))
                for i in range(1, new + 1)
            ])
            self._advance_orders(conn, last, now)
            if rnd.random() < 0.1:
                pid = rnd.randint(1, len(prices))
                conn.execute("UPDATE products SET price = ROUND(price * ?, 2), stock = ?, "
                             "updated_at = ? WHERE id = ?",
                             (rnd.uniform(0.9, 1.1), rnd.randint(0, 500), now, pid))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.changes += 1

    def _advance_orders(self, conn: sqlite3.Connection, last: int, now: str) -> None:
        """Move a few recent orders along new -> paid -> shipped -> delivered; cancel some."""
        rnd = self.rnd
        for _ in range(rnd.randint(1, 4)):
            oid = rnd.randint(max(1, last - 500), last)
            row = conn.execute("SELECT status FROM orders WHERE id = ?", (oid,)).fetchone()
            if row is None or row[0] not in ORDER_STATUSES[:-1]:
                continue
            if row[0] == "new" and rnd.random() < 0.1:
                conn.execute("DELETE FROM orders WHERE id = ?", (oid,))  # cancelled: gone
                continue
            following = ORDER_STATUSES[ORDER_STATUSES.index(row[0]) + 1]
            conn.execute("UPDATE orders SET status = ?, updated_at = ? WHERE id = ?",
                         (following, now, oid))
