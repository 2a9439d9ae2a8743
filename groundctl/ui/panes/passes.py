"""The Passes pane: the contact plan, counting down, and the selected pass in the sky.

At the top, the next AOS (node, station, countdown) and a live line for each pass in
progress (azimuth, elevation, range, time to LOS). Below, a table of the upcoming
contacts and a polar sky plot of the selected one (the cursor's row; by default the
current or next contact) with the node's position marked while it is in the pass.

Everything heavy happens off the UI thread: the plan comes from the backend (the
simulator's own plan, or a prediction in the engine's thread pool) in a worker, the TLE
lines likewise, and each pass's track (look angles every 10 s, groundctl.orbits.track)
in a thread; a live point is interpolated from the track at the snapshot's clock, which
costs microseconds. Countdowns use the engine clock (simulated time with the simulator).
Each refresh updates only the cells whose text changed; the rows are rebuilt only when
the plan changes.

Under the live lines, each station with a rotator or a radio (`[stations.rotator]`,
`[stations.radio]`) has a few lines from its latest tracking update (groundctl.station):
phase and node and the latest problem; the rotator's last commanded position against the
one read back, and the pointing error coloured against the station's `threshold_deg`;
the downlink and uplink frequencies set, in MHz to the hertz. None without such a
station.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.widgets import DataTable, Static

from groundctl.orbits.track import PassTrack, sky_xy, track_of
from groundctl.ui.braille import Canvas
from groundctl.ui.panes.base import Pane

if TYPE_CHECKING:
    from groundctl.config import StationControl
    from groundctl.orbits.model import Pass, Station
    from groundctl.ui.backend import Backend
    from groundctl.ui.state import Snapshot, StationView

PLAN_HOURS = 24.0
RELOAD_EVERY_S = 600.0  # of the engine clock: simulated time may run fast
RELOAD_AFTER_LOS_S = 60.0  # after the first contact ends, but not more often than this
TRACK_AHEAD_S = 120.0  # compute the track of a pass this long before its AOS
MAX_ROWS = 300
MAX_LIVE_LINES = 3
CRAMPED_WIDTH = 52  # below this the sky plot gives its room to the table
SKY_MIN_WIDTH = 24
SKY_MAX_WIDTH = 60

# (key, label, width): None sizes the column to its content when the rows are built
# (`column_widths`: set, not left to the table, whose first drawing of new rows may keep
# the widths it had before it measured them).
COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("node", "Node", None),
    ("when", "AOS in / LOS", 13),
    ("station", "Station", None),
    ("aos", "AOS UTC", 8),
    ("max", "Max el", 6),
    ("dur", "Dur", 5),
    ("sun", "Sunlit", 6),
)

IN_PASS_STYLE = "bold green"
SOON_STYLE = "bold yellow"  # AOS within the next five minutes
SOON_S = 300.0
TRACK_STYLE = "bold cyan"
MARKER_STYLE = "bold red"
RING_STYLE = "dim"

MAX_STATIONS = 3  # stations with their lines; more are counted on a last line
NONE = "–"  # a value not known (yet)
STATION_STYLE = "bold"
PHASE_STYLES = {"tracking": IN_PASS_STYLE, "prepositioning": "bold", "parking": "dim"}
PROBLEM_STYLE = "yellow"
ERROR_OK_STYLE = "green"  # within the threshold
ERROR_HIGH_STYLE = "yellow"  # up to ERROR_RED_FACTOR thresholds
ERROR_RED_STYLE = "bold red"
ERROR_RED_FACTOR = 2.0


# --- formatting (pure) ---------------------------------------------------------------------------
def pass_key(p: Pass) -> str:
    """The table's row key of a contact: node, station and AOS to the second."""
    return f"{p.node}|{p.station}|{round(p.aos.timestamp())}"


def hms(seconds: float) -> str:
    """HH:MM:SS of a duration, rounded up (a countdown says 00:00:01 until it is due)."""
    s = max(0, math.ceil(seconds - 1e-6))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}"


def ms(seconds: float) -> str:
    """MM:SS of a duration under an hour (else HH:MM:SS), rounded up."""
    text = hms(seconds)
    return text[3:] if text.startswith("00:") else text


