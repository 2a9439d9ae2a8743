"""`groundctl passes`: predict contacts, plan antennas, print them, archive them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource
from rich import box
from rich.console import Console
from rich.filesize import decimal
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from groundctl.cli import cli, context, err_console
from groundctl.cli.output import echo_csv, echo_json
from groundctl.config import Config
from groundctl.errors import ArchiveError, UsageError
from groundctl.fleet import Fleet, fleet_from_tles, load_fleet
from groundctl.orbits.model import Pass, Prediction, Station
from groundctl.orbits.passes import predict
from groundctl.orbits.plan import plan_contacts
from groundctl.orbits.tle import load_tle_file

if TYPE_CHECKING:
    from groundctl.archive import Archive

JSON_FIELDS = (
    "node",
    "norad_id",
    "station",
    "aos",
    "tca",
    "los",
    "max_elevation_deg",
    "aos_azimuth_deg",
    "tca_azimuth_deg",
    "los_azimuth_deg",
    "tca_range_km",
    "duration_s",
    "sunlit",
    "priority",
    "scheduled",
    "antenna",
    "reason",
)

FLOWN_FIELDS = (
    "id",
    "node",
    "station",
    "link",
    "aos",
    "los",
    "duration_s",
    "status",
    "planned_aos",
    "planned_los",
    "max_elevation_deg",
    "frames_down",
    "bytes_down",
    "frames_up",
    "bytes_up",
    "malformed",
    "unknown",
    "gaps",
    "missing",
    "longest_silence_s",
    "samples",
    "events",
    "alerts_raised",
    "commands_sent",
    "commands_verified",
    "commands_failed",
)
FLOWN_TABLE_LIMIT = 40


def iso_z(t: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a Z: 2026-05-14T03:04:05.123Z."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_time(value: str | None, option: str = "--start") -> datetime:
    """An ISO 8601 time option; without a zone it is UTC; 'now' or None is the current time.

    Raises UsageError naming `option` when the text is not a time.
    """
    if value is None or value.lower() == "now":
        return datetime.now(UTC)
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{option} {value!r} is not an ISO 8601 time",
            hint=f"e.g. {option} 2026-05-14T06:00Z or {option} 2026-05-14",
        ) from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def parse_start(value: str | None) -> datetime:
    """--start of a prediction: an ISO 8601 time within the range the models cover."""
    t = parse_time(value)
    if not EARLIEST <= t <= LATEST:
        raise UsageError(
            f"--start {value!r} is outside {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}",
            hint="TLE epochs are two-digit years from 1957, and the DE421 ephemeris used "
            "for sunlight ends in 2053",
        )
    return t


# TLE years are two digits from 1957; DE421 (the Sun) ends on 2053-10-09.
EARLIEST = datetime(1957, 10, 4, tzinfo=UTC)
LATEST = datetime(2053, 10, 1, tzinfo=UTC)


def parse_station(spec: str, cfg: Config | None, min_elevation: float | None) -> Station:
    """--station NAME (a configured one) or NAME,LAT,LON[,ALT_M] (an ad hoc one)."""
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) == 1:
        if cfg is None:
            raise UsageError(f"--station {spec!r}: no config to look the name up in")
        return cfg.station(parts[0])
    if len(parts) not in (3, 4) or not parts[0]:
        raise UsageError(
            f"--station {spec!r}: expected NAME or NAME,LAT,LON[,ALT_M]",
            hint="e.g. --station Darmstadt,49.87,8.65,144",
        )
    try:
        lat, lon = float(parts[1]), float(parts[2])
        alt = float(parts[3]) if len(parts) == 4 else 0.0
    except ValueError:
        raise UsageError(
            f"--station {spec!r}: latitude, longitude and altitude must be numbers",
            hint="decimal degrees, metres: --station Darmstadt,49.87,8.65,144",
        ) from None
    if not -90 <= lat <= 90 or not -180 <= lon <= 360:
        raise UsageError(
            f"--station {spec!r}: latitude must be in [-90, 90], longitude [-180, 360]"
        )
    return Station(parts[0], lat, lon, alt, min_elevation if min_elevation is not None else 0.0)


def countdown(aos: datetime, los: datetime, now: datetime) -> str:
    """'in 1h 02m', 'in 45s', or 'up LOS 3m 10s' for a pass in progress."""
    if aos <= now < los:
        return f"[bold green]up[/] LOS {_span(los - now)}"
    if los <= now:
        return "[dim]over[/]"
    return f"in {_span(aos - now)}"


def _span(delta: timedelta) -> str:
    s = int(delta.total_seconds())
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h {m:02d}m"
    if m:
        return f"{m}m {sec:02d}s"
    return f"{sec}s"


def pass_record(p: Pass) -> dict[str, Any]:
    """One pass as the JSON/CSV record documented in the README."""
    return {
        "node": p.node,
        "norad_id": p.norad_id,
        "station": p.station,
        "aos": iso_z(p.aos),
        "tca": iso_z(p.tca),
        "los": iso_z(p.los),
        "max_elevation_deg": round(p.max_elevation_deg, 3),
        "aos_azimuth_deg": round(p.aos_azimuth_deg, 2),
        "tca_azimuth_deg": round(p.tca_azimuth_deg, 2),
        "los_azimuth_deg": round(p.los_azimuth_deg, 2),
        "tca_range_km": round(p.tca_range_km, 2),
        "duration_s": round(p.duration_s, 3),
        "sunlit": p.sunlit,
        "priority": p.priority,
        "scheduled": p.scheduled,
        "antenna": p.antenna,
        "reason": p.reason,
    }


def _table(title: str) -> Table:
    """An empty table in the style of every pass listing."""
    return Table(
        title=title,
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 0),
    )


def render_table(
    passes: Sequence[Pass], now: datetime, limit: int, title: str, width: int = 160
) -> Table:
    """The passes as a Rich table; below 110 columns TCA, azimuths, duration and sunlight
    are left out so that it fits an 80-column terminal."""
    wide = width >= 110
    table = _table(title)
    columns: list[tuple[str, str]] = [
        ("Node", "left"),
        ("Station", "left"),
        ("AOS (UTC)", "left"),
        ("Countdown", "left"),
    ]
    if wide:
        columns.append(("TCA", "left"))
    columns += [("LOS", "left"), ("Max el", "right")]
    if wide:
        columns.append(("Az AOS→LOS", "right"))
        columns += [("Dur", "right"), ("Sun", "center")]
    columns.append(("Antenna", "left"))
    for name, justify in columns:
        table.add_column(
            name,
            justify=justify,  # type: ignore[arg-type]
            no_wrap=True,
            max_width=(14 if wide else 12) if name in ("Station", "Antenna") else None,
            overflow="ellipsis",
        )
    shown = passes if limit <= 0 else passes[:limit]
    for p in shown:
        if p.scheduled is False:
            blocker = p.reason.removeprefix("antenna busy: ").split(" (")[0]
            antenna = f"[red]no[/] ({blocker})"
        else:
            antenna = str(p.antenna) if p.antenna else ""
        aos = f"{p.aos:%m-%d %H:%M:%S}" if wide else f"{p.aos:%d %H:%M:%S}"
        row = [p.node, p.station, aos, countdown(p.aos, p.los, now)]
        if wide:
            row.append(f"{p.tca:%H:%M:%S}")
        row += [f"{p.los:%H:%M:%S}", f"{p.max_elevation_deg:4.1f}°"]
        if wide:
            row.append(f"{p.aos_azimuth_deg:3.0f}°→{p.los_azimuth_deg:3.0f}°")
            row += [_span(p.los - p.aos), "☀" if p.sunlit else "☾"]
        row.append(antenna)
        table.add_row(*row, style="dim" if p.scheduled is False else "")
    return table


class _LazyProgress:
    """A progress bar on stderr that appears only if the work takes more than a moment."""

    def __init__(self, console: Console, label: str, delay_s: float = 0.7) -> None:
        self.console = console
        self.label = label
        self.delay_s = delay_s
        self.started = time.monotonic()
        self.progress: Progress | None = None
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.progress is None:
            if time.monotonic() - self.started < self.delay_s or not self.console.is_terminal:
                return
            self.progress = Progress(
                TextColumn(self.label),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} chunks"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=total)
        self.progress.update(self.task, completed=done, total=total)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def report_fleet(fleet: Fleet, prediction: Prediction | None = None) -> None:
    """Print TLE problems, stale TLEs and propagation failures to stderr (never stdout)."""
    for problem in fleet.problems[:20]:
        err_console.print(f"[yellow]skipped:[/] {escape(str(problem))}", soft_wrap=True)
    if len(fleet.problems) > 20:
        err_console.print(f"[yellow]... and {len(fleet.problems) - 20} more TLE problems[/]")
    if fleet.stale:
        names = ", ".join(t.name for t in fleet.stale[:8])
        more = f" and {len(fleet.stale) - 8} more" if len(fleet.stale) > 8 else ""
        oldest = min(t.epoch for t in fleet.stale)
        err_console.print(
            f"[yellow]stale TLEs:[/] {len(fleet.stale)} node(s) have an epoch older than the "
            f"limit (oldest {oldest:%Y-%m-%d}): {escape(names)}{more}; newer elements are "
            "needed (`groundctl tle fetch` for CelesTrak sources, else a newer TLE file)",
            soft_wrap=True,
        )
    for note in fleet.notes:
        err_console.print(f"[dim]{note}[/]")
    if prediction is not None:
        for p in prediction.problems[:10]:
            err_console.print(
                f"[red]propagation failed:[/] {p.node} (catalogue {p.norad_id}) from "
                f"{iso_z(p.first_time)}: {p.message} (sgp4 error {p.code}); passes after "
                "that time are not predicted",
                soft_wrap=True,
            )
        if len(prediction.problems) > 10:
            err_console.print(
                f"[red]... and {len(prediction.problems) - 10} more nodes that could not be "
                "propagated[/]"
            )


@cli.command()
@click.option(
    "--flown",
    is_flag=True,
    help="List the passes flown, as recorded in the archive, instead of predicting.",
)
@click.option("--node", "nodes", multiple=True, metavar="NAME", help="Only this node (repeatable).")
@click.option(
    "--start",
    metavar="TIME",
    help="Window start, ISO 8601 UTC (e.g. 2026-05-14T06:00Z). Default: now (with "
    "--flown: no window, every pass).",
)
@click.option(
    "--hours",
    type=click.FloatRange(min=0.01, max=24 * 14),
    default=24.0,
    show_default=True,
    help="Window length in hours (with --flown and no --start: the last HOURS).",
)
@click.option(
    "--min-elevation",
    type=click.FloatRange(-5, 89),
    metavar="DEG",
    help="Minimum elevation for every station (replaces the configured ones).",
)
@click.option(
    "--station",
    "station_specs",
    multiple=True,
    metavar="NAME[,LAT,LON[,ALT_M]]",
    help="A configured station by name, or an ad hoc one (repeatable; replaces the "
    "configured list). With --flown: a station name.",
)
@click.option(
    "--tle",
    "tle_file",
    type=click.Path(dir_okay=False),
    help="Any TLE/3LE/OMM file: its satellites become the fleet (replaces the configured one).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list on stdout.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV on stdout.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=FLOWN_TABLE_LIMIT,
    show_default=True,
    help="Rows in the table (0: all). JSON and CSV always list every pass; with --flown "
    "the newest N, and JSON and CSV too when --limit is given.",
)
@click.option(
    "--store/--no-store",
    default=True,
    show_default=True,
    help="Archive the TLEs used and the predicted passes with their plan.",
)
@click.pass_context
def passes(
    ctx: click.Context,
    flown: bool,
    nodes: tuple[str, ...],
    start: str | None,
    hours: float,
    min_elevation: float | None,
    station_specs: tuple[str, ...],
    tle_file: str | None,
    as_json: bool,
    as_csv: bool,
    limit: int,
    store: bool,
) -> None:
    """Predict every contact of the fleet with the ground stations, or list those flown.

    For each (node, station) pair over the window: AOS, TCA (maximum elevation), LOS,
    maximum elevation, azimuths, duration, whether the node is sunlit at TCA, and
    whether the contact plan grants it an antenna (priority, then elevation).

    Orbits are propagated with SGP4 from the fleet's TLEs; Earth orientation comes from
    Skyfield's built-in UT1 tables and the Sun from the DE421 ephemeris shipped with
    skyfield-data, so nothing is downloaded. Elevations are geometric (no refraction).

    With --flown, the passes as flown, from the archive: each one's id, node, station
    (or link), AOS, duration, status (flying, flown, interrupted), frames down and up,
    bytes, sequence gaps and packets missing, alerts raised, commands sent, verified
    and failed, and maximum elevation; the newest --limit of them, oldest first. A
    window is optional: --start and --hours give one (the passes overlapping it),
    --start alone runs to now, --hours alone is the last HOURS. `groundctl db export
    --pass ID` exports a pass (docs/passes.md).

    \b
    Examples:
      groundctl passes                                  # demo fleet, next 24 h
      groundctl passes --node ODC-07 --hours 6
      groundctl passes --start 2026-05-14T00:00Z --json > passes.json
      groundctl passes --tle starlink.tle --station Darmstadt,49.87,8.65,144 --csv
      groundctl passes --station Weilheim --min-elevation 20
      groundctl passes --flown                          # the last 40 passes flown
      groundctl passes --flown --node ODC-07 --hours 12 # ODC-07's in the last 12 h
      groundctl passes --flown --station Awarua --limit 0 --json
    """
    if as_json and as_csv:
        raise UsageError("choose one of --json and --csv")
    if flown:
        _flown(
            ctx, nodes, start, hours, station_specs, tle_file, min_elevation, as_json, as_csv, limit
        )
        return
    t0 = parse_start(start)
    now = datetime.now(UTC)
    end = t0 + timedelta(hours=hours)
    # The config is needed unless --tle and full --station specs replace it; it is still
    # used when there is one (archive path, TLE age limit).
    needs_config = tle_file is None or not station_specs or any("," not in s for s in station_specs)
    cfg = context.config(ctx) if needs_config else context.optional_config(ctx)

    if tle_file is not None:
        tles, problems = load_tle_file(tle_file)
        if not tles:
            raise UsageError(
                f"{tle_file}: no valid TLE in the file ({len(problems)} problem(s))",
                hint=str(problems[0]) if problems else "is it a TLE, 3LE or OMM file?",
            )
        fleet = fleet_from_tles(
            tles, problems, now=t0, max_age_days=cfg.tle.max_age_days if cfg else 7.0
        )
    else:
        assert cfg is not None
        fleet = load_fleet(cfg, now=t0, cached=context.cached_sets(ctx, cfg))

    if station_specs:
        stations = [parse_station(s, cfg, min_elevation) for s in station_specs]
        names = [s.name.lower() for s in stations]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate is not None:
            raise UsageError(
                f"--station {duplicate!r} is given twice",
                hint="each station needs its own name (names are not case-sensitive)",
            )
    else:
        assert cfg is not None
        stations = list(cfg.stations)
        if not stations:
            raise UsageError(
                f"{cfg.path}: no [[stations]] configured",
                hint="add stations to the config or give --station NAME,LAT,LON",
            )
    if min_elevation is not None:
        stations = [replace(s, min_elevation_deg=min_elevation) for s in stations]

    satellites = fleet.satellites(nodes or None)
    if not fleet.tles:
        raise UsageError(
            "the fleet has no valid TLE",
            hint="see the skipped lines above; fix the TLE sources in the config",
        )
    found = {s.name.lower() for s in satellites}
    missing = [n for n in nodes if n.lower() not in found]
    if missing:
        known = ", ".join(fleet.names()[:12])
        raise UsageError(
            f"no node named {', '.join(missing)} in the fleet",
            hint=f"nodes include: {known}",
        )

    progress = _LazyProgress(err_console, "predicting passes")
    try:
        prediction = predict(satellites, stations, t0, end, progress=progress)
    finally:
        progress.close()
    planned = plan_contacts(prediction.passes, stations)
    prediction = replace(prediction, passes=tuple(planned))
    report_fleet(fleet, prediction)

    if store:
        parameters = {
            "hours": hours,
            "tle_file": tle_file,
            "fleet_nodes": len(fleet.tles),
            "nodes": list(nodes),
            "min_elevation_deg": min_elevation,
        }
        _store(ctx, cfg, fleet, prediction, stations, parameters)

    # By AOS: a pass in progress (AOS before now) comes first.
    ordered = sorted(planned, key=lambda p: (p.aos, p.station, p.node))
    if as_json:
        echo_json(pass_record(p) for p in ordered)
    elif as_csv:
        echo_csv((pass_record(p) for p in ordered), JSON_FIELDS)
    else:
        reference = now if start is None or start.lower() == "now" else t0
        console = Console(highlight=False)
        scheduled = sum(1 for p in ordered if p.scheduled)
        title = (
            f"{len(ordered)} passes, {len(satellites)} nodes, {len(stations)} stations, "
            f"{t0:%Y-%m-%d %H:%M}Z +{hours:g}h, {scheduled} scheduled"
        )
        console.print(render_table(ordered, reference, limit, title, console.width))
        if 0 < limit < len(ordered):
            console.print(
                f"[dim]{len(ordered) - limit} more; --limit 0 shows all, --json all fields[/]"
            )


def _store(
    ctx: click.Context,
    cfg: Config | None,
    fleet: Fleet,
    prediction: Prediction,
    stations: Sequence[Station],
    parameters: dict[str, Any],
) -> None:
    db = context.archive(ctx, cfg)
    by_source: dict[str, list[Any]] = {}
    for tle in fleet.tles:
        by_source.setdefault(tle.source or "unknown", []).append(tle)
    for source, tles in by_source.items():
        if source in fleet.archived_sources:
            continue  # already archived by `groundctl tle fetch`, under its own fetch time
        raw = "".join(f"{t.name}\n{t.line1}\n{t.line2}\n" for t in tles)
        db.store_tle_set(source, "fleet", "3le", raw, tles, datetime.now(UTC))
    db.store_prediction(
        prediction,
        stations,
        parameters,
        str(cfg.path) if cfg else "",
    )


# --- flown passes -----------------------------------------------------------------------


def _flown(
    ctx: click.Context,
    nodes: tuple[str, ...],
    start: str | None,
    hours: float,
    station_specs: tuple[str, ...],
    tle_file: str | None,
    min_elevation: float | None,
    as_json: bool,
    as_csv: bool,
    limit: int,
) -> None:
    """`passes --flown`: the flown passes of the archive, newest `limit`, by AOS."""
    given = [
        option
        for option, used in (
            ("--tle", tle_file is not None),
            ("--min-elevation", min_elevation is not None),
            ("--store/--no-store", _given(ctx, "store")),
        )
        if used
    ]
    if given:
        raise UsageError(
            f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to predicted "
            "passes, not to --flown",
            hint="--flown lists the passes recorded in the archive: leave "
            f"{'them' if len(given) > 1 else 'it'} out, or leave out --flown to predict passes",
        )
    ad_hoc = next((s for s in station_specs if "," in s), None)
    if ad_hoc is not None:
        raise UsageError(
            f"--station {ad_hoc!r}: with --flown, give a station's name",
            hint="flown passes are filtered by the station name they were flown at, "
            "e.g. --station Weilheim",
        )
    start_s, end_s = _flown_window(ctx, start, hours)
    # JSON and CSV list every pass unless --limit is given, as `groundctl db audit` does.
    if (as_json or as_csv) and not _given(ctx, "limit"):
        limit = 0
    archive = _existing_archive(ctx)
    node_names = [_flown_name(archive, "node", n) for n in nodes]
    station_names = [_flown_name(archive, "station", s) for s in station_specs]
    rows = _flown_rows(archive, node_names, station_names, start_s, end_s, limit)
    more = 0 < limit < len(rows)
    shown = rows[-limit:] if more else rows
    if as_json:
        echo_json(flown_record(r) for r in shown)
    elif as_csv:
        echo_csv((flown_record(r) for r in shown), FLOWN_FIELDS)
    else:
        console = Console(highlight=False)
        scope = ""
        if node_names:
            scope += f", node {', '.join(node_names)}"
        if station_names:
            scope += f", station {', '.join(station_names)}"
        if start_s is not None:
            since = iso_z(datetime.fromtimestamp(start_s, UTC))
            scope += f", {since} to {'now' if end_s is None else iso_z(_utc(end_s))}"
        title = (
            f"flown passes: {f'the newest {len(shown)}' if more else len(shown)}{scope}, "
            f"archive {archive.path}"
        )
        console.print(render_flown_table(shown, title, console.width))
        if more:
            console.print(
                f"[dim]older passes before these {limit}; --limit 0 shows all, "
                "--start/--hours choose a window, --json all fields[/]"
            )
        elif not shown:
            console.print(f"[dim]no flown passes{escape(scope)}[/]")


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source is not ParameterSource.DEFAULT


def _utc(time_s: float) -> datetime:
    return datetime.fromtimestamp(time_s, UTC)


def _flown_window(
    ctx: click.Context, start: str | None, hours: float
) -> tuple[float | None, float | None]:
    """--start and --hours as a window of Unix seconds: both give [start, start + hours);
    --start alone from it on; --hours alone the last hours until now; neither: no window."""
    has_hours = _given(ctx, "hours")
    if start is None:
        if not has_hours:
            return None, None
        now = datetime.now(UTC)
        return (now - timedelta(hours=hours)).timestamp(), None
    t0 = parse_time(start, "--start")
    end = t0 + timedelta(hours=hours) if has_hours else None
    return t0.timestamp(), None if end is None else end.timestamp()


def _existing_archive(ctx: click.Context) -> Archive:
    """The archive, which must exist: listing flown passes never creates an empty one."""
    cfg = None if ctx.find_root().obj.get("archive_path") else context.config(ctx)
    path = context.archive_path(ctx, cfg)
    if not path.is_file():
        raise ArchiveError(
            f"no archive at {path}",
            hint="flown passes are recorded in the archive as telemetry arrives "
            "(groundctl sim, console, run or cmd); give --archive PATH to read another",
        )
    return context.archive(ctx, cfg)


def _flown_name(archive: Archive, kind: str, name: str) -> str:
    """A --node or --station name as the flown passes spell it (names are not
    case-sensitive); UsageError when no flown pass has it."""
    found = (
        archive.flown_passes(node=name, limit=1)
        if kind == "node"
        else archive.flown_passes(station=name, limit=1)
    )
    if found:
        return name
    # Only when the name is not found as given: every flown pass's names, for the hint.
    known = sorted({str(r[kind]) for r in archive.flown_passes() if r[kind]})
    match = next((k for k in known if k.lower() == name.lower()), None)
    if match is not None:
        return match
    listed = ", ".join(known[:12]) + (f" and {len(known) - 12} more" if len(known) > 12 else "")
    raise UsageError(
        f"no flown pass of {kind} {name} in archive {archive.path}",
        hint=f"{kind}s with flown passes: {listed}"
        if known
        else "this archive has no flown passes yet: they are recorded as telemetry arrives",
    )


def _flown_rows(
    archive: Archive,
    nodes: Sequence[str],
    stations: Sequence[str],
    start_s: float | None,
    end_s: float | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The flown passes of any of `nodes` at any of `stations` (all when empty) in the
    window, by AOS: the newest `limit` + 1 (all when `limit` is 0), to tell that there is
    more. The newest N of a union are among the newest N of each part."""
    found: dict[int, dict[str, Any]] = {}
    every: list[str | None] = [None]
    for node in nodes or every:
        for station in stations or every:
            for row in archive.flown_passes(
                node=node,
                station=station,
                start_s=start_s,
                end_s=end_s,
                limit=limit + 1 if limit > 0 else None,
            ):
                found[int(row["id"])] = row
    ordered = sorted(found.values(), key=lambda r: (r["aos"], r["id"]))
    return ordered[-(limit + 1) :] if limit > 0 else ordered


