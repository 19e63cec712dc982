"""``syncd verify``: compare the local table with the source table, and repair it.

1. The key space is cut into segments (``segments.py``). Each database computes,
   per segment, a row count and a checksum of the canonical text of every
   compared column (``checksum.py``); both sides run at the same time.
2. A segment whose count or checksum differs is split again (FANOUT parts) until
   it holds at most LEAF_ROWS rows; then its rows are read from both sides and
   compared value by value (``compare.py``). A checksum that differs for equal
   values (a text form the two databases write differently) costs this fallback,
   never a false difference.
3. With ``repair``, the differing rows are re-read from the source and upserted,
   the extra ones deleted (``repair.py``), and the same segments compared again.

Memory holds a few segments and the rows of at most FETCH_ROWS rows per side;
every read is its own short transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Connection, Engine, MetaData, Table, inspect, text

from syncd.engine import checksum as ck
from syncd.engine.canonical import rule_for
from syncd.engine.catalog import SourceColumn, describe_columns
from syncd.engine.compare import CHANGED, EXTRA, MISSING, Difference, RowRules, compare_rows
from syncd.engine.connect import translated_errors
from syncd.engine.context import SyncContext
from syncd.engine.errors import ConfigError, SyncError
from syncd.engine.readers import select_list
from syncd.engine.repair import repair_rows
from syncd.engine.schema import plan_columns, reflect_source
from syncd.engine.segments import LANES, LEAF_ROWS, KeyHashes, KeyRanges, Segment, Side
from syncd.engine.spec import Progress, ProgressCallback, TableSync
from syncd.engine.typemap import ColumnPlan, plan_column

FETCH_ROWS = 20000  # rows per side read at once for the row-by-row comparison
EXAMPLES = 100  # differing keys kept in the report


@dataclass
class VerifyReport:
    """What one verify found (and repaired)."""

    strategy: str = ""  # "key ranges" | "key hashes"
    rows_compared: int = 0
    missing: int = 0  # rows of the source missing locally
    extra: int = 0  # local rows whose key the source does not have
    changed: int = 0  # rows with different values
    rows_repaired: int = 0
    remaining: int = 0  # differences left after the run (after repair, if any)
    segments: int = 0  # segments measured on both sides
    segments_row_by_row: int = 0  # of them, compared row by row (checksums differed)
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows_different(self) -> int:
        return self.missing + self.extra + self.changed

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "missing_locally": self.missing,
                "extra_locally": self.extra, "different_values": self.changed,
                "remaining": self.remaining, "segments": self.segments,
                "segments_row_by_row": self.segments_row_by_row, "examples": self.examples}


@dataclass(frozen=True)
class VerifyOptions:
    """How to verify: repair or only report, who to tell about progress, the write guard."""

    repair: bool = False
    on_progress: ProgressCallback | None = None
    guard: Callable[[Connection], None] | None = None


def verify_table(spec: TableSync, source: Engine, local: Engine,
                 options: VerifyOptions = VerifyOptions(),
                 progress: Progress | None = None) -> VerifyReport:
    """Compare (and repair) the job's local table against its source table."""
    progress = progress or Progress()
    progress.phase = "verify"
    src = reflect_source(spec, source)
    plans = plan_columns(src, local.dialect.name, spec)
    ctx = SyncContext(spec, source, local, src, progress, plans, options.on_progress,
                      options.guard)
    with translated_errors("local database"):
        sides = _sides(ctx)
    run = _Verify(ctx, sides, options.repair)
    with ThreadPoolExecutor(max_workers=2 * LANES, thread_name_prefix="syncd-verify") as pool, \
            translated_errors(f"source table {spec.qualified_table} or local table {spec.target}"):
        ranged = key_ranged(ctx)
        run.strategy = KeyRanges(sides, pool) if ranged else KeyHashes(sides, pool)
        run.report.strategy = "key ranges" if ranged else "key hashes"
        run.walk()
    return run.report


