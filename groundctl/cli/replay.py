"""`groundctl replay`: a recorded pass, time range or recording through the live pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from groundctl.cli import cli, context, err_console
from groundctl.errors import UsageError

out = Console(highlight=False)

KEYS_HELP = "keys: space pause/resume, . step, + faster, - slower, m max, g seek, q stop"


@cli.command()
@click.argument("target", required=False, metavar="[PASS_ID|FILE]")
@click.option("--from", "start", metavar="TIME", help="Replay the archive from this receive time.")
@click.option("--to", "end", metavar="TIME", help="... to this receive time (excluded).")
@click.option(
    "--node",
    help="Only this node's frames (archive); for a recording file, the node it came from "
    "(default: replay).",
)
@click.option(
    "--speed",
    type=float,
    help="Times real time, 0.1 to 1000; 0 is as fast as possible. Default: 1.",
)
@click.option("--max", "as_fast", is_flag=True, help="As fast as possible (same as --speed 0).")
@click.option("--seek", "seek", metavar="TIME", help="Start at this recorded time (ISO 8601 UTC).")
@click.option("--paused", is_flag=True, help="Start paused (step with . or resume with space).")
@click.option("--console", "with_console", is_flag=True, help="Replay into the console's panes.")
@click.option(
    "--mission",
    "mission_spec",
    metavar="NAME|PATH",
    help="Mission database of a recording file: a name from [missions] or a TOML file. "
    "Default: the config's, as for live nodes.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    help="Keep what the replay archives (frames, samples, events, alerts, the pass as "
    "replayed) in this new archive. Default: a scratch archive, deleted at the end.",
)
@click.option("--force", is_flag=True, help="Replace the --output archive if it exists.")
@click.option("--quiet", is_flag=True, help="Print only the summary, not events and alerts.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option(
    "--theme",
    type=click.Choice(["dark", "light", "high-contrast"]),
    default="dark",
    show_default=True,
    help="With --console: the colour theme.",
)
@click.pass_context
def replay(
    ctx: click.Context,
    target: str | None,
    start: str | None,
    end: str | None,
    node: str | None,
    speed: float | None,
    as_fast: bool,
    seek: str | None,
    paused: bool,
    with_console: bool,
    mission_spec: str | None,
    output: str | None,
    force: bool,
    quiet: bool,
    as_json: bool,
    theme: str,
) -> None:
    """Replay a flown pass, a time range of the archive, or a recording file.

    The frames go through the same engine as live telemetry: decoded with the mission
    database, limits checked, alerts raised, events shown, all archived - into the
    replay's own archive (--output, or a scratch file), never into the archive replayed
    from. Commanding is disabled. Frames come at their recorded pace times --speed, or
    as fast as possible with --max.

    PASS_ID is a flown pass of the archive (`groundctl passes --flown` lists them). FILE
    is a recording: a JSON-lines UDP session, a CCSDS packet file, a format a plugin
    adds (e.g. KISS captures), or another groundctl archive (e.g. one exported with
    `groundctl db export --format sqlite`). With no target, --from and --to replay a
    window of the archive.

    Headless, events and alerts are printed as they happen and a summary at the end;
    on a terminal the keys pause/resume (space), step one frame (.), go faster (+) or
    slower (-), as fast as possible (m), seek (g, then a time and Enter) and stop (q).
    With --console the panes show the replay under a REPLAY banner with the recorded
    time (keys: see docs/console.md).

    \b
    Examples:
      groundctl replay 42                                  # flown pass 42, real time
      groundctl replay 42 --max --quiet                    # as fast as possible
      groundctl replay 42 --console --speed 10
      groundctl replay --from 2026-11-29T00:00Z --to 2026-11-29T01:00Z --node ODC-07
      groundctl replay session.jsonl --mission data/missions/cfs-lab.toml --node cfs --max
      groundctl replay pass-42.db --max                    # an exported pass
    """
    from groundctl.cli.passes import parse_time
    from groundctl.replay import Replay, ReplayError, check_node, parse_seek, resolve_source

    if as_fast and speed is not None:
        raise UsageError("give --max or --speed, not both", hint="--max is --speed 0")
    speed = 0.0 if as_fast else 1.0 if speed is None else speed
    if speed != 0 and not 0.1 <= speed <= 1000:
        raise UsageError(
            f"--speed {speed:g} is out of range: 0.1 to 1000, or 0 (as fast as possible)",
            hint="--max replays as fast as possible",
        )
    if (start is None) != (end is None):
        given, missing = ("--from", "--to") if start is not None else ("--to", "--from")
        raise UsageError(
            f"{given} needs {missing}: a range is --from TIME --to TIME",
            hint="or replay a flown pass by its id (`groundctl passes --flown`)",
        )
    if start is not None and end is not None:
        start_s = parse_time(start, "--from").timestamp()
        end_s = parse_time(end, "--to").timestamp()
        if end_s <= start_s:
            raise UsageError(
                f"--to {end} is not after --from {start}",
                hint="the range is FROM (included) to TO (excluded)",
            )
    if with_console:
        if as_json or quiet:
            raise UsageError(
                "--console shows the replay in the console: --json and --quiet are for "
                "headless replays"
            )
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise UsageError(
                "--console needs a terminal",
                hint="replay headless (without --console), e.g. with --json",
            )
    elif paused and not sys.stdin.isatty():
        raise UsageError(
            "--paused needs a terminal: its keys step and resume a paused replay",
            hint="give --seek TIME to start part of the way in",
        )
    cfg = context.config(ctx)
    archive_path = context.archive_path(ctx, cfg)
    source = resolve_source(target, archive_path=archive_path, start=start, end=end, node=node)
    if node and source.kind in ("range", "archive"):
        check_node(Path(source.options["archive"]), node)
    missions = None
    if mission_spec is not None:
        if source.kind != "file":
            raise UsageError(
                "--mission applies to recording files",
                hint="an archive's frames are decoded with the config's mission databases",
            )
        from groundctl.cli.db import _mission

        mission, _ = _mission(ctx, mission_spec)
        missions = ({}, mission)
    seek_s = None
    if seek is not None:
        if seek.strip()[:1] in ("+", "-"):
            raise ReplayError(
                f"--seek {seek}: give an ISO 8601 UTC time",
                hint="relative seeks (+/-SECONDS) are for the g key during a replay",
            )
        seek_s = parse_seek(seek, 0.0, relative=False)
    if output is not None:
        target_path = Path(output).resolve()
        replayed = {Path(p).resolve() for k, p in source.options.items() if k == "archive"}
        if target_path in replayed:
            raise UsageError(
                f"--output {output} is the archive replayed from",
                hint="a replay writes to an archive of its own: give another file",
            )
        if not target_path.parent.is_dir():
            raise UsageError(f"--output {output}: no folder {target_path.parent}")
        if target_path.exists():
            if not force:
                raise UsageError(
                    f"--output {output} exists",
                    hint="a replay writes a new archive: give another name, or --force "
                    "to replace it",
                )
            for suffix in ("", "-wal", "-shm"):
                Path(f"{target_path}{suffix}").unlink(missing_ok=True)
    with _output_archive(output) as output_path:
        if with_console:
            from groundctl.cli.console import run_replay_console

            run_replay_console(
                cfg,
                source,
                output_path,
                speed=speed,
                seek_s=seek_s,
                paused=paused,
                missions=missions,
                theme=theme,
            )
            return
        job = Replay(
            cfg,
            source,
            output_path,
            speed=speed,
            seek_s=seek_s,
            paused=paused,
            missions=missions,
        )
        alerts: list[dict[str, Any]] = []
        job.on_message = _printer(alerts, show=not (quiet or as_json))
        job.link = job.build_link()  # its options checked before anything starts
        if not as_json:
            err_console.print(f"[bold]replaying[/] {escape(source.title)}", soft_wrap=True)
        report = asyncio.run(_headless(job, keys=not as_json and sys.stdin.isatty()))
        report.output = output or ""
        if as_json:
            click.echo(json.dumps({**report.record(), "alerts": alerts}, indent=2))
        else:
            _summary(report.record())
        if not report.frames:
            err_console.print(
                "[yellow]no frames were replayed[/]"
                + (" (nothing at or after --seek)" if seek_s is not None else ""),
                soft_wrap=True,
            )


@contextlib.contextmanager
def _output_archive(output: str | None) -> Iterator[Path]:
    """The replay's archive: `output`, or a scratch file removed afterwards."""
    if output is not None:
        yield Path(output)
        return
    with tempfile.TemporaryDirectory(prefix="groundctl-replay-") as folder:
        yield Path(folder) / "replay.db"