def _iso_or_none(time_s: float | None) -> str | None:
    return None if time_s is None else iso_z(_utc(time_s))


def flown_record(row: dict[str, Any]) -> dict[str, Any]:
    """One flown pass as the JSON/CSV record (`FLOWN_FIELDS`): times ISO 8601 UTC with
    milliseconds (`los` null while flying), `duration_s` LOS - AOS (null while flying)."""
    record = {field: row.get(field) for field in FLOWN_FIELDS}
    los = row["los"]
    record.update(
        aos=iso_z(_utc(row["aos"])),
        los=_iso_or_none(los),
        duration_s=None if los is None else round(los - row["aos"], 3),
        planned_aos=_iso_or_none(row["planned_aos"]),
        planned_los=_iso_or_none(row["planned_los"]),
    )
    return record


_STATUS_STYLE = {"flying": "bold green", "interrupted": "yellow"}


def render_flown_table(rows: Sequence[dict[str, Any]], title: str, width: int = 160) -> Table:
    """Flown passes as a Rich table; below 110 columns the bytes, the commands verified
    and failed, and the maximum elevation are left out so that it fits 80 columns."""
    wide = width >= 110
    table = _table(title)
    columns: list[tuple[str, str]] = [
        ("Id", "right"),
        ("Node", "left"),
        ("Station", "left"),
        ("AOS (UTC)", "left"),
        ("Dur", "right"),
        ("Status", "left"),
        ("Down", "right"),
        ("Up", "right"),
    ]
    if wide:
        columns.append(("Bytes", "right"))
    columns += [("Gaps/miss", "right"), ("Alerts", "right")]
    columns.append(("Cmds s/v/f", "right") if wide else ("Cmds", "right"))
    if wide:
        columns.append(("Max el", "right"))
    for name, justify in columns:
        table.add_column(
            name,
            justify=justify,  # type: ignore[arg-type]
            no_wrap=True,
            max_width=(14 if wide else 10) if name == "Station" else None,
            overflow="ellipsis",
        )
    for r in rows:
        aos = _utc(r["aos"])
        los = r["los"]
        station = escape(r["station"]) if r["station"] else f"[dim]{escape(r['link'])} link[/]"
        style = _STATUS_STYLE.get(r["status"], "")
        status = f"[{style}]{r['status']}[/]" if style else r["status"]
        gaps = f"{r['gaps']}/{r['missing']}"
        failed = r["commands_failed"]
        row = [
            str(r["id"]),
            escape(r["node"]),
            station,
            f"{aos:%m-%d %H:%M:%S}" if wide else f"{aos:%d %H:%M:%S}",
            "" if los is None else _span(timedelta(seconds=los - r["aos"])),
            status,
            f"{r['frames_down']:,}",
            f"{r['frames_up']:,}",
        ]
        if wide:
            row.append(decimal(r["bytes_down"] + r["bytes_up"]))
        row += [
            f"[yellow]{gaps}[/]" if r["gaps"] or r["missing"] else gaps,
            f"[yellow]{r['alerts_raised']}[/]" if r["alerts_raised"] else "0",
        ]
        if wide:
            commands = f"{r['commands_sent']}/{r['commands_verified']}/"
            row.append(commands + (f"[red]{failed}[/]" if failed else "0"))
            elevation = r["max_elevation_deg"]
            row.append("" if elevation is None else f"{elevation:4.1f}°")
        else:
            row.append(f"{r['commands_sent']}" + (f" [red]{failed}✗[/]" if failed else ""))
        table.add_row(*row)
    return table