def countdown(aos_s: float, los_s: float, clock_s: float) -> tuple[str, str]:
    """The countdown cell of a contact, and its style: time to AOS, IN PASS with time to
    LOS, or LOS once it has ended."""
    if clock_s < aos_s:
        return f"T-{hms(aos_s - clock_s)}", SOON_STYLE if aos_s - clock_s <= SOON_S else ""
    if clock_s < los_s:
        return f"IN PASS {ms(los_s - clock_s)}", IN_PASS_STYLE
    return "LOS", "dim"


def row_cells(p: Pass, clock_s: float) -> list[str | Text]:
    when, style = countdown(p.aos.timestamp(), p.los.timestamp(), clock_s)
    return [
        p.node,
        Text(when, style=style),
        p.station,
        f"{p.aos.astimezone(UTC):%H:%M:%S}",
        Text(f"{p.max_elevation_deg:.0f}°", justify="right"),
        ms(p.duration_s),
        "yes" if p.sunlit else "no",
    ]


def column_widths(passes: Sequence[Pass]) -> dict[str, int]:
    """Each column's width for these rows: fixed, or as wide as its label and content."""
    content = {
        "node": max((cell_len(p.node) for p in passes), default=0),
        "station": max((cell_len(p.station) for p in passes), default=0),
    }
    return {
        key: width if width is not None else max(cell_len(label), content.get(key, 0))
        for key, label, width in COLUMNS
    }


def live_line(p: Pass, clock_s: float, point: tuple[float, float, float] | None) -> str:
    """A pass in progress: where the node is and how long until LOS."""
    los = ms(p.los.timestamp() - clock_s)
    if point is None:
        return f"{p.node} {p.station} IN PASS, LOS in {los}"
    az, el, rng = point
    return f"{p.node} {p.station}  az {az:5.1f}° el {el:4.1f}° {rng:4.0f} km  LOS {los}"


# --- stations (pure formatting) ------------------------------------------------------------------
def mhz(hz: int | None) -> str:
    """A frequency in MHz to the hertz: 437001234 -> "437.001234 MHz"."""
    if hz is None:
        return NONE
    mega, rest = divmod(abs(int(hz)), 1_000_000)
    return f"{'-' if hz < 0 else ''}{mega}.{rest:06d} MHz"


def degrees(value: float | None) -> str:
    return NONE if value is None else f"{value:.1f}°"


def error_style(error_deg: float, threshold_deg: float) -> str:
    """Green within the threshold, yellow up to twice it, red beyond."""
    if error_deg <= threshold_deg:
        return ERROR_OK_STYLE
    if error_deg <= ERROR_RED_FACTOR * threshold_deg:
        return ERROR_HIGH_STYLE
    return ERROR_RED_STYLE


def station_rows(control: StationControl) -> int:
    """How many lines a station takes: its name, the rotator's, the radio's."""
    return 1 + (control.rotator is not None) + (control.radio is not None)


def station_lines(control: StationControl, view: StationView | None) -> list[Text]:
    """A station's lines: name, phase, node and the latest problem; the rotator's target
    (last sent) and actual position (az el) and the pointing error; the radio's downlink
    and uplink frequencies. Idle (nothing heard yet) with the values unknown."""
    m = view.message if view is not None else None
    head = Text(control.station, style=STATION_STYLE)
    phase = m.phase if m is not None else "idle"
    head.append(" ").append(phase, style=PHASE_STYLES.get(phase, "dim"))
    if m is not None and m.node:
        head.append(f" {m.node}")
    if view is not None and view.problem:
        head.append("  ").append(
            view.problem, style="dim" if view.problem == "parked" else PROBLEM_STYLE
        )
    lines = [head]
    if control.rotator is not None:
        target = view.target if view is not None else None
        line = Text("  target ")
        line.append(f"{degrees(target[0])} {degrees(target[1])}" if target else NONE)
        line.append("  actual ")
        if m is not None and m.actual_az is not None and m.actual_el is not None:
            line.append(f"{degrees(m.actual_az)} {degrees(m.actual_el)}")
        else:
            line.append(NONE)
        line.append("  error ")
        if m is not None and m.error_deg is not None:
            style = error_style(m.error_deg, control.rotator.threshold_deg)
            line.append(degrees(m.error_deg), style=style)
        else:
            line.append(NONE)
        lines.append(line)
    if control.radio is not None:
        down = m.downlink_hz if m is not None else None
        up = m.uplink_hz if m is not None else None
        lines.append(Text(f"  down {mhz(down)}  up {mhz(up)}"))
    return lines


