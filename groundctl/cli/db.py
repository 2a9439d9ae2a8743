"""`groundctl db`: look into the archive, import recordings, export, prune, and check the
audit trail.

The SQL lives in `groundctl.archive.store` (only the archive package touches SQLite);
this module parses options, picks the mission and prints.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.filesize import decimal
from rich.markup import escape
from rich.table import Table

from groundctl.archive.audit import ChainReport, quick_check
from groundctl.archive.export import (
    FORMATS,
    Selection,
    export_ccsds,
    export_csv,
    export_sqlite,
    format_for,
    is_sqlite_file,
)
from groundctl.archive.store import Archive, StoredSample
from groundctl.cli import cli, context, err_console
from groundctl.cli.output import echo_csv, echo_json
from groundctl.cli.passes import iso_z, parse_time
from groundctl.config import Config
from groundctl.errors import ArchiveError, UsageError
from groundctl.mdb.model import Mission

SAMPLE_FIELDS = ("time", "node", "parameter", "raw", "value", "state")
QUERY_TABLE_LIMIT = 100
_STATE_STYLE = {"nominal": "green", "yellow": "bold yellow", "red": "bold red", "disabled": "dim"}


@cli.group()
def db() -> None:
    """Look into the archive: statistics, import, query, export, prune, audit trail.

    Frames keep their receive time; samples and events the packet time when the packet
    has one (see `groundctl db vacuum --help` for what that means for pruning). Times
    on the command line are ISO 8601, UTC unless they say otherwise.

    \b
    Examples:
      groundctl db stats
      groundctl db import session.jsonl --mission cfs-lab --node cfs
      groundctl db query ES_HK.CMD_COUNT --latest
      groundctl db export --from 2026-11-24T03:00Z --to 2026-11-24T04:00Z pass.tlm
      groundctl db export --pass 42 pass-42.db      # one flown pass, a small archive
      groundctl db vacuum --keep-days 30 --dry-run
      groundctl db verify
      groundctl db audit --node ODC-07
    """


# --- helpers ----------------------------------------------------------------------------


def _config(ctx: click.Context) -> Config | None:
    """The config, or None with --archive: these commands need it only for that path."""
    return None if ctx.find_root().obj.get("archive_path") else context.config(ctx)


def _archive_path(ctx: click.Context) -> Path:
    return context.archive_path(ctx, _config(ctx))


def _existing_archive(ctx: click.Context) -> Archive:
    """The archive, which must exist: reading commands never create an empty one."""
    path = _archive_path(ctx)
    if not path.is_file():
        raise ArchiveError(
            f"no archive at {path}",
            hint="import a recording with `groundctl db import FILE`, or give --archive PATH",
        )
    return context.archive(ctx, _config(ctx))


def _time_option(option: str, value: str) -> float:
    """An ISO 8601 time option as Unix seconds (UTC when it has no zone)."""
    return parse_time(value, option).timestamp()


def _range(start: str | None, end: str | None) -> tuple[float | None, float | None]:
    start_s = None if start is None else _time_option("--from", start)
    end_s = None if end is None else _time_option("--to", end)
    if start_s is not None and end_s is not None and start_s >= end_s:
        raise UsageError(
            f"--from {start} is not before --to {end}",
            hint="the range is FROM (included) to TO (excluded)",
        )
    return start_s, end_s


def utc_text(time_s: float) -> str:
    """Unix seconds as ISO 8601 UTC with milliseconds and a Z."""
    return iso_z(datetime.fromtimestamp(time_s, UTC))


def _plain(value: Any) -> Any:
    """A decoded value as JSON/CSV can hold it: bytes as hex, NaN/inf as text."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def sample_record(s: StoredSample) -> dict[str, Any]:
    """One sample as the JSON/CSV record: time ISO 8601 UTC with ms, raw and value plain."""
    return {
        "time": utc_text(s.time_s),
        "node": s.node,
        "parameter": s.parameter,
        "raw": _plain(s.raw),
        "value": _plain(s.value),
        "state": s.state,
    }


def _cell(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float):
        return f"{value:.7g}"
    return "" if value is None else str(value)


def _size(n: int) -> str:
    return f"{decimal(n)} ({n:,} bytes)"