def _printer(alerts: list[dict[str, Any]], show: bool) -> Callable[[Any], None]:
    from groundctl.bus import AlertMessage, EventMessage
    from groundctl.replay import utc

    colours = {"WARNING": "yellow", "ERROR": "red", "CRITICAL": "bold red"}

    def on_message(message: Any) -> None:
        if isinstance(message, AlertMessage):
            change = message.change
            a = change.alert
            if change.action == "raised":
                alerts.append(
                    {
                        "node": a.node,
                        "parameter": a.parameter,
                        "severity": str(a.severity),
                        "raised": utc(a.raised_s),
                        "value": a.value
                        if isinstance(a.value, int | float | str)
                        else str(a.value),
                    }
                )
            if show:
                colour = "red" if str(a.severity) == "red" else "yellow"
                out.print(
                    f"{utc(change.time_s)}  {escape(a.node):<10} [{colour}]ALERT {change.action} "
                    f"{escape(str(a.severity))}[/] {escape(a.parameter)} = {escape(str(a.value))}",
                    soft_wrap=True,
                )
        elif isinstance(message, EventMessage) and show:
            e = message.event
            colour = colours.get(e.severity, "")
            text = escape(e.text.replace("\n", " ").strip())
            severity = f"[{colour}]{e.severity}[/]" if colour else e.severity
            out.print(
                f"{utc(e.time_s)}  {escape(e.node):<10} {severity} {escape(e.source)} {text}",
                soft_wrap=True,
            )

    return on_message