def stations_text(
    controls: Sequence[StationControl], views: dict[str, StationView], limit: int = MAX_STATIONS
) -> Text:
    """The stations' lines (past `limit` stations, those tracking or preparing first and
    the rest counted on a last line)."""
    shown = list(controls)
    if len(shown) > limit:
        order = {c.station: i for i, c in enumerate(shown)}

        def idle(c: StationControl) -> bool:
            view = views.get(c.station)
            return view is None or view.message.phase in ("idle", "parking")

        shown = sorted(shown, key=lambda c: (idle(c), order[c.station]))[:limit]
        shown.sort(key=lambda c: order[c.station])
    lines = [line for c in shown for line in station_lines(c, views.get(c.station))]
    if len(controls) > len(shown):
        lines.append(Text(f"… and {len(controls) - len(shown)} more stations", style="dim"))
    return Text("\n", no_wrap=True, overflow="ellipsis").join(lines)


def stations_height(controls: Sequence[StationControl], limit: int = MAX_STATIONS) -> int:
    """The lines `stations_text` may take at most."""
    rows = sorted((station_rows(c) for c in controls), reverse=True)
    return sum(rows[:limit]) + (len(rows) > limit)


# --- the sky plot (pure drawing on a braille canvas) --------------------------------------------
@dataclass(frozen=True)
class SkyFrame:
    """A polar sky plot of `width` x `height` cells: the zenith at the centre, the horizon
    a circle of `radius` dots, north up and east right, a label cell on each side."""

    width: int
    height: int

    @property
    def cx(self) -> float:
        return (2 * self.width - 1) / 2

    @property
    def cy(self) -> float:
        return (4 * self.height - 1) / 2

    @property
    def radius(self) -> float:
        return max(1.0, min((2 * (self.width - 2) - 1) / 2, (4 * (self.height - 2) - 1) / 2))

    def dot(self, az_deg: float, el_deg: float) -> tuple[int, int]:
        """The dot of a direction (below the horizon is drawn on it)."""
        x, y = sky_xy(az_deg, max(0.0, min(90.0, el_deg)))
        return round(self.cx + self.radius * x), round(self.cy - self.radius * y)


def _circle(canvas: Canvas, frame: SkyFrame, el_deg: float, style: str) -> None:
    r = frame.radius * (90.0 - el_deg) / 90.0
    n = max(12, int(2 * math.pi * r * 1.5))
    for i in range(n):
        a = 2 * math.pi * i / n
        canvas.set(frame.cx + r * math.sin(a), frame.cy - r * math.cos(a), style)