# --- stats ------------------------------------------------------------------------------


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """What the archive holds: size, schema, rows per table, time spans, frames by status,
    counts per node.

    \b
    Examples:
      groundctl db stats
      groundctl --archive ops.db db stats --json
    """
    archive = _existing_archive(ctx)
    db_bytes, wal_bytes = archive.disk_bytes()
    spans = {t: archive.time_span(t) for t in ("frames", "samples", "events")}
    tables = archive.stats()
    by_status = archive.frame_status_counts()
    per_node = archive.node_counts()
    report = {
        "archive": str(archive.path),
        "size_bytes": db_bytes,
        "wal_bytes": wal_bytes,
        "schema_version": archive.schema_version,
        "tables": tables,
        "spans": {
            t: None if span is None else {"first": utc_text(span[0]), "last": utc_text(span[1])}
            for t, span in spans.items()
        },
        "frames_by_status": [
            {"direction": d, "status": s, "count": n} for (d, s), n in by_status.items()
        ],
        "nodes": per_node,
    }
    if as_json:
        click.echo(json.dumps(report, indent=1))
        return
    console = Console(highlight=False)
    console.print(f"[bold]archive[/]  {escape(str(archive.path))}", soft_wrap=True)
    size = _size(db_bytes) + (f" + write-ahead log {decimal(wal_bytes)}" if wal_bytes else "")
    console.print(f"[bold]size[/]     {size}")
    console.print(f"[bold]schema[/]   version {report['schema_version']}")

    def table(title: str, columns: Iterable[str], right: Iterable[str] = ()) -> Table:
        t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, header_style="bold")
        right = set(right)
        for c in columns:
            t.add_column(c, justify="right" if c in right else "left")
        return t

    rows = table("rows", ("table", "rows"), ("rows",))
    for name, count in tables.items():
        rows.add_row(name, f"{count:,}")
    console.print(rows)
    span_table = table("time span (UTC)", ("table", "first", "last", "by"))
    basis = {"frames": "receive time", "samples": "packet time", "events": "packet time"}
    for name, span in spans.items():
        if span is None:
            span_table.add_row(name, "[dim]empty[/]", "", "")
        else:
            span_table.add_row(name, utc_text(span[0]), utc_text(span[1]), basis[name])
    console.print(span_table)
    status = table("frames by status", ("direction", "status", "frames"), ("frames",))
    for (direction, state), count in by_status.items():
        status.add_row(direction, state, f"{count:,}")
    console.print(status)
    keys = ("downlink", "uplink", "samples", "events")
    nodes = table("per node", ("node", *keys), keys)
    for node, counts in per_node.items():
        nodes.add_row(escape(node), *(f"{counts[k]:,}" for k in keys))
    console.print(nodes)


# --- import -----------------------------------------------------------------------------


def _mission(ctx: click.Context, spec: str | None) -> tuple[Mission, Path]:
    """--mission NAME (from the config's [missions]) or PATH; the only one when omitted."""
    from groundctl.mdb.loader import load_mission

    if spec is not None and (Path(spec).is_file() or spec.endswith(".toml") or os.sep in spec):
        path = Path(spec)
        if not path.is_file():
            raise UsageError(
                f"--mission {spec}: no such file",
                hint="give a mission database TOML (e.g. data/missions/cfs-lab.toml) or a "
                "mission name from the config's [missions]",
            )
        return load_mission(path), path
    cfg = context.config(ctx)
    names = ", ".join(sorted(cfg.missions)) or "none"
    if spec is None:
        if not cfg.missions:
            raise UsageError(
                # No square brackets: the error report prints messages as Rich markup.
                f"the config {cfg.path} defines no missions: give --mission",
                hint="--mission PATH to a mission database TOML (e.g. "
                "data/missions/cfs-lab.toml), or add a missions.NAME table with a path to "
                "the config",
            )
        if len(cfg.missions) > 1:
            raise UsageError(
                f"which mission? the config {cfg.path} has {len(cfg.missions)}: {names}",
                hint=f"give --mission NAME (one of {names}) or --mission PATH to a mission TOML",
            )
        (entry,) = cfg.missions.values()
    else:
        found = cfg.missions.get(spec)
        if found is None:
            raise UsageError(
                f"--mission {spec}: no mission of that name in {cfg.path} and no such file",
                hint=f"configured missions: {names}; or give a path to a mission TOML",
            )
        entry = found
    return load_mission(entry.path), entry.path