def _sides(ctx: SyncContext) -> tuple[Side, Side]:
    spec, src, plans = ctx.spec, ctx.src, ctx.plans
    with ctx.local.connect() as conn:
        if not inspect(conn).has_table(spec.target):
            raise SyncError(f"local table {spec.target} does not exist: run a sync of job "
                            f'"{spec.job}" first')
        catalog = describe_columns(conn, spec.target, None)
        local_charsets = _charsets(conn, spec.target, None)
        local_innodb = _innodb(conn, spec.target, None)
    lacking = [name for name in src.columns if name not in catalog]
    if lacking:
        raise ConfigError(f"local table {spec.target} lacks column(s) {', '.join(lacking)} "
                          "of the source: run a sync of the job first")
    with ctx.source.connect() as conn:
        source_charsets = _charsets(conn, spec.table, spec.schema)
        source_innodb = _innodb(conn, spec.table, spec.schema)
    rules = [rule_for(p, _local_scale(p, catalog[p.name])) for p in plans]
    key_index = [src.columns.index(name) for name in src.primary_key]
    shifted = spec.source_timezone if spec.source_timezone != "UTC" else None
    source_cols, local_cols = [], []
    for p, rule in zip(plans, rules):
        held = catalog[p.name]
        key = p.name in src.primary_key
        same = p.source.dialect == held.dialect and p.source.spelling == held.spelling
        source_cols.append(ck.Column(
            _quote(ctx.source, p.name), p.source, rule,
            shifted if p.family == "datetime" else None, key, same, source_charsets.get(p.name)))
        local_cols.append(ck.Column(_quote(ctx.local, p.name), held, rule, None, key, same,
                                    local_charsets.get(p.name)))
    local_table = Table(spec.target, MetaData(), *(Column(name) for name in src.columns))
    local_plans = [plan_column(catalog[p.name], ctx.local.dialect.name) for p in plans]
    key_rules = tuple(rules[i] for i in key_index)
    converters = tuple(p.convert for p in plans)
    source = Side("source", ctx.source, src.table, source_cols, key_index,
                  select_list(src.cols(), plans),
                  ck.PythonSide(tuple(rules), key_rules, _style(ctx.local), converters,
                                tuple(converters[i] for i in key_index)), source_innodb)
    local = Side("local", ctx.local, local_table, local_cols, key_index,
                 select_list([local_table.c[name] for name in src.columns], local_plans),
                 ck.PythonSide(tuple(rules), key_rules, _style(ctx.source)), local_innodb)
    source.check_utf8()
    local.check_utf8()
    return source, local


def key_ranged(ctx: SyncContext) -> bool:
    """Segments are ranges of the key itself (one integer column), else of key hashes."""
    key = ctx.key_plans()
    return len(key) == 1 and key[0].family in ("int", "year")


def key_sides(ctx: SyncContext) -> tuple[Side, Side]:
    """Both sides narrowed to the primary-key columns (reconcile compares keys alone)."""
    source, local = _sides(ctx)
    return source.keys_only(), local.keys_only()


def _quote(engine: Engine, name: str) -> str:
    return str(engine.dialect.identifier_preparer.quote(name))


def _style(engine: Engine) -> str:
    """How the database writes floats: "mysql", "postgresql" (SQLite: as PostgreSQL)."""
    return "mysql" if engine.dialect.name in ("mysql", "mariadb") else "postgresql"


def _innodb(conn: Connection, table: str, schema: str | None) -> bool:
    """MySQL/MariaDB: the table is InnoDB (rows clustered by primary key)."""
    if conn.dialect.name not in ("mysql", "mariadb"):
        return False
    engine = conn.execute(text(
        "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
        "COALESCE(:schema, DATABASE()) AND TABLE_NAME = :table"),
        {"schema": schema, "table": table}).scalar()
    return str(engine or "").lower() == "innodb"


def _charsets(conn: Connection, table: str, schema: str | None) -> dict[str, str]:
    """MySQL/MariaDB: each text column's character set (other databases: none)."""
    if conn.dialect.name not in ("mysql", "mariadb"):
        return {}
    rows = conn.execute(text(
        "SELECT COLUMN_NAME, CHARACTER_SET_NAME FROM information_schema.COLUMNS WHERE "
        "TABLE_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :table "
        "AND CHARACTER_SET_NAME IS NOT NULL"), {"schema": schema, "table": table})
    return {str(name): str(charset) for name, charset in rows}


