"""The job page's chart: duration and rows read per run, as inline SVG geometry.

``run_chart`` is pure: it turns runs into bars (coordinates, CSS class, tooltip)
that the template draws; no JavaScript, no inline styles (the CSP forbids them).
When the tallest bar is many times the shortest (one full load among small
incremental runs), a panel switches to a logarithmic scale so the small runs stay
visible; full loads also carry a mark of their own under the bar.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from syncd.models import SyncRun
from syncd.web.display import words

WIDTH = 720
PANEL_HEIGHT = 90
MARK_HEIGHT = 6  # the mark of a full load, under its bar
GAP = 1.0
MIN_SLOTS = 50  # a few runs make narrow bars on the right, not one wide block
LOG_RATIO = 20.0  # tallest / shortest non-zero value from which the scale is logarithmic


@dataclass(frozen=True)
class Bar:
    run_id: int
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str
    full_load: bool = False


@dataclass(frozen=True)
class Panel:
    label: str
    top_value: str  # the largest value shown, in words
    bars: list[Bar]
    log_scale: bool = False

    @property
    def scale_text(self) -> str:
        """How to read the panel's heights, e.g. "top of scale 12m 3s, log scale"."""
        return f"top of scale {self.top_value}{', log scale' if self.log_scale else ''}"


@dataclass(frozen=True)
class Chart:
    width: int
    panel_height: int
    panels: list[Panel]
    mark_height: int = MARK_HEIGHT

    @property
    def has_full_loads(self) -> bool:
        return any(bar.full_load for panel in self.panels for bar in panel.bars)


def seconds_text(value: float) -> str:
    """A duration for the scale: ``850ms``, ``5.0s``, ``2m 5s``."""
    return f"{value:.1f}s" if 1 <= value < 10 else words(value)


def use_log_scale(values: Sequence[float | None]) -> bool:
    """True when the tallest non-zero value is at least LOG_RATIO times the shortest."""
    positive = [v for v in values if v is not None and v > 0]
    return len(positive) >= 2 and max(positive) >= LOG_RATIO * min(positive)


def bar_height(value: float | None, top: float, log_scale: bool) -> float:
    """The height of a bar of ``value`` when ``top`` fills the panel (at least 1 if non-zero)."""
    if value is None or value <= 0 or top <= 0:
        return 0.0
    if log_scale:
        smallest = top / 10 ** 6  # six decades: below that a bar is a sliver anyway
        ratio = math.log10(max(value, smallest) / smallest) / math.log10(top / smallest)
    else:
        ratio = value / top
    return max(PANEL_HEIGHT * ratio, 1.0)


def _panel(label: str, runs: Sequence[SyncRun], value: Callable[[SyncRun], float | None],
           fmt: Callable[[float], str], titles: list[str]) -> Panel:
    values = [value(r) for r in runs]
    top = max((v for v in values if v is not None), default=0.0)
    log_scale = use_log_scale(values)
    slots = max(len(runs), MIN_SLOTS)
    step = WIDTH / slots
    width = max(step - GAP, 1.0)
    first = slots - len(runs)
    bars = []
    for i, (run, v) in enumerate(zip(runs, values, strict=True)):
        height = bar_height(v, top, log_scale)
        css = f"bar status-{run.status}" + (" full" if run.full_load else "")
        bars.append(Bar(run_id=run.id, x=round((first + i) * step, 2),
                        y=round(PANEL_HEIGHT - height, 2), width=round(width, 2),
                        height=round(height, 2), css=css, title=titles[i],
                        full_load=run.full_load))
    return Panel(label=label, top_value=fmt(top) if top > 0 else "0", bars=bars,
                 log_scale=log_scale)


def run_chart(runs: Sequence[SyncRun]) -> Chart:
    """Bars of duration and of rows read for ``runs`` (given newest first, drawn oldest left)."""
    ordered = list(reversed(runs))
    titles = [
        f"run #{r.id} {r.status}{' (full load)' if r.full_load else ''}: "
        + (words(r.duration_s) if r.duration_s is not None else "no duration")
        + f", {r.rows_read or 0:,} rows read"
        for r in ordered
    ]
    return Chart(width=WIDTH, panel_height=PANEL_HEIGHT, panels=[
        _panel("Duration", ordered, lambda r: r.duration_s, seconds_text, titles),
        _panel("Rows read", ordered, lambda r: float(r.rows_read or 0),
               lambda v: f"{int(v):,}", titles),
    ])