async def _headless(job: Any, *, keys: bool) -> Any:
    """Run the replay; Ctrl-C/SIGTERM stop it cleanly; on a terminal, keys control it."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, job.stop)
    task = asyncio.create_task(job.run())
    restore: Callable[[], None] | None = None
    try:
        if keys and job.link is not None:
            restore = _TerminalKeys(job).start(loop)
        return await task
    finally:
        if restore is not None:
            restore()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


class _TerminalKeys:
    """Single keys on a terminal (cbreak mode) controlling a running replay."""

    def __init__(self, job: Any) -> None:
        self.job = job
        self.seeking: str | None = None  # the seek time being typed, after g
        self.tasks: set[asyncio.Task[None]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
        import termios
        import tty

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self.loop = loop
        loop.add_reader(fd, self._read, fd)
        err_console.print(f"[dim]{KEYS_HELP}[/]")

        def restore() -> None:
            loop.remove_reader(fd)
            with contextlib.suppress(termios.error, OSError):  # the terminal may be gone
                termios.tcsetattr(fd, termios.TCSADRAIN, saved)

        return restore

    def _read(self, fd: int) -> None:
        try:
            data = os.read(fd, 64).decode(errors="replace")
        except OSError:
            data = ""
        if not data:  # end of input, or the terminal went away: no more keys
            if self.loop is not None:
                self.loop.remove_reader(fd)
            return
        for key in data:
            self.key(key)

    def key(self, key: str) -> None:
        from groundctl.links.base import LinkError
        from groundctl.replay import ReplayError, faster, parse_seek, slower, speed_text, utc

        link = self.job.link
        if self.seeking is not None:
            if key in "\r\n":
                text, self.seeking = self.seeking, None
                try:
                    target = parse_seek(text, link.clock())
                    link.seek(target)
                except (ReplayError, LinkError) as error:
                    err_console.print(f"\n[red]{escape(error.message)}[/]")
                    return
                err_console.print(f"\n[bold]seek[/] {utc(target)}")
            elif key in "\x7f\b":
                self.seeking = self.seeking[:-1]
            elif key == "\x1b":
                self.seeking = None
                err_console.print("[dim]seek cancelled[/]")
            else:
                self.seeking += key
                err_console.print(escape(key), end="")  # the terminal does not echo
            return
        if key == " ":
            if link.paused:
                link.resume()
                err_console.print(f"[bold]resumed[/] at {utc(link.clock())}")
            else:
                link.pause()
                err_console.print(f"[bold]paused[/] at {utc(link.clock())}")
        elif key == ".":
            before = link.counters.frames_in
            link.step()
            task = asyncio.get_running_loop().create_task(self._stepped(before))
            self.tasks.add(task)  # held until done
            task.add_done_callback(self.tasks.discard)
        elif key in "+]":
            link.set_speed(faster(link.speed))
            err_console.print(f"[bold]speed[/] {speed_text(link.speed)}")
        elif key in "-[":
            link.set_speed(slower(link.speed))
            err_console.print(f"[bold]speed[/] {speed_text(link.speed)}")
        elif key == "m":
            link.set_speed(0.0 if link.speed else 1.0)
            err_console.print(f"[bold]speed[/] {speed_text(link.speed)}")
        elif key == "g":
            self.seeking = ""
            err_console.print("seek to (ISO 8601 UTC or +/-SECONDS, Enter): ", end="")
        elif key == "q":
            self.job.stop()

    async def _stepped(self, before: int) -> None:
        """Say where a step got to, once its frame is delivered (or the replay ended)."""
        from groundctl.replay import utc

        link = self.job.link
        while link.counters.frames_in == before and not link.finished and link.paused:
            await asyncio.sleep(0.01)
        if link.counters.frames_in > before:
            err_console.print(
                f"[bold]step[/] frame {link.counters.frames_in:,} at {utc(link.position_s)}"
            )


def _summary(record: dict[str, Any]) -> None:
    stopped = " (stopped before the end)" if record["stopped"] else ""
    out.print(f"[bold]replayed[/] {escape(record['title'])}{stopped}", soft_wrap=True)
    span = f"{record['first']} to {record['last']}" if record["first"] else "no frames"
    out.print(f"  recorded   {span}")
    out.print(
        f"  frames     {record['frames']:,} ({record['bytes']:,} bytes), "
        f"{record['malformed']:,} malformed, {record['unknown']:,} unknown"
        + (f", {record['skipped_uplink']:,} uplink passed over" if record["skipped_uplink"] else "")
    )
    out.print(f"  samples    {record['samples']:,}")
    out.print(f"  events     {record['events']:,}")
    out.print(f"  alerts     {record['alerts_raised']:,} raised")
    rate = ""
    if record["frames_per_s"] is not None:
        rate = (
            f" ({record['frames_per_s']:,.0f} frames/s, {record['samples_per_s']:,.0f} samples/s)"
        )
    out.print(f"  took       {record['wall_s']:.2f} s{rate}")
    if record["output"]:
        out.print(f"  archived   {escape(record['output'])}")