@db.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--mission",
    "mission_spec",
    metavar="NAME|PATH",
    help="Mission database: a name from the config's [missions] or a TOML file. "
    "Default: the config's only mission.",
)
@click.option("--node", help="Node the recording comes from. Default: the mission's name.")
@click.option(
    "--link", default="recording", show_default=True, help="Link name stored with each frame."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.pass_context
def import_recording(
    ctx: click.Context,
    file: str,
    mission_spec: str | None,
    node: str | None,
    link: str,
    as_json: bool,
) -> None:
    """Run a recording through the telemetry pipeline into the archive.

    FILE is a JSON-lines UDP session ({"t": unix s, "dir": "up"|"down", "hex": "..."} per
    line) or a CCSDS packet file (concatenated space packets; every packet gets the import
    time as receive time). Every frame is archived, decoded or not: packets the mission
    does not define are kept with status "unknown", broken ones as "malformed". The whole
    file is checked before anything is written, so a bad line archives nothing; importing
    the same file twice archives it twice. Formats added by plugins (the groundctl.recordings
    entry points, e.g. KISS captures with groundctl-kiss) are read too. The frames make
    flown passes as a link without a contact plan does (`groundctl passes --flown`).

    \b
    Examples:
      groundctl db import session.jsonl --mission data/missions/cfs-lab.toml --node cfs
      groundctl db import pass-0421.tlm --mission odc --node ODC-07 --link sband
    """
    from groundctl.ingest import RecordingError, ingest, stop_on_signals

    mission, mission_path = _mission(ctx, mission_spec)
    node = node or mission.name
    path = Path(file)
    now = time.time()
    if not path.is_file():
        raise RecordingError(f"cannot read {path}: no such file")
    archive_path = _archive_path(ctx)
    # Ctrl-C or SIGTERM stops reading; everything read so far is committed first.
    stop, restore = stop_on_signals()
    try:
        report = ingest(
            path, archive_path, mission, node=node, link=link, import_time_s=now, stop=stop
        )
    finally:
        restore()
    for problem in report.problems[:10]:
        err_console.print(
            f"archived as malformed: {escape(problem)}", highlight=False, soft_wrap=True
        )
    if len(report.problems) > 10:
        err_console.print(f"... and {len(report.problems) - 10} more unreadable records")
    if report.interrupted:
        err_console.print(
            f"interrupted: {report.frames + report.uplink} frames read and archived; "
            "the rest of the file was not imported",
            highlight=False,
        )
    if as_json:
        record = {"file": str(path), "archive": str(archive_path), "mission": mission.name}
        click.echo(json.dumps({**record, "node": node, **asdict(report)}, indent=1))
        return
    console = Console(highlight=False)
    console.print(
        f"imported {escape(str(path))} into {escape(str(archive_path))} "
        f"(mission {escape(mission.name)} from {escape(str(mission_path))}, "
        f"node {escape(node)}, link {escape(link)})",
        soft_wrap=True,
    )
    lines = [
        ("frames", report.frames, "downlink frames"),
        ("uplink", report.uplink, "uplink frames archived as sent"),
        ("samples", report.samples, ""),
        ("events", report.events, ""),
        ("alerts", report.alerts, "alert changes"),
        ("malformed", report.malformed, "frames kept undecoded"),
        ("unknown", report.unknown, "frames with an id the mission does not define"),
    ]
    for name, count, note in lines:
        style = "yellow" if name in ("malformed", "unknown") and count else ""
        text = f"  {name:<10}{count:>10,}"
        console.print(f"[{style}]{text}[/]  [dim]{note}[/]" if style else f"{text}  [dim]{note}[/]")


# --- query ------------------------------------------------------------------------------


def _unknown_parameter(archive: Archive, parameter: str) -> UsageError:
    known = archive.sample_parameters()
    if not known:
        return UsageError(
            f"no samples in archive {archive.path}, so no parameter {parameter}",
            hint="import a recording first: groundctl db import FILE --mission NAME",
        )
    folded = {k.lower(): k for k in known}
    close = difflib.get_close_matches(parameter.lower(), list(folded), n=5, cutoff=0.6)
    suggestions = [folded[c] for c in close]
    if suggestions:
        hint = f"did you mean {suggestions[0]}?"
        if len(suggestions) > 1:
            hint += f" (also close: {', '.join(suggestions[1:])})"
    else:
        hint = f"parameters are PACKET.FIELD or derived names, e.g. {', '.join(known[:5])}"
    return UsageError(f"no parameter {parameter} in archive {archive.path}", hint=hint)


@db.command()
@click.argument("parameter")
@click.option("--node", help="Only this node. Default: every node with the parameter.")
@click.option("--from", "start", metavar="TIME", help="From this sample time (ISO 8601, included).")
@click.option("--to", "end", metavar="TIME", help="Up to this sample time (ISO 8601, excluded).")
@click.option("--latest", is_flag=True, help="Only the latest sample per node (in the range).")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    help=f"At most N samples, the first in time order (0: all). Default: "
    f"{QUERY_TABLE_LIMIT} in the table, all with --json/--csv.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list on stdout.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV on stdout.")
