"""A plain SQLAlchemy Core upsert loop, MariaDB -> PostgreSQL (what a hand-written job does).

Usage: sqla_loop.py SOURCE_URL DEST_URL TABLE ROWS
Reads ROWS rows in key order, 10,000 at a time, and upserts each batch by executing
insert().on_conflict_do_update() with the batch's list of rows.
"""

from __future__ import annotations

import sys

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert


def main() -> None:
    source_url, dest_url, table_name, rows = sys.argv[1:5]
    source, dest = sa.create_engine(source_url), sa.create_engine(dest_url)
    table = sa.Table(table_name, sa.MetaData(), autoload_with=source)
    columns = [sa.Column(c.name, c.type.as_generic(), primary_key=c.primary_key)
               for c in table.columns]
    target = sa.Table(table_name, sa.MetaData(), *columns)
    with dest.begin() as conn:
        target.drop(conn, checkfirst=True)
        target.create(conn)
    query = sa.select(table).order_by(*table.primary_key.columns).limit(int(rows))
    pk = [c.name for c in table.primary_key.columns]
    upsert = insert(target)
    upsert = upsert.on_conflict_do_update(
        index_elements=pk,
        set_={c.name: upsert.excluded[c.name] for c in target.columns if c.name not in pk})
    with source.connect() as src:
        result = src.execution_options(stream_results=True).execute(query)
        while batch := result.fetchmany(10000):
            with dest.begin() as conn:
                conn.execute(upsert, [row._asdict() for row in batch])
    source.dispose()
    dest.dispose()


if __name__ == "__main__":
    main()
