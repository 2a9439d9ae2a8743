"""The time plot renderer: dots where the values say, scaled by hand; labels where they
belong (value axis, time axis, legend); gaps left open; one style per series."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text

from groundctl.ui.plot import (
    STYLES,
    Area,
    Series,
    draw_plot,
    format_number,
    format_time,
    tick_step,
)

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC).timestamp()
BLANK = "\u2800"  # an empty braille cell
# braille bit of dot (x % 2, y % 4) within a cell
BITS = {(0, 0): 0x01, (0, 1): 0x02, (0, 2): 0x04, (0, 3): 0x40}
BITS |= {(1, 0): 0x08, (1, 1): 0x10, (1, 2): 0x20, (1, 3): 0x80}


def lit(lines: list[str], x: int, y: int) -> bool:
    """Is the dot (x, y) lit on the canvas drawn as `lines`?"""
    ch = lines[y // 4][x // 2]
    bits = ord(ch) - 0x2800
    return 0 <= bits < 256 and bool(bits & BITS[(x % 2, y % 4)])


def lit_dots(lines: list[str]) -> set[tuple[int, int]]:
    return {
        (2 * c + dx, 4 * r + dy)
        for r, line in enumerate(lines)
        for c in range(len(line))
        for dx in (0, 1)
        for dy in range(4)
        if lit(lines, 2 * c + dx, 4 * r + dy)
    }


def style_at(text: Text, width: int, col: int, row: int) -> str:
    """The style of a cell of a rendered canvas (rows end with a newline)."""
    index = row * (width + 1) + col
    styles = [str(s.style) for s in text.spans if s.start <= index < s.end]
    return styles[-1] if styles else ""


def test_dots_land_where_the_values_say():
    # one series in volts, 0 V to 10 V over 100 s; no lines (gap 0), just its dots
    points = [(T0, 0.0), (T0 + 50, 5.0), (T0 + 100, 10.0), (T0 + 25, 7.5)]
    points.sort()
    plot = draw_plot([Series("V1", points, "cyan", "V")], 30, 10, T0, T0 + 100, gap_s=0)
    # by hand: legend on row 0; value labels "10" and "0" need a 3-cell margin (2 + a
    # space); the time axis takes the last row: the plot is cells 3..29 x rows 1..8,
    # i.e. dots x 6..59 (54 dots) and y 4..35 (32 dots)
    assert plot.area == Area(col=3, row=1, cols=27, rows=8)
    lines = plot.canvas.lines()
    expected = {
        (6, 35),  # t0, 0 V: left, bottom
        (6 + round(0.25 * 53), 4 + round(0.25 * 31)),  # t0+25 s, 7.5 V
        (6 + round(0.5 * 53), 4 + round(0.5 * 31)),  # t0+50 s, 5 V
        (59, 4),  # t0+100 s, 10 V: right, top
    }
    plot_dots = {(x, y) for x, y in lit_dots(lines) if x >= 6 and 4 <= y <= 35}
    assert plot_dots == expected
    for (t, v), (x, y) in zip(points, sorted(expected), strict=True):
        dx, dy = plot.dot(0, t, v)
        assert (round(dx), round(dy)) == (x, y)


def test_value_and_time_labels():
    points = [(T0 + 60 * i, 20.0 + i) for i in range(16)]  # 20..35 degC over 15 minutes
    width, height = 60, 8
    plot = draw_plot([Series("GPU_TEMP", points, "cyan", "degC")], width, height, T0, T0 + 900)
    lines = plot.canvas.lines()
    # legend: mark, label, min..max of the visible values, unit
    assert lines[0].startswith("━ GPU_TEMP 20..35 degC")
    # max at the top row of the plot, min at its bottom, right-aligned in the margin
    area = plot.area
    assert area.col == 3 and area.row == 1 and area.rows == height - 2
    assert lines[1][:2] == "35"
    assert lines[area.row + area.rows - 1][:2] == "20"
    # the time axis: HH:MM on round ticks (5 min for 57 cells), centred on the tick
    axis = lines[-1]
    step = tick_step(900, area.cols, 5)
    assert step == 300
    for k in range(4):
        label = format_time(T0 + k * step)
        centre = area.col + k * step / 900 * (area.cols - 1)
        col = round(centre - len(label) / 2)
        if col >= 0 and col + len(label) <= width:
            assert axis[col : col + len(label)] == label, (label, axis)
    assert "12:05" in axis and "12:10" in axis
    assert format_time(T0 + 300) == "12:05"


def test_values_outside_the_window_are_neither_drawn_nor_counted():
    points = [(T0 - 10, 1000.0), (T0 + 10, 1.0), (T0 + 20, 2.0), (T0 + 500, -1000.0)]
    plot = draw_plot([Series("X", points, "cyan")], 40, 8, T0, T0 + 100)
    assert plot.ranges == [(1.0, 2.0)]
    assert plot.scales == [(1.0, 2.0)]
    assert "━ X 1..2" in plot.canvas.lines()[0]


def test_series_of_different_units_have_their_own_scales_and_styles():
    volts = [(T0 + i, 100.0 + i) for i in range(0, 101, 10)]
    amps = [(T0 + i, -5.0 + 0.1 * i) for i in range(0, 101, 10)]
    series = [Series("V", volts, STYLES[0], "V"), Series("I", amps, STYLES[1], "A")]
    width, height = 50, 10
    plot = draw_plot(series, width, height, T0, T0 + 100)
    assert plot.scales == [(100.0, 200.0), (-5.0, 5.0)]
    assert plot.area.col == 0  # no shared value axis: the legend gives each range
    lines = plot.canvas.lines()
    assert "━ V 100..200 V" in lines[0] and "━ I -5..5 A" in lines[0]
    rendered = plot.canvas.render()
    # both series end at their top right corner: the same cell, the last one drawn wins;
    # their starts are at the bottom left, also shared; the middle differs
    x0, y0 = plot.dot(0, T0 + 50, 150.0)
    assert lit(lines, round(x0), round(y0))
    assert style_at(rendered, width, round(x0) // 2, round(y0) // 4) in (STYLES[0], STYLES[1])
    assert style_at(rendered, width, 0, 0) == STYLES[0]  # the legend in the series' style
    legend_col = lines[0].index("━ I")
    assert style_at(rendered, width, legend_col, 0) == STYLES[1]


def test_a_gap_in_the_data_is_not_bridged():
    points = [(T0 + t, 0.0 if t < 50 else 10.0) for t in (0, 2, 4, 6, 8, 90, 92, 94, 96, 98)]
    plot = draw_plot([Series("G", points, "cyan")], 50, 8, T0, T0 + 100)
    lines = plot.canvas.lines()
    (x_end, _), (x_resume, _) = plot.dot(0, T0 + 8, 0.0), plot.dot(0, T0 + 90, 10.0)
    between = {x for x, y in lit_dots(lines) if round(x_end) < x < round(x_resume) and y >= 4}
    assert not between
    # ...but close points are joined: every dot column from t0 to t0+8 is lit
    x_start = round(plot.dot(0, T0, 0.0)[0])
    columns = {x for x, _ in lit_dots(lines)}
    assert set(range(x_start, round(x_end) + 1)) <= columns


def test_a_flat_series_sits_in_the_middle_with_one_label():
    points = [(T0 + i, 42.0) for i in range(10)]
    plot = draw_plot([Series("F", points, "cyan", "W")], 30, 9, T0, T0 + 10)
    area = plot.area
    lines = plot.canvas.lines()
    middle = area.row + (area.rows - 1) // 2
    assert lines[middle][:2] == "42"
    labels = [line[: area.col].replace(BLANK, " ").strip() for line in lines[area.row :]]
    assert [label for label in labels if label] == ["42"]
    _, y = plot.dot(0, T0, 42.0)
    assert abs(y - (4 * area.row + (4 * area.rows - 1) / 2)) < 0.01


def test_tiny_and_empty_plots_do_not_fail():
    assert draw_plot([], 10, 3, T0, T0 + 60).canvas.lines()
    plot = draw_plot([Series("E", [], "cyan")], 1, 1, T0, T0)
    assert len(plot.canvas.lines()) == 1
    plot = draw_plot([Series("S", [(T0, 1.0)], "cyan")], 20, 2, T0 - 5, T0 + 5)
    assert lit_dots(plot.canvas.lines())


def test_number_labels():
    assert format_number(10.0) == "10"
    assert format_number(-3.0) == "-3"
    assert format_number(101.234) == "101.2"
    assert format_number(0.000123) == "0.000123"
    assert format_number(2.5e11) == "2.5e+11"