def _local_scale(plan: ColumnPlan, local: SourceColumn) -> int | None:
    """The decimals every value of a decimal column has locally (None: not fixed)."""
    if plan.family != "decimal":
        return None
    if local.dialect == "sqlite":  # text: the source's own digits
        fixed = plan.source.dialect != "sqlite" and plan.source.precision is not None
        return plan.source.scale if fixed else None
    return local.scale if local.precision is not None else None


class _Verify:
    """One verify's walk over the segments."""

    def __init__(self, ctx: SyncContext, sides: tuple[Side, Side], repair: bool) -> None:
        self.ctx = ctx
        self.sides = sides
        self.repair = repair
        self.report = VerifyReport()
        self.strategy: KeyRanges | KeyHashes
        plans = ctx.plans
        self.rules = RowRules(
            names=tuple(p.name for p in plans), rules=tuple(c.rule for c in sides[0].columns),
            convert=tuple(p.convert for p in plans), key_index=tuple(sides[0].key_index),
            store_null=ctx.spec.on_unrepresentable == "null")

    def walk(self) -> None:
        for segments in self._top():
            self.report.rows_compared += sum(s.rows for s in segments)
            self.ctx.progress.rows_read = self.report.rows_compared
            self._descend(segments)
            self.ctx.report()

    def _top(self) -> Iterator[list[Segment]]:
        """The top-level segments, measured, a chunk at a time."""
        if isinstance(self.strategy, KeyRanges):
            ranges = self.strategy.top_ranges()
            for start in range(0, len(ranges), 64):
                yield self.strategy.measure(ranges[start:start + 64])
        else:
            yield self.strategy.top()

    def _descend(self, segments: Sequence[Segment]) -> None:
        self.report.segments += len(segments)
        differing = [s for s in segments if s.differs]
        big = [s for s in differing if s.rows > LEAF_ROWS and self.strategy.splittable(s)]
        self._row_by_row([s for s in differing if s not in big])
        chunk = 16 if isinstance(self.strategy, KeyRanges) else 4096
        for start in range(0, len(big), chunk):
            self._descend(self.strategy.split(big[start:start + chunk]))

    def _row_by_row(self, leaves: Sequence[Segment]) -> None:
        group: list[Segment] = []
        for segment in leaves:
            group.append(segment)
            if sum(s.rows for s in group) >= FETCH_ROWS:
                self._compare(group)
                group = []
        if group:
            self._compare(group)

    def _differences(self, group: Sequence[Segment]) -> list[Difference]:
        source, local = self.sides

        def read(side: Side) -> list[Any]:
            with side.reading() as conn:
                return self.strategy.rows(side, conn, group)

        futures = [self.strategy.pool.submit(read, side) for side in (source, local)]
        return compare_rows(self.rules, futures[0].result(), futures[1].result())

    def _compare(self, group: Sequence[Segment]) -> None:
        self.report.segments_row_by_row += len(group)
        found = self._differences(group)
        if not found:
            return
        left = found
        if self.repair:
            repair_rows(self.ctx, found)
            # The segments again: their checksums, and the rows of those still differing.
            still = [s for s in self.strategy.remeasure(group) if s.differs]
            left = self._differences(still) if still else []
            fixed = {_ident(d) for d in found} - {_ident(d) for d in left}
            self.report.rows_repaired += len(fixed)
        remaining = {_ident(d) for d in left}
        for d in found:
            kind = {MISSING: "missing", EXTRA: "extra", CHANGED: "changed"}[d.kind]
            setattr(self.report, kind, getattr(self.report, kind) + 1)
            if len(self.report.examples) < EXAMPLES:
                example = d.to_dict()
                if self.repair:
                    example["repaired"] = _ident(d) not in remaining
                self.report.examples.append(example)
        self.report.remaining += len(left)


def _ident(d: Difference) -> tuple[str, ...]:
    return tuple(d.key.values())
