"""The demo source database: a small shop (customers, products, orders) in a SQLite file."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

DEMO_TABLES = ("customers", "products", "orders")
SEED_CUSTOMERS = 2_000
SEED_PRODUCTS = 200
SEED_ORDERS = 20_000
ORDER_STATUSES = ("new", "paid", "shipped", "delivered")

SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    email VARCHAR(200) NOT NULL,
    country VARCHAR(2) NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_customers_updated_at_id ON customers (updated_at, id);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    sku VARCHAR(20) NOT NULL UNIQUE,
    name VARCHAR(200) NOT NULL,
    price NUMERIC(10, 2) NOT NULL,
    stock INTEGER NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    quantity INTEGER NOT NULL,
    amount NUMERIC(12, 2) NOT NULL,
    status VARCHAR(16) NOT NULL,
    note TEXT,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX ix_orders_updated_at_id ON orders (updated_at, id);
"""

FIRST = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Ken", "Margaret", "Linus", "Frances",
         "Dennis", "Radia", "Guido", "Karen", "Niklaus", "Sophie", "Tim", "Anita", "John"]
LAST = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Thompson", "Hamilton",
        "Torvalds", "Allen", "Ritchie", "Perlman", "van Rossum", "Jones", "Wirth", "Wilson"]
COUNTRIES = ["GB", "US", "DE", "FR", "NL", "SE", "JP", "BR", "IN", "ZA"]
GOODS = ["mug", "notebook", "keyboard", "lamp", "backpack", "headphones", "kettle", "chair",
         "monitor", "bottle", "umbrella", "desk", "cable", "charger", "jacket"]
ADJECTIVES = ["blue", "compact", "deluxe", "recycled", "wireless", "classic", "large", "tiny"]


def stamp(when: datetime) -> str:
    """A DATETIME value as SQLAlchemy's SQLite dialect writes it (UTC, microseconds)."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the demo source (WAL, so syncs read while the writer writes)."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def customer_row(rnd: random.Random, cid: int, when: datetime) -> tuple[object, ...]:
    """A customer with a plausible name and email."""
    first, last = rnd.choice(FIRST), rnd.choice(LAST)
    email = f"{first}.{last}.{cid}@example.com".lower().replace(" ", "")
    return (cid, f"{first} {last}", email, rnd.choice(COUNTRIES), stamp(when), stamp(when))


def order_row(rnd: random.Random, oid: int, customers: int, prices: list[float],
              when: datetime, status: str = "new") -> tuple[object, ...]:
    """An order of one product by one customer."""
    product = rnd.randrange(len(prices))
    quantity = rnd.randint(1, 5)
    note = rnd.choice([None, None, None, "gift wrap", "leave at the door", "urgent"])
    return (oid, rnd.randint(1, customers), product + 1, quantity,
            round(prices[product] * quantity, 2), status, note, stamp(when), stamp(when))


def create_demo_source(path: Path, seed: int = 1) -> bool:
    """Create and fill the demo shop at ``path``; False if it already exists."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=30)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    conn = connect(tmp)
    try:
        conn.executescript(SCHEMA)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)", [
            customer_row(rnd, i, start + timedelta(minutes=i)) for i in range(1, SEED_CUSTOMERS + 1)
        ])
        prices = [round(rnd.uniform(3, 400), 2) for _ in range(SEED_PRODUCTS)]
        conn.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?, ?)", [
            (i + 1, f"SKU-{i + 1:05d}", f"{rnd.choice(ADJECTIVES)} {rnd.choice(GOODS)}",
             prices[i], rnd.randint(0, 500), stamp(start)) for i in range(SEED_PRODUCTS)
        ])
        step = timedelta(days=30) / SEED_ORDERS
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            order_row(rnd, i, SEED_CUSTOMERS, prices, start + step * i,
                      rnd.choice(ORDER_STATUSES)) for i in range(1, SEED_ORDERS + 1)
        ])
        conn.execute("COMMIT")
    finally:
        conn.close()
    tmp.rename(path)
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    return True


def demo_counts(path: Path) -> dict[str, int]:
    """Rows per demo table."""
    conn = connect(path)
    try:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in DEMO_TABLES}
    finally:
        conn.close()
