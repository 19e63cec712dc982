"""The targets of issue 10, judged on the figures of one run, and the results files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from benchlib import Figure

LIMITS = {"postgresql": "file->postgresql", "mariadb": "file->mariadb", "sqlite": "file->sqlite"}
NARROW_MIB, WIDE_ROW_MIB = 150, 300


@dataclass
class Target:
    text: str
    measured: str
    passed: bool | None  # None: not measured


def _find(figures: list[Figure], name: str, pair: str | None = None) -> Figure | None:
    for fig in figures:
        if fig.group == "baseline":
            continue
        if fig.name.startswith(name) and (pair is None or fig.pair == pair) and fig.samples:
            return fig
    return None


def limit_of(figures: list[Figure], pair: str) -> Figure | None:
    return _find(figures, "", LIMITS[pair.split("->")[1]])


def best_peer(figures: list[Figure], pair: str) -> Figure | None:
    peers = [f for f in figures if f.group == "peer" and f.pair == pair and f.samples]
    return max(peers, key=lambda f: f.rate, default=None)


def _ratio(target: str, fig: Figure | None, other: Figure | None, at_least: float,
           ) -> Target:
    if fig is None or other is None or not other.rate:
        return Target(target, "not measured", None)
    ratio = fig.rate / other.rate
    return Target(target, f"{ratio:.2f}x", ratio >= at_least)


def targets(figures: list[Figure]) -> list[Target]:
    """Every target of the issue, measured or not (``[baseline]`` cases aside)."""
    figures = [f for f in figures if not f.name.endswith(" [baseline]")]
    my_pg = "mariadb->postgresql"
    pymysql = _find(figures, "syncd full load (PyMySQL)", my_pg)
    fast = _find(figures, "syncd full load (fast reader)", my_pg)
    limit_pg = limit_of(figures, my_pg)
    out = [
        _ratio("MariaDB -> PostgreSQL full load, PyMySQL >= 0.40x COPY", pymysql, limit_pg,
               0.40),
        _ratio("MariaDB -> PostgreSQL full load, fast reader >= 0.70x COPY", fast, limit_pg,
               0.70),
        _ratio("... >= 2x pgloader", fast, _find(figures, "pgloader"), 2.0),
        _ratio("... >= 15x the SQLAlchemy upsert loop", fast,
               _find(figures, "SQLAlchemy Core upsert loop"), 15.0),
        _ratio("PostgreSQL -> PostgreSQL >= 0.9x pg_dump | psql",
               _find(figures, "syncd full load", "postgresql->postgresql"),
               _find(figures, "pg_dump"), 0.9),
        _ratio("MariaDB -> MariaDB >= 0.5x mariadb-dump | mariadb",
               _find(figures, "syncd full load", "mariadb->mariadb"),
               _find(figures, "mariadb-dump"), 0.5),
        _ratio("MariaDB -> SQLite >= 0.5x sqlite3 .import",
               _find(figures, "syncd full load", "mariadb->sqlite"),
               limit_of(figures, "mariadb->sqlite"), 0.5),
    ]
    full = fast or pymysql
    inc1 = _find(figures, "syncd incremental, 1,000 changed of", my_pg)
    incs = [f for f in figures if f.name.startswith("syncd incremental") and f.samples]
    inc4 = incs[1] if len(incs) > 1 else None
    rec = _find(figures, "syncd reconcile")
    if full and inc1:
        share = inc1.seconds / full.seconds
        out.append(Target("incremental, 1,000 changed rows: < 1% of the full load",
                          f"{share:.1%} ({inc1.seconds * 1000:.0f} ms of "
                          f"{full.seconds:.2f} s)", share < 0.01))
        out.append(Target("whole `syncd run` process of that run < 1 s",
                          f"{inc1.wall:.2f} s", inc1.wall < 1.0))
    if inc1 and inc4:
        growth = inc4.seconds / inc1.seconds
        out.append(Target("incremental in 4x the rows < 1.5x the time",
                          f"{growth:.2f}x", growth < 1.5))
    if full and rec:
        share = rec.seconds / full.seconds
        out.append(Target("reconcile finding 1,000 deleted rows < 25% of the full load",
                          f"{share:.1%}", share < 0.25))
    narrow = [f for f in figures if f.group == "syncd" and "64 KB" not in f.name and f.samples]
    if narrow:
        worst = max(narrow, key=lambda f: f.peak_mib)
        out.append(Target(f"peak memory of `syncd run`, narrow tables < {NARROW_MIB} MB",
                          f"{worst.peak_mib:.0f} MiB (largest: {worst.name}, {worst.pair})",
                          worst.peak_mib < NARROW_MIB))
    blobs = _find(figures, "syncd full load, 64 KB rows")
    if blobs:
        out.append(Target(f"peak memory of `syncd run`, 64 KB rows < {WIDE_ROW_MIB} MB",
                          f"{blobs.peak_mib:.0f} MiB", blobs.peak_mib < WIDE_ROW_MIB))
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(fig: Figure, figures: list[Figure]) -> str:
    if not fig.samples:
        why = _cell(fig.skipped or "not measured")[:200]
        return f"| {_cell(fig.name)} | {fig.pair} | {why} | | | | | | |"
    low, high = fig.spread
    limit = limit_of(figures, fig.pair) if "->" in fig.pair else None
    vs_limit = f"{fig.rate / limit.rate:.2f}x" if limit and fig.group != "limit" and \
        "incremental" not in fig.name and "reconcile" not in fig.name else ""
    peer = best_peer(figures, fig.pair) if fig.group == "syncd" else None
    vs_peer = f"{fig.rate / peer.rate:.2f}x ({_cell(peer.name)})" if peer and vs_limit else ""
    wall = f"{fig.wall:.2f}" if fig.group in ("syncd", "baseline") else ""
    return (f"| {_cell(fig.name)} | {fig.pair} | {fig.seconds:.2f} ({low:.2f}-{high:.2f}) | "
            f"{fig.rows:,} | {fig.rate:,.0f} | {vs_limit} | {vs_peer} | {fig.peak_mib:.0f} | "
            f"{wall} |")


def markdown(figures: list[Figure], results: list[Target], meta: dict[str, object]) -> str:
    lines = [
        f"Run of {meta['started']} ({meta['minutes']} min): {meta['rows']:,} rows "
        f"(30-column table {meta['wide_rows']:,} rows, 64 KB rows {meta['blob_rows']:,}), "
        f"{meta['rounds']} round(s), median (range). Machine: {meta['machine']}. "
        + str(meta.get("note") or ""),
        "",
        "| case | pair | seconds | rows | rows/s | vs limit | vs best peer | peak MiB | "
        "`syncd run` wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(fig, figures) for fig in figures]
    lines += ["", "| target | measured | |", "|---|---|---|"]
    for t in results:
        verdict = "not measured" if t.passed is None else ("pass" if t.passed else "miss")
        lines.append(f"| {_cell(t.text)} | {_cell(t.measured)} | {verdict} |")
    return "\n".join(lines) + "\n"


def write_results(folder: Path, figures: list[Figure], results: list[Target],
                  meta: dict[str, object], quick: bool = False, partial: bool = False) -> str:
    """bench/results/latest.md and latest.json (quick runs: quick.md, quick.json; runs of
    some cases or against a baseline: partial.md, partial.json)."""
    folder.mkdir(exist_ok=True)
    md = markdown(figures, results, meta)
    stem = "partial" if partial else "quick" if quick else "latest"
    (folder / f"{stem}.md").write_text(md)
    data = {
        "meta": meta,
        "cases": [{"name": f.name, "group": f.group, "pair": f.pair, "rows": f.rows,
                   "skipped": f.skipped,
                   "rounds": [{"seconds": s.seconds, "wall": s.wall, "peak_kib": s.peak_kib}
                              for s in f.samples],
                   "median_s": f.seconds if f.samples else None,
                   "rows_per_s": f.rate if f.samples else None} for f in figures],
        "targets": [{"target": t.text, "measured": t.measured, "pass": t.passed}
                    for t in results],
    }
    (folder / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n")
    return md
