"""The job page's chart: duration and rows read per run, as inline SVG geometry.

``run_chart`` is pure: it turns runs into bars (coordinates, CSS class, tooltip)
that the template draws; no JavaScript, no inline styles (the CSP forbids them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from syncd.models import SyncRun

WIDTH = 720
PANEL_HEIGHT = 90
GAP = 1.0
MIN_SLOTS = 50  # a few runs make narrow bars on the right, not one wide block


@dataclass(frozen=True)
class Bar:
    run_id: int
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Panel:
    label: str
    top_value: str  # the value at the top of the panel's scale
    bars: list[Bar]


@dataclass(frozen=True)
class Chart:
    width: int
    panel_height: int
    panels: list[Panel]


def _panel(label: str, runs: Sequence[SyncRun], value: Callable[[SyncRun], float | None],
           fmt: Callable[[float], str], titles: list[str]) -> Panel:
    values = [value(r) for r in runs]
    top = max((v for v in values if v is not None), default=0.0) or 1.0
    slots = max(len(runs), MIN_SLOTS)
    step = WIDTH / slots
    width = max(step - GAP, 1.0)
    first = slots - len(runs)
    bars = []
    for i, (run, v) in enumerate(zip(runs, values, strict=True)):
        height = 0.0 if v is None else max(PANEL_HEIGHT * v / top, 1.0 if v > 0 else 0.0)
        bars.append(Bar(run_id=run.id, x=round((first + i) * step, 2),
                        y=round(PANEL_HEIGHT - height, 2), width=round(width, 2),
                        height=round(height, 2),
                        css=f"bar status-{run.status}", title=titles[i]))
    return Panel(label=label, top_value=fmt(top), bars=bars)


def run_chart(runs: Sequence[SyncRun]) -> Chart:
    """Bars of duration and of rows read for ``runs`` (given newest first, drawn oldest left)."""
    ordered = list(reversed(runs))
    titles = [
        f"run #{r.id} {r.status}: "
        + (f"{r.duration_s:.1f}s" if r.duration_s is not None else "no duration")
        + f", {r.rows_read or 0:,} rows read"
        for r in ordered
    ]
    return Chart(width=WIDTH, panel_height=PANEL_HEIGHT, panels=[
        _panel("Duration", ordered, lambda r: r.duration_s, lambda v: f"{v:.1f}s", titles),
        _panel("Rows read", ordered, lambda r: float(r.rows_read or 0),
               lambda v: f"{int(v):,}", titles),
    ])
