"""Time plots on the braille canvas: series of (time, value), labelled axes, a legend.

Pure (no Textual): the Telemetry pane draws its plot with `draw_plot` and shows the
canvas; the tests check dots and labels on it. The layout of a `width` x `height` cell
plot, top to bottom: legend rows (one entry per series: its style's mark, label, min and
max of its visible values, unit), the plotting area with the value axis labels at its
left, and the time axis row (UTC times on round ticks).

Series sharing a unit (or a single series) share one value scale, labelled on the axis;
series of different units are each scaled to their own min and max (the legend gives
them). Consecutive points further apart than `gap_s` (by default five times the series'
median spacing) are not joined: a loss of signal shows as a gap, not a straight line.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from groundctl.ui.braille import Canvas

# Distinct series styles, in order; none of them is a limit colour (yellow, red).
STYLES = ("bright_cyan", "bright_magenta", "bright_blue", "bright_white")
TICK_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)
GAP_FACTOR = 5.0
MAX_LEGEND_ROWS = 2


@dataclass(frozen=True)
class Series:
    """One line of the plot: (time_s, value) points in time order."""

    label: str
    points: Sequence[tuple[float, float]]
    style: str = ""
    unit: str = ""


@dataclass(frozen=True)
class Area:
    """The plotting area, in cells of the canvas."""

    col: int
    row: int
    cols: int
    rows: int


@dataclass
class TimePlot:
    """A drawn plot: the canvas, where its plotting area is, and each series' scale
    (low, high: the value at the bottom and the top dot row)."""

    canvas: Canvas
    area: Area
    start_s: float
    end_s: float
    scales: list[tuple[float, float]] = field(default_factory=list)
    ranges: list[tuple[float, float] | None] = field(default_factory=list)

    def dot(self, index: int, time_s: float, value: float) -> tuple[float, float]:
        """Where (time_s, value) of series `index` lands, in canvas dots (unrounded)."""
        low, high = self.scales[index]
        a = self.area
        x = 2 * a.col + (time_s - self.start_s) / (self.end_s - self.start_s) * (2 * a.cols - 1)
        y = 4 * a.row + (high - value) / (high - low) * (4 * a.rows - 1)
        return x, y


def format_number(value: float) -> str:
    """A short label for a value: integers as they are, others to 4 significant digits."""
    if value == int(value) and abs(value) < 1e7:
        return str(int(value))
    return f"{value:.4g}"


def format_time(time_s: float, seconds: bool = False) -> str:
    """HH:MM (or HH:MM:SS) UTC."""
    return datetime.fromtimestamp(time_s, UTC).strftime("%H:%M:%S" if seconds else "%H:%M")


def visible(points: Sequence[tuple[float, float]], start_s: float, end_s: float) -> list[float]:
    """The finite values of the points within [start_s, end_s]."""
    return [v for t, v in points if start_s <= t <= end_s and math.isfinite(v)]


def tick_step(span_s: float, cols: int, label_len: int) -> float:
    """The smallest round step whose labels (`label_len` cells, four apart) fit `cols`."""
    for step in TICK_STEPS_S:
        if span_s / step * (label_len + 4) <= cols:
            return step
    return max(span_s, 1.0)


def median_spacing(points: Sequence[tuple[float, float]]) -> float:
    gaps = sorted(b[0] - a[0] for a, b in itertools.pairwise(points))
    return gaps[len(gaps) // 2] if gaps else 0.0


def legend_entries(series: Sequence[Series], ranges: list[tuple[float, float] | None]) -> list[str]:
    entries = []
    for s, r in zip(series, ranges, strict=True):
        text = f"━ {s.label}"
        if r is not None:
            low, high = r
            span = (
                format_number(low)
                if low == high
                else f"{format_number(low)}..{format_number(high)}"
            )
            text += f" {span}"
        if s.unit:
            text += f" {s.unit}"
        entries.append(text)
    return entries


def layout_legend(entries: list[str], width: int, max_rows: int) -> list[list[tuple[int, int]]]:
    """Entries placed greedily on rows: per row, (column, entry index); the rest dropped."""
    rows: list[list[tuple[int, int]]] = []
    col = width  # start a row at the first entry
    for i, text in enumerate(entries):
        if col > 0 and col + len(text) > width:
            if len(rows) == max_rows:
                break
            rows.append([])
            col = 0
        rows[-1].append((col, i))
        col += len(text) + 2
    return rows


def draw_plot(
    series: Sequence[Series],
    width: int,
    height: int,
    start_s: float,
    end_s: float,
    *,
    gap_s: float | None = None,
    legend: bool = True,
) -> TimePlot:
    """Draw `series` over [start_s, end_s] on a `width` x `height` cell canvas."""
    canvas = Canvas(width, height)
    width, height = canvas.width, canvas.height
    if end_s <= start_s:
        end_s = start_s + 1.0
    ranges: list[tuple[float, float] | None] = []
    for s in series:
        values = visible(s.points, start_s, end_s)
        ranges.append((min(values), max(values)) if values else None)

    # Legend rows at the top (only when there is room for a plot under them).
    entries = legend_entries(series, ranges)
    placed = layout_legend(entries, width, MAX_LEGEND_ROWS) if legend and height >= 4 else []
    placed = placed[: max(0, height - 3)]
    for row, line in enumerate(placed):
        for col, i in line:
            canvas.text(col, row, entries[i], series[i].style)

    # One scale for series of one unit, else one per series.
    shared = len({s.unit for s in series}) <= 1
    known = [r for r in ranges if r is not None]
    scales: list[tuple[float, float]] = []
    axis: tuple[float, float] | None = None
    if shared and known:
        axis = (min(r[0] for r in known), max(r[1] for r in known))
    for r in ranges:
        scales.append(_padded(axis if shared else r))

    # The value axis labels (shared scale only): max at the top row, min at the bottom.
    top = len(placed)
    rows = max(1, height - top - 1)
    labels: list[tuple[int, str]] = []
    if axis is not None:
        low, high = axis
        if low == high:
            labels = [(top + (rows - 1) // 2, format_number(low))]
        else:
            labels = [(top, format_number(high)), (top + rows - 1, format_number(low))]
    margin = max((len(text) for _, text in labels), default=0)
    margin = margin + 1 if margin and margin + 4 < width else 0
    for row, text in labels if margin else []:
        canvas.text(margin - 1 - len(text), row, text, "dim")
    area = Area(margin, top, max(1, width - margin), rows)
    plot = TimePlot(canvas, area, start_s, end_s, scales, ranges)

    # The time axis: labels centred on round ticks.
    if height >= 2:
        _time_axis(canvas, area, start_s, end_s, top + rows)

    for index, s in enumerate(series):
        _draw_series(plot, index, s, gap_s)
    return plot


def _padded(scale: tuple[float, float] | None) -> tuple[float, float]:
    if scale is None:
        return (0.0, 1.0)
    low, high = scale
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        return (low - pad, high + pad)
    return scale


def _time_axis(canvas: Canvas, area: Area, start_s: float, end_s: float, row: int) -> None:
    span = end_s - start_s
    seconds = span < 300
    label_len = 8 if seconds else 5
    step = tick_step(span, area.cols, label_len)
    seconds = seconds or step < 60
    label_len = 8 if seconds else 5
    tick = math.ceil(start_s / step) * step
    last_end = -1
    while tick <= end_s:
        text = format_time(tick, seconds)
        centre = area.col + (tick - start_s) / span * (area.cols - 1)
        col = round(centre - len(text) / 2)
        if col > last_end and col >= 0 and col + len(text) <= canvas.width:
            canvas.text(col, row, text, "dim")
            last_end = col + len(text)
        tick += step


def _draw_series(plot: TimePlot, index: int, series: Series, gap_s: float | None) -> None:
    """Light the series' dots, joined by lines where no gap parts them.

    Points that land in one dot column are drawn as that column's span (a thousand
    points on a hundred columns cost a hundred short lines, not a thousand)."""
    points = [
        (t, v) for t, v in series.points if plot.start_s <= t <= plot.end_s and math.isfinite(v)
    ]
    if not points:
        return
    gap = gap_s if gap_s is not None else GAP_FACTOR * median_spacing(points)
    canvas = plot.canvas
    area = plot.area
    style = series.style
    # Keep lines inside the plotting area (a value outside the scale is clipped).
    top, bottom = 4 * area.row, 4 * (area.row + area.rows) - 1
    start, end = plot.start_s, plot.end_s
    low, high = plot.scales[index]
    x0, kx = 2 * area.col, (2 * area.cols - 1) / (end - start)
    y0, ky = 4 * area.row, (4 * area.rows - 1) / (high - low)
    column: list[int] | None = None  # x, lowest y, highest y, last y of the current column
    previous_t = -math.inf
    for t, v in points:
        # whole dots (as `plot.dot`, rounded), so that a line between two points lights
        # every dot between them
        x = round(x0 + (t - start) * kx)
        yf = y0 + (high - v) * ky
        y = top if yf < top else bottom if yf > bottom else round(yf)
        joined = t - previous_t <= gap and gap > 0
        previous_t = t
        if column is not None and joined and x == column[0]:
            if y < column[1]:
                column[1] = y
            elif y > column[2]:
                column[2] = y
            column[3] = y
            continue
        if column is not None:
            if column[1] != column[2]:
                canvas.line(column[0], column[1], column[0], column[2], style)
            if joined:
                canvas.line(column[0], column[3], x, y, style)
        canvas.set(x, y, style)
        column = [x, y, y, y]
    if column is not None and column[1] != column[2]:
        canvas.line(column[0], column[1], column[0], column[2], style)