def sky_canvas(
    width: int,
    height: int,
    track: Sequence[tuple[float, float]] = (),
    marker: tuple[float, float] | None = None,
) -> Canvas:
    """The sky plot: horizon, 30 and 60 degree rings, N/E/S/W, the track (azimuth,
    elevation pairs) as a line, and the marker (azimuth, elevation) as a small cross."""
    canvas = Canvas(width, height)
    frame = SkyFrame(canvas.width, canvas.height)
    _circle(canvas, frame, 0.0, "")
    for el in (30.0, 60.0):
        _circle(canvas, frame, el, RING_STYLE)
    canvas.set(frame.cx, frame.cy, RING_STYLE)
    points = [frame.dot(az, el) for az, el in track]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        canvas.line(x0, y0, x1, y1, TRACK_STYLE)
    if len(points) == 1:
        canvas.set(*points[0], TRACK_STYLE)
    if marker is not None:
        x, y = frame.dot(*marker)
        for dx, dy in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
            canvas.set(x + dx, y + dy, MARKER_STYLE)
    r_cells = frame.radius / 2
    col = int(frame.cx // 2)
    row = int(frame.cy // 4)
    canvas.text(col, max(0, int((frame.cy - frame.radius) // 4) - 1), "N", "bold")
    canvas.text(col, min(canvas.height - 1, int((frame.cy + frame.radius) // 4) + 1), "S", "bold")
    canvas.text(max(0, int(frame.cx / 2 - r_cells) - 1), row, "W", "bold")
    canvas.text(min(canvas.width - 1, int(frame.cx / 2 + r_cells) + 1), row, "E", "bold")
    return canvas


class SkyPlot(Static):
    """The polar plot of one pass; redrawn on resize, or when its pass or marker moves."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.pass_key: str | None = None
        self.track: list[tuple[float, float]] = []
        self.marker: tuple[float, float] | None = None
        self.marker_dot: tuple[int, int] | None = None
        self.lines: list[str] = []
        self.draws = 0

    @property
    def frame(self) -> SkyFrame:
        size = self.content_size
        return SkyFrame(max(1, size.width), max(1, size.height))

    def show(
        self,
        key: str | None,
        track: PassTrack | None,
        marker: tuple[float, float] | None = None,
    ) -> None:
        """Plot this pass (None: only the sky), with the node at `marker` if given."""
        points = (
            list(zip(track.az_deg.tolist(), track.el_deg.tolist(), strict=True)) if track else []
        )
        self.pass_key = key
        self.track = points
        self.marker = marker
        self.marker_dot = self.frame.dot(*marker) if marker else None
        self._draw()

    def move_marker(self, marker: tuple[float, float] | None) -> None:
        """Move the node's mark; redrawn only when it lands on another dot."""
        dot = self.frame.dot(*marker) if marker else None
        self.marker = marker
        if dot != self.marker_dot:
            self.marker_dot = dot
            self._draw()

    def on_resize(self, event: Resize) -> None:
        self.marker_dot = self.frame.dot(*self.marker) if self.marker else None
        self._draw()

    def _draw(self) -> None:
        size = self.content_size
        if size.width < 3 or size.height < 3:
            return
        canvas = sky_canvas(size.width, size.height, self.track, self.marker)
        self.lines = canvas.lines()
        self.draws += 1
        self.update(canvas.render())


# --- orbits of the plan's nodes (off the UI thread) -------------------------------------------
def orbits_of(
    backend: Backend, nodes: Iterable[str], clock_s: float
) -> tuple[dict[str, tuple[str, str]], dict[str, Station]]:
    """TLE lines of `nodes` (the simulator's fleet, else the config's) and the stations by
    name. Reads files (and maybe the archive): call it in a thread."""
    lines: dict[str, tuple[str, str]] = {}
    stations: dict[str, Station] = {s.name: s for s in backend.config.stations}
    for link in backend.links:
        fleet = getattr(link, "fleet", None)
        for sat in getattr(fleet, "satellites", None) or ():
            lines[sat.name] = (sat.line1, sat.line2)
        for station in getattr(fleet, "stations", None) or ():
            stations.setdefault(station.name, station)
    missing = set(nodes) - set(lines)
    if missing:
        from groundctl.fleet import load_fleet

        try:
            fleet = load_fleet(backend.config, now=datetime.fromtimestamp(clock_s, UTC))
        except Exception:  # no TLEs: the plan is still shown, without tracks
            return lines, stations
        for sat in fleet.satellites(sorted(missing)):
            lines[sat.name] = (sat.line1, sat.line2)
    return lines, stations


def tracks_of(jobs: Sequence[tuple[str, Pass, str, str, Station]]) -> dict[str, PassTrack]:
    """The track of each (key, pass, line1, line2, station) job (call it in a thread)."""
    out = {}
    for key, p, line1, line2, station in jobs:
        try:
            out[key] = track_of(p, line1, line2, station)
        except ValueError:
            continue
    return out


# --- the pane ------------------------------------------------------------------------------------
class PassesPane(Pane):
    """Upcoming contacts, the next AOS, passes in progress, and the sky plot."""

    TITLE: ClassVar[str] = "Passes"
    KEY: ClassVar[str] = "p"
    # `z` zooms the pane (Textual maximizes only widgets that allow it; Pane cannot focus).
    ALLOW_MAXIMIZE: ClassVar[bool | None] = True

    DEFAULT_CSS = """
    PassesPane #passes-next {
        height: 1;
        text-style: bold;
        color: $text-accent;
        padding: 0 1;
    }
    PassesPane #passes-live {
        height: auto;
        min-height: 1;
        max-height: 3;
        padding: 0 1;
    }
    PassesPane #passes-stations {
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    PassesPane #passes-body {
        height: 1fr;
    }
    PassesPane #passes-table {
        width: 1fr;
        height: 1fr;
        scrollbar-size-vertical: 1;
    }
    PassesPane #passes-sky {
        width: 24;
        height: 1fr;
        padding: 0 0 0 1;
    }
    PassesPane #passes-caption {
        height: 1;
        text-style: bold;
    }
    PassesPane #passes-plot {
        height: 1fr;
    }
    PassesPane.-cramped #passes-sky {
        display: none;
    }
    """

    def __init__(self, backend: Backend, *, id: str | None = None) -> None:
        super().__init__(backend, id=id)
        self.clock_s = 0.0
        self.plan: list[Pass] = []  # the rows, by AOS
        self.plan_clock: float | None = None  # engine clock when the plan was asked for
        self.plan_error = ""
        self.selected: str | None = None
        self.live: dict[str, tuple[float, float, float]] = {}  # in-pass key -> az, el, range
        self.next_text = ""
        self._by_key: dict[str, Pass] = {}
        self._times: dict[str, tuple[float, float]] = {}  # key -> (aos_s, los_s)
        self._cells: dict[str, str] = {}  # key -> countdown text shown
        self._live_text = ""
        self._first_los: float | None = None
        self._loading = False
        self._lines: dict[str, tuple[str, str]] = {}
        self._stations: dict[str, Station] = {}
        self._tracks: dict[str, PassTrack] = {}
        self._pending: set[str] = set()
        # stations with a rotator or a radio, and their latest views
        self.controls = backend.station_control()
        self.station_views: dict[str, StationView] = {}
        # The parts, kept (not queried) so a refresh is cheap and safe while shutting down.
        self._next = Static("loading the contact plan…", id="passes-next")
        self._live = Static("", id="passes-live")
        self._station_rows = stations_height(self.controls)
        self.stations_shown = stations_text(self.controls, self.station_views)
        self._station_box = Static(self.stations_shown, id="passes-stations")
        self._station_box.styles.height = self._station_rows
        self._caption = Static("", id="passes-caption")
        self.sky = SkyPlot(id="passes-plot")
        self._sky_box = Vertical(id="passes-sky")
        self.table: DataTable[str | Text] = DataTable(
            id="passes-table", cursor_type="row", zebra_stripes=True
        )
        for key, label, width in COLUMNS:
            self.table.add_column(label, key=key, width=width)

    def compose(self) -> ComposeResult:
        yield self._next
        yield self._live
        if self.controls:
            yield self._station_box
        with Horizontal(id="passes-body"):
            yield self.table
            with self._sky_box:
                yield self._caption
                yield self.sky

    def on_resize(self, event: Resize) -> None:
        """Hide the sky plot in a narrow pane; else make it as wide as its circle needs
        at this height (the table takes the rest)."""
        self.set_class(event.size.width < CRAMPED_WIDTH, "-cramped")
        # plot rows: the pane less its border, the two lines on top, the stations' lines
        # and the caption
        rows = event.size.height - 2 - 2 - self._station_rows - 1
        radius_cells = max(1.0, (4 * (rows - 2) - 1) / 4)  # the circle's radius, in cells
        width = math.ceil(2 * radius_cells) + 2 + 1  # labels either side, padding
        self._sky_box.styles.width = max(SKY_MIN_WIDTH, min(SKY_MAX_WIDTH, width))

    # --- the app's calls -----------------------------------------------------------------------
    def update_from(self, snapshot: Snapshot) -> None:
        if snapshot.stations and self.controls:
            self.station_views.update(snapshot.stations)
            self._draw_stations()
        if snapshot.clock_s <= 0:  # the engine's clock is not known yet
            return
        clock = self.clock_s = snapshot.clock_s
        if self.plan_clock is None:
            if not self._loading:
                self.reload()
            return
        self._prune(clock)
        self._tick(clock)
        if self._loading:
            return
        since = clock - self.plan_clock
        first_over = self._first_los is not None and clock >= self._first_los
        if (
            since >= RELOAD_EVERY_S
            or since < -RELOAD_AFTER_LOS_S
            or (first_over and since >= RELOAD_AFTER_LOS_S)
        ):
            self.reload()

    # --- the plan ------------------------------------------------------------------------------
    def reload(self) -> None:
        """Load the plan again, in a worker (one at a time)."""
        self._loading = True
        self.load_plan()

    @work(exclusive=True, group="passes-plan", exit_on_error=False)
    async def load_plan(self) -> None:
        """Ask the backend for the plan, and the TLE lines of its nodes; then show it."""
        clock = self.clock_s
        try:
            passes = await self.backend.contacts(PLAN_HOURS)
            nodes = {p.node for p in passes}
            if nodes - set(self._lines) or not self._stations:
                lines, stations = await asyncio.to_thread(orbits_of, self.backend, nodes, clock)
                self._lines.update(lines)
                self._stations.update(stations)
        except Exception as error:
            self.plan_error = f"contact plan unavailable: {getattr(error, 'message', error)}"
            self.plan_clock = clock
            self._set_next(self.plan_error)
            return
        finally:
            self._loading = False
        self.plan_error = ""
        self.plan_clock = clock
        self._first_los = passes[0].los.timestamp() if passes else None
        self.show_plan(passes)

    def show_plan(self, passes: Sequence[Pass]) -> None:
        """Show these contacts (those not over yet, by AOS); rows are rebuilt only if the
        contacts differ from those shown."""
        clock = self.clock_s
        shown = sorted((p for p in passes if p.los.timestamp() > clock), key=lambda p: p.aos)
        del shown[MAX_ROWS:]
        keys = [pass_key(p) for p in shown]
        self._by_key = dict(zip(keys, shown, strict=True))
        self._times = {k: (p.aos.timestamp(), p.los.timestamp()) for k, p in self._by_key.items()}
        if keys != [pass_key(p) for p in self.plan]:
            self.plan = shown
            table = self.table
            table.clear(columns=True)
            widths = column_widths(shown)
            for column, label, _ in COLUMNS:
                table.add_column(label, key=column, width=widths[column])
            self._cells = {}
            for key, p in zip(keys, shown, strict=True):
                table.add_row(*row_cells(p, clock), key=key)
                self._cells[key] = countdown(*self._times[key], clock)[0]
            self._tracks = {k: t for k, t in self._tracks.items() if k in self._by_key}
            self._select(self.selected if self.selected in self._by_key else None)
        else:
            self.plan = shown
        self._tick(clock)

    def _prune(self, clock: float) -> None:
        """Drop the rows of contacts that are over."""
        over = [k for k, (_, los) in self._times.items() if los <= clock]
        if not over:
            return
        table = self.table
        for key in over:
            table.remove_row(key)
            del self._times[key], self._by_key[key]
            self._cells.pop(key, None)
            self._tracks.pop(key, None)
        self.plan = [p for p in self.plan if pass_key(p) in self._by_key]
        self._select(self.selected if self.selected in self._by_key else None)

    # --- selection and the sky plot ------------------------------------------------------------
    def _select(self, key: str | None) -> None:
        """Put the cursor on `key` (None: the first row, i.e. the current or next contact)."""
        if key is None and self.plan:
            key = pass_key(self.plan[0])
        table = self.table
        if key is not None:
            row = table.get_row_index(key)
            if table.cursor_row != row:
                table.move_cursor(row=row, animate=False)
        self._show_selected(key)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        if key in self._by_key and key != self.selected:
            self._show_selected(key)
        event.stop()

    def _show_selected(self, key: str | None, *, force: bool = False) -> None:
        """Caption and sky plot of the selected contact (redrawn only if it changed)."""
        if not force and key == self.selected and key == self.sky.pass_key:
            return
        self.selected = key
        p = self._by_key.get(key) if key else None
        caption = self._caption
        if key is None or p is None:
            caption.update("no contact selected")
            self.sky.show(None, None)
            return
        caption.update(Text(f"{p.node} {p.station} {p.max_elevation_deg:.0f}°", no_wrap=True))
        track = self._tracks.get(key)
        self.sky.show(key, track, self._marker(key, self.clock_s))
        if track is None:
            self._want_tracks([key])

    def _marker(self, key: str | None, clock: float) -> tuple[float, float] | None:
        point = self.live.get(key) if key else None
        if point is None and key in self._tracks:
            point = self._tracks[key].at(clock)
        return (point[0], point[1]) if point else None

    # --- tracks --------------------------------------------------------------------------------
    def _want_tracks(self, keys: Iterable[str]) -> None:
        jobs = []
        for key in keys:
            if key in self._tracks or key in self._pending:
                continue
            p = self._by_key.get(key)
            lines = self._lines.get(p.node) if p else None
            station = self._stations.get(p.station) if p else None
            if p is None or lines is None or station is None:
                continue
            jobs.append((key, p, lines[0], lines[1], station))
        if jobs:
            self._pending.update(j[0] for j in jobs)
            self._compute_tracks(jobs)

    @work(group="passes-track", exit_on_error=False)
    async def _compute_tracks(self, jobs: list[tuple[str, Pass, str, str, Station]]) -> None:
        try:
            found = await asyncio.to_thread(tracks_of, jobs)
        finally:
            self._pending.difference_update(j[0] for j in jobs)
        self._tracks.update({k: t for k, t in found.items() if k in self._by_key})
        if self.selected in found:
            self._show_selected(self.selected, force=True)
        self._tick(self.clock_s)

    # --- every refresh -------------------------------------------------------------------------
    def _tick(self, clock: float) -> None:
        table = self.table
        cells = self._cells
        in_pass: list[str] = []
        soon: list[str] = []
        next_key: str | None = None
        # Countdowns of the rows in view (a row scrolled into view catches up next time).
        first = max(0, int(table.scroll_y))
        for p in self.plan[first : first + table.size.height]:
            key = pass_key(p)
            text, style = countdown(*self._times[key], clock)
            if cells.get(key) != text:
                cells[key] = text
                table.update_cell(key, "when", Text(text, style=style))
        for key, (aos, los) in self._times.items():
            if aos <= clock < los:
                in_pass.append(key)
            elif clock < aos:
                if next_key is None or aos < self._times[next_key][0]:
                    next_key = key
                if aos - clock <= TRACK_AHEAD_S:
                    soon.append(key)
        if self.plan_error:
            self._set_next(self.plan_error)
        elif next_key is not None:
            p = self._by_key[next_key]
            self._set_next(
                f"next AOS {p.node} at {p.station} in {hms(self._times[next_key][0] - clock)}"
            )
        else:
            self._set_next("no contact in the plan" if not in_pass else "no further contact")
        self.live = {}
        lines: list[str] = []
        for key in in_pass:
            track = self._tracks.get(key)
            point = track.at(clock) if track else None
            if point is not None:
                self.live[key] = point
            if len(lines) < MAX_LIVE_LINES:
                lines.append(live_line(self._by_key[key], clock, point))
        if len(in_pass) > MAX_LIVE_LINES:
            lines[-1] = f"… and {len(in_pass) - MAX_LIVE_LINES + 1} more in pass"
        live_text = "\n".join(lines) if lines else "no node in pass"
        if live_text != self._live_text:
            self._live_text = live_text
            self._live.update(
                Text(live_text, style=IN_PASS_STYLE if lines else "dim", no_wrap=True)
            )
        wanted = [*in_pass, *soon]
        if self.selected is not None:
            wanted.append(self.selected)
        self._want_tracks(wanted)
        if self.selected is not None and self.selected == self.sky.pass_key:
            self.sky.move_marker(self._marker(self.selected, clock))

    def _draw_stations(self) -> None:
        """The stations' lines, redrawn only when they changed."""
        if not self.controls:
            return
        text = stations_text(self.controls, self.station_views)
        if text != self.stations_shown:
            self.stations_shown = text
            self._station_box.update(text)

    def _set_next(self, text: str) -> None:
        if text != self.next_text:
            self.next_text = text
            self._next.update(Text(text, no_wrap=True))