@click.pass_context
def query(
    ctx: click.Context,
    parameter: str,
    node: str | None,
    start: str | None,
    end: str | None,
    latest: bool,
    limit: int | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Samples of one parameter: time (UTC, ms), node, parameter, raw, value, state.

    PARAMETER is PACKET.FIELD (e.g. ES_HK.CMD_COUNT) or a derived parameter. Sample time
    is the packet time when the packet has one, else the receive time; the range is FROM
    (included) to TO (excluded), all of it by default.

    \b
    Examples:
      groundctl db query ES_HK.CMD_COUNT
      groundctl db query ES_HK.CMD_COUNT --latest
      groundctl db query BATT_V --node ODC-07 --from 2026-05-14T06:00Z --to 2026-05-14T07:00Z
      groundctl db query TBL_HK.CMD_COUNT --csv > counts.csv
    """
    if as_json and as_csv:
        raise UsageError("choose one of --json and --csv")
    start_s, end_s = _range(start, end)
    archive = _existing_archive(ctx)
    nodes = archive.sample_nodes(parameter)
    if not nodes:
        raise _unknown_parameter(archive, parameter)
    if node is not None and node not in nodes:
        raise UsageError(
            f"node {node} has no samples of {parameter} in archive {archive.path}",
            hint=f"nodes with {parameter}: {', '.join(nodes[:12])}",
        )
    table_view = not (as_json or as_csv)
    effective = QUERY_TABLE_LIMIT if limit is None and table_view else (limit or 0)
    rows: Iterator[StoredSample]
    if latest:
        rows = iter(archive.latest_samples(parameter, node=node, start_s=start_s, end_s=end_s))
    else:
        # One more than shown, to tell the table's reader that there is more.
        rows = archive.query_samples(
            parameter,
            node=node,
            start_s=start_s,
            end_s=end_s,
            limit=effective + 1 if table_view and effective else effective,
        )
    if as_json:
        echo_json(sample_record(s) for s in rows)
    elif as_csv:
        echo_csv((sample_record(s) for s in rows), SAMPLE_FIELDS)
    else:
        _print_samples(list(rows), parameter, node, start, end, latest, effective)


def _print_samples(
    samples: list[StoredSample],
    parameter: str,
    node: str | None,
    start: str | None,
    end: str | None,
    latest: bool,
    limit: int,
) -> None:
    more = bool(limit) and len(samples) > limit
    shown = samples[:limit] if limit else samples
    what = "latest per node" if latest else f"{len(shown)}{'+' if more else ''} samples"
    scope = f", node {node}" if node else ""
    if start or end:
        scope += f", {start or 'start'} to {end or 'end'}"
    table = Table(
        title=f"{parameter}: {what}{scope}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        header_style="bold",
    )
    for column, justify in (
        ("Time (UTC)", "left"),
        ("Node", "left"),
        ("Parameter", "left"),
        ("Raw", "right"),
        ("Value", "right"),
        ("State", "left"),
    ):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for s in shown:
        style = _STATE_STYLE.get(s.state, "")
        state = f"[{style}]{escape(s.state)}[/]" if style else escape(s.state)
        table.add_row(
            utc_text(s.time_s),
            escape(s.node),
            escape(s.parameter),
            escape(_cell(s.raw)),
            escape(_cell(s.value)),
            state,
        )
    console = Console(highlight=False)
    console.print(table)
    if more:
        console.print(
            f"[dim]more samples after these {limit}; --limit 0 shows all, --from/--to narrow "
            "the range, --csv/--json list every sample[/]"
        )
    elif not shown:
        console.print("[dim]no samples in that range[/]")


# --- export -----------------------------------------------------------------------------


def _check_choice(pass_id: int | None, start: str | None, end: str | None) -> None:
    """Exactly one way of choosing what to export: --pass ID, or --from and --to."""
    if pass_id is not None and (start is not None or end is not None):
        given = " and ".join(o for o, v in (("--from", start), ("--to", end)) if v is not None)
        raise UsageError(
            f"--pass and {given} both choose what to export: give one",
            hint="--pass ID exports one flown pass; --from TIME --to TIME the frames "
            "received in a range",
        )
    if pass_id is None and (start is None or end is None):
        if start is not None:
            message = "--from needs --to: a range has both ends"
        elif end is not None:
            message = "--to needs --from: a range has both ends"
        else:
            message = "nothing chosen to export: give --pass ID, or --from TIME and --to TIME"
        raise UsageError(
            message,
            hint="e.g. --pass 42 (`groundctl passes --flown` lists the flown passes), or "
            "--from 2026-11-24T03:00Z --to 2026-11-24T04:00Z",
        )


def _selection(
    archive: Archive,
    pass_id: int | None,
    start: str | None,
    end: str | None,
    node: str | None,
) -> tuple[Selection, dict[str, Any] | None]:
    """--pass ID, or --from and --to (with --node): the selection and the flown pass
    (None for a range); `_check_choice` has checked that exactly one way is given."""
    if pass_id is None:
        assert start is not None and end is not None
        start_s, end_s = _range(start, end)
        return Selection(start_s=start_s, end_s=end_s, node=node), None
    flown = archive.flown_pass(pass_id)
    if flown is None:
        newest = archive.flown_passes(limit=1)
        raise UsageError(
            f"no flown pass {pass_id} in archive {archive.path}",
            hint=f"`groundctl passes --flown` lists them (the newest is {newest[0]['id']})"
            if newest
            else "this archive has no flown passes yet: they are recorded as telemetry "
            "arrives (groundctl sim, console, run or cmd)",
        )
    if node is not None and node != flown["node"]:
        raise UsageError(
            f"flown pass {pass_id} is node {flown['node']}'s, not {node}'s",
            hint="leave out --node with --pass: a pass is one node's",
        )
    return Selection(pass_id=pass_id), flown


def _check_output(target: Path, fmt: str, source: Path, force: bool) -> None:
    """Refuse to write over the archive itself, and over an existing SQLite export or any
    SQLite file (an archive, say) unless --force."""
    if target.exists() and source.exists() and target.resolve() == source.resolve():
        raise UsageError(
            f"{target} is the archive being exported",
            hint="give another OUTPUT file",
        )
    if target.is_dir():
        raise UsageError(f"{target} is a folder", hint="give a file name as OUTPUT")
    if force or not target.exists():
        return
    if fmt == "sqlite" or is_sqlite_file(target):
        kind = "a SQLite database" if is_sqlite_file(target) else "a file"
        raise UsageError(
            f"{target} already exists ({kind}); not overwriting it",
            hint="give another OUTPUT, or --force to replace it",
        )


def _pass_text(flown: dict[str, Any]) -> str:
    where = f"at {flown['station']}" if flown["station"] else f"on link {flown['link']}"
    state = "" if flown["status"] == "flown" else f", {flown['status']}"
    return f"pass {flown['id']} ({flown['node']} {where}, AOS {utc_text(flown['aos'])}{state})"


@db.command()
@click.argument("output", type=click.Path(dir_okay=False))
@click.option(
    "--pass",
    "pass_id",
    type=click.IntRange(min=1),
    metavar="ID",
    help="One flown pass (`groundctl passes --flown` lists them), instead of --from/--to.",
)
@click.option("--from", "start", metavar="TIME", help="Receive time (included).")
@click.option("--to", "end", metavar="TIME", help="Receive time (excluded).")
@click.option("--node", help="With --from/--to: only this node's frames. Default: every node.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS, case_sensitive=False),
    help="ccsds (packet file), csv (samples) or sqlite (an archive). Default: from "
    "OUTPUT's suffix: .csv csv; .db, .sqlite, .sqlite3 sqlite; else ccsds.",
)
@click.option(
    "--all",
    "include_all",
    is_flag=True,
    help="ccsds: also malformed frames and frames of nodes without a mission database.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing sqlite OUTPUT (or any SQLite file as OUTPUT).",
)
@click.pass_context
def export(
    ctx: click.Context,
    output: str,
    pass_id: int | None,
    start: str | None,
    end: str | None,
    node: str | None,
    fmt: str | None,
    include_all: bool,
    force: bool,
) -> None:
    """Export a flown pass, or what was received in a range: a CCSDS packet file, the
    samples as CSV, or a small archive of its own.

    Choose one flown pass with --pass ID, or a range of receive times with --from and
    --to (and --node). The format follows OUTPUT's suffix unless --format says:

    \b
      ccsds   the downlink frames byte for byte, in receive order, concatenated (the
              format flight projects record and `groundctl db import` reads back).
              Packets the mission does not define are included; malformed frames and
              frames of nodes without a mission only with --all (a malformed frame is
              not a whole packet, so the file may then not split back into packets).
      csv     the samples of those frames, in frame order: time (ISO 8601 UTC, ms),
              node, parameter, raw, value, state, frame_id, with a header row.
      sqlite  a groundctl archive every command opens: the flown pass(es), frames of
              both directions with their samples, events, alerts and their actions,
              commands and their stages, ids kept. A range takes the passes that
              overlap it, whole. The audit trail stays out: its hash chain starts at
              the trail's first row, so a part of it could not be verified.

    The file appears only when complete (it is written as OUTPUT.part). An existing
    sqlite OUTPUT, or any SQLite file, is replaced only with --force.

    \b
    Examples:
      groundctl db export --from 2026-11-24T03:00Z --to 2026-11-24T04:00Z pass.tlm
      groundctl db export --from 2026-05-14 --to 2026-05-15 --node ODC-07 --all day.tlm
      groundctl db export --pass 42 pass-42.tlm
      groundctl db export --pass 42 pass-42.csv
      groundctl db export --pass 42 pass-42.db      # then: groundctl --archive pass-42.db ...
      groundctl db export --pass 42 --format sqlite pass-42.archive
    """
    _check_choice(pass_id, start, end)
    target = Path(output)
    fmt = fmt.lower() if fmt else format_for(target)
    if include_all and fmt != "ccsds":
        raise UsageError(
            f"--all applies to the ccsds format, not {fmt}",
            hint=f"the {fmt} export has every frame whatever its status",
        )
    archive = _existing_archive(ctx)
    selection, flown = _selection(archive, pass_id, start, end, node)
    _check_output(target, fmt, archive.path, force)
    if flown is not None:
        what = _pass_text(flown)
        nothing = f"no downlink frames in {what}"
    else:
        what = f"{start} to {end}{f', node {node}' if node else ''}"
        nothing = (
            f"no downlink frames received between {start} and {end}"
            f"{f' from node {node}' if node else ''}"
        )
    try:
        if fmt == "ccsds":
            _export_ccsds(
                archive, selection, target, include_all, nothing, range_note=flown is None
            )
        elif fmt == "csv":
            report = export_csv(archive, selection, target)
            click.echo(f"{report.samples} samples of {report.frames} frames -> {target}")
            if not report.samples:
                err_console.print(f"[yellow]no samples in {escape(what)}[/]", soft_wrap=True)
        else:
            copied = export_sqlite(archive, selection, target).rows
            listing = ", ".join(_counted(n, table) for table, n in copied.items())
            click.echo(f"{listing} -> {target}")
            if not copied["frames"]:
                err_console.print(f"[yellow]no frames in {escape(what)}[/]", soft_wrap=True)
            err_console.print(
                "[dim]the audit trail is not exported (a part of its hash chain cannot be "
                f"verified); it stays in {escape(str(archive.path))}[/]",
                soft_wrap=True,
            )
    except OSError as error:
        raise UsageError(
            f"cannot write {target}: {error.strerror or error}",
            hint="check the folder exists and is writable",
        ) from None
    if flown is not None and flown["status"] == "flying":
        err_console.print(
            f"[yellow]pass {flown['id']} is still flying:[/] the export holds what was "
            "archived until now",
            soft_wrap=True,
        )


_SINGULAR = {"flown_passes": "flown pass"}


def _counted(n: int, table: str) -> str:
    """'1 frame', '2 frames', '1 flown pass': rows of a table in words."""
    plural = table.replace("_", " ")
    return f"{n} {plural if n != 1 else _SINGULAR.get(table, plural.removesuffix('s'))}"


def _export_ccsds(
    archive: Archive,
    selection: Selection,
    target: Path,
    include_all: bool,
    nothing: str,
    *,
    range_note: bool,
) -> None:
    report = export_ccsds(archive, selection, target, include_all=include_all)
    click.echo(f"{report.frames} frames, {report.bytes} bytes -> {target}")
    if report.skipped:
        left_out = ", ".join(f"{n} {status}" for status, n in report.skipped.items())
        err_console.print(f"[yellow]left out:[/] {left_out} (--all includes them)")
    if not report.frames and not report.skipped:
        note = (
            " (frames go by receive time; `groundctl db stats` shows the archive's time span)"
            if range_note
            else ""
        )
        err_console.print(f"[yellow]{escape(nothing)}[/]{note}", soft_wrap=True)


# --- vacuum -----------------------------------------------------------------------------


@db.command()
@click.option(
    "--keep-days",
    type=click.FloatRange(min=0),
    metavar="N",
    help="Delete telemetry older than N days before now, then compact. Default: only compact.",
)
@click.option("--dry-run", is_flag=True, help="Only print what would be removed; change nothing.")
@click.pass_context
def vacuum(ctx: click.Context, keep_days: float | None, dry_run: bool) -> None:
    """Delete old telemetry and compact the archive file (SQLite VACUUM).

    Which time decides "older": frames go by receive time; samples and events by their
    own time, which is the packet time when the packet has one. So a node whose clock
    was never set (cFS starts near 1980-01-12) has samples that any --keep-days removes
    while their frames stay; check with --dry-run first. Alert actions go only for
    alerts both cleared and acknowledged; alerts themselves and TLEs and passes stay.
    Asks for no confirmation. VACUUM needs the archive to itself for a moment.

    \b
    Examples:
      groundctl db vacuum                        # only compact
      groundctl db vacuum --keep-days 30 --dry-run
      groundctl db vacuum --keep-days 30
    """
    archive = _existing_archive(ctx)
    before = sum(archive.disk_bytes())
    console = Console(highlight=False)
    if keep_days is not None:
        cutoff = datetime.now(UTC) - timedelta(days=keep_days)
        removed = archive.prune_telemetry(cutoff.timestamp(), dry_run=dry_run)
        listing = ", ".join(f"{n:,} {table.replace('_', ' ')}" for table, n in removed.items())
        verb = "would remove" if dry_run else "removed"
        console.print(f"{verb} {listing} older than {iso_z(cutoff)}", soft_wrap=True)
    if dry_run:
        console.print(f"size {_size(before)}; nothing changed (--dry-run)")
        return
    archive.vacuum()
    after = sum(archive.disk_bytes())
    console.print(f"size {_size(before)} -> {_size(after)}")


# --- verify -----------------------------------------------------------------------------


def _chain_record(report: ChainReport) -> dict[str, Any]:
    return {
        "rows": report.rows,
        "head_id": report.head_id,
        "head_hash": report.head_hash,
        "first_bad_id": report.first_bad_id,
        "problem": report.problem,
        "ok": report.ok,
    }


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.pass_context
def verify(ctx: click.Context, as_json: bool) -> None:
    """Check the archive file (SQLite quick_check) and the audit trail's hash chain.

    Every audit row is re-hashed and linked to the one before it, so a row changed,
    removed or inserted by someone who got past the append-only triggers is found, and
    so are triggers that were dropped. Exit status 0 when both checks pass, 1 when the
    file is damaged or the audit trail was tampered with.

    The file alone cannot show rows removed at the end, or a chain rewritten with fresh
    hashes from some row on: note the head (row and hash) printed here elsewhere, in the
    shift log, and compare later. See docs/audit.md.

    \b
    Examples:
      groundctl db verify
      groundctl --archive ops.db db verify --json
    """
    archive = _existing_archive(ctx)
    problems = quick_check(archive.conn)
    chain = archive.verify_audit()
    ok = not problems and chain.ok
    if as_json:
        record = {"archive": str(archive.path), "quick_check": problems or ["ok"]}
        click.echo(json.dumps({**record, "audit": _chain_record(chain), "ok": ok}, indent=1))
        ctx.exit(0 if ok else 1)
    console = Console(highlight=False)
    console.print(f"[bold]archive[/]  {escape(str(archive.path))}", soft_wrap=True)
    if problems:
        console.print("[bold]file[/]     [bold red]SQLite quick_check found problems:[/]")
        for problem in problems:
            console.print(f"  {escape(problem)}", soft_wrap=True)
    else:
        console.print("[bold]file[/]     SQLite quick_check ok")
    if chain.rows:
        console.print(
            f"[bold]audit[/]    {chain.rows:,} rows checked; head row {chain.head_id}, "
            f"hash {chain.head_hash}",
            soft_wrap=True,
        )
    else:
        console.print("[bold]audit[/]    no audit rows yet")
    if chain.ok:
        if chain.rows:
            console.print("[green]audit chain intact[/]")
            console.print(
                "[dim]note the head row and hash in the shift log: rows removed at the end, "
                "or a chain rewritten from some row on, show only against a head noted "
                "earlier[/]",
                soft_wrap=True,
            )
    elif chain.first_bad_id is not None:
        console.print(f"[bold red]audit chain broken:[/] {escape(chain.problem)}", soft_wrap=True)
    else:
        console.print(f"[bold red]audit trail tampered with:[/] {escape(chain.problem)}")
    ctx.exit(0 if ok else 1)


# --- audit ------------------------------------------------------------------------------

AUDIT_FIELDS = ("id", "time", "operator", "role", "action", "node", "command_id", "detail")


def audit_record(row: dict[str, Any]) -> dict[str, Any]:
    """One audit row as the JSON record: time ISO 8601 UTC with ms, detail as an object
    (as the stored text when it is not JSON), and both hashes."""
    try:
        detail: Any = json.loads(row["detail"])
    except (TypeError, ValueError):
        detail = row["detail"]
    return {
        **{field: row[field] for field in AUDIT_FIELDS},
        "time": utc_text(row["time"]) if isinstance(row["time"], float) else str(row["time"]),
        "detail": detail,
        "prev_hash": row["prev_hash"],
        "hash": row["hash"],
    }


@db.command("audit")
@click.option("--node", help="Only rows about this node. Default: every row.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    help=f"At most N rows, the newest (0: all). Default: {QUERY_TABLE_LIMIT} in the table, "
    "all with --json.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list on stdout.")
@click.pass_context
def audit_trail(ctx: click.Context, node: str | None, limit: int | None, as_json: bool) -> None:
    """List the audit trail, newest first.

    Each row: id, time (UTC, ms), operator, role, action, node, command id and detail.

    Rows are never changed or removed; `groundctl db verify` checks that they were not.

    \b
    Examples:
      groundctl db audit
      groundctl db audit --node ODC-07 --limit 20
      groundctl db audit --json > audit.json
    """
    archive = _existing_archive(ctx)
    if as_json:
        echo_json(audit_record(r) for r in archive.audit_rows(limit or None, node))
        return
    shown_limit = QUERY_TABLE_LIMIT if limit is None else limit
    # One more than shown, to tell the reader that there is more.
    rows = archive.audit_rows(shown_limit + 1 if shown_limit else None, node)
    more = bool(shown_limit) and len(rows) > shown_limit
    shown = rows[:shown_limit] if shown_limit else rows
    scope = f", node {escape(node)}" if node is not None else ""
    table = Table(
        title=f"audit trail: {len(shown)}{'+' if more else ''} rows, newest first{scope}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        header_style="bold",
        pad_edge=False,
    )
    for column, justify in (
        ("Id", "right"),
        ("Time (UTC)", "left"),
        ("Operator", "left"),
        ("Role", "left"),
        ("Action", "left"),
        ("Node", "left"),
        ("Command", "right"),
    ):
        table.add_column(
            column,
            justify=justify,  # type: ignore[arg-type]
            no_wrap=column in ("Id", "Time (UTC)"),
            overflow="fold",
        )
    table.add_column("Detail", overflow="fold", min_width=24)
    for r in shown:
        table.add_row(
            str(r["id"]),
            utc_text(r["time"]) if isinstance(r["time"], float) else escape(str(r["time"])),
            escape(r["operator"]),
            escape(r["role"]),
            escape(r["action"]),
            escape(r["node"]),
            "" if r["command_id"] is None else str(r["command_id"]),
            escape(_cell(r["detail"])),
        )
    console = Console(highlight=False)
    console.print(table)
    if more:
        console.print(
            f"[dim]older rows after these {shown_limit}; --limit 0 shows all, --json lists "
            "every row[/]"
        )
    elif not shown:
        console.print(f"[dim]no audit rows{f' for node {escape(node)}' if node else ''}[/]")
