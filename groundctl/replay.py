"""Replay: recorded passes, time ranges and recordings through the live pipeline.

A replay is a `Session` whose only link is a `ReplayLink`: the same engine, decoders,
limit checks, alerts, archive writer and (with the console) panes as live operations.
Commanding is disabled. What it produces goes to an archive of its own (a scratch file
unless one is named), never into the archive replayed from, which stays as recorded.

`resolve_source` turns what the operator named (a flown pass id, a time range, a file)
into the replay link's options; `Replay` runs one headless and reports what it gave.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from groundctl.bus import AlertMessage, Bus, EventMessage
from groundctl.config import Config
from groundctl.errors import GroundctlError
from groundctl.links.replay import SQLITE_MAGIC
from groundctl.mdb.model import Mission

# The speeds the console's and the terminal's faster/slower keys step through (0: max).
SPEEDS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)


class ReplayError(GroundctlError):
    title = "replay error"


def utc(time_s: float) -> str:
    """Unix seconds as ISO 8601 UTC with milliseconds and a Z."""
    return datetime.fromtimestamp(time_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def faster(speed: float) -> float:
    """The next speed up the ladder (0, as fast as possible, stays 0)."""
    if speed == 0:
        return 0.0
    return next((s for s in SPEEDS if s > speed), 0.0)


def slower(speed: float) -> float:
    """The next speed down the ladder (from 0: the fastest finite speed)."""
    if speed == 0:
        return SPEEDS[-1]
    return next((s for s in reversed(SPEEDS) if s < speed), SPEEDS[0])


def speed_text(speed: float) -> str:
    """`max` for 0, else e.g. `2x`, `0.25x`."""
    return "max" if speed == 0 else f"{speed:g}x"


def parse_seek(text: str, now_s: float, *, relative: bool = True) -> float:
    """A seek target: ISO 8601 (UTC when it has no zone) or, when `relative`, +SECONDS /
    -SECONDS from `now_s` (the recorded time reached). ReplayError says what is
    expected."""
    value = text.strip()
    if relative and value[:1] in ("+", "-"):
        try:
            offset = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(offset):
                return now_s + offset
    iso = value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise ReplayError(
            f"cannot seek to {text!r}: expected an ISO 8601 UTC time"
            + (" or +/-SECONDS" if relative else ""),
            hint="e.g. 2026-11-29T00:10:00Z" + (", or +90 (90 s on), or -30" if relative else ""),
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass(frozen=True)
class ReplaySource:
    """What to replay: the replay link's options (speed aside) and a title for people.

    `node` is the link's node: for a file, the node the recording is replayed as; for
    the archive, only a label (each frame keeps the node that sent it). `flown` is the
    flown pass's archive row when a pass is replayed.
    """

    title: str
    options: dict[str, Any]
    node: str
    kind: str  # pass, range, archive, file
    flown: dict[str, Any] | None = None


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def resolve_source(
    target: str | None,
    *,
    archive_path: Path,
    start: str | None = None,
    end: str | None = None,
    node: str | None = None,
) -> ReplaySource:
    """PASS_ID (a flown pass of `archive_path`), FILE (a recording, or an archive to
    replay whole or between `start` and `end`), or no target with `start` and `end` (a
    window of `archive_path`, of one node when given). ReplayError says what is wrong."""
    from groundctl.archive import open_archive

    def window(path: Path, what: str) -> ReplaySource:
        options: dict[str, Any] = {"archive": str(path)}
        if start:
            options["start"] = start
        if end:
            options["end"] = end
        if node:
            options["from_node"] = node
        span = f"{start or 'the start'} to {end or 'the end'}"
        title = f"{what} {span}" + (f", node {node}" if node else "")
        return ReplaySource(title, options, node or "archive", "range")

    if target is None:
        if not (start and end):
            raise ReplayError(
                "what to replay? give a flown pass id, a recording file, or --from and --to",
                hint="`groundctl passes --flown` lists the recorded passes",
            )
        if not archive_path.is_file():
            raise ReplayError(
                f"no archive {archive_path} to replay from",
                hint="give --archive PATH, or a recording file to replay",
            )
        return window(archive_path, f"archive {archive_path},")
    if target.isdigit():
        if start or end:
            raise ReplayError(
                f"replay of pass {target}: --from and --to apply to a time range, not a pass",
                hint="replay the pass whole, or give --from and --to without a pass id",
            )
        if not archive_path.is_file():
            raise ReplayError(
                f"no archive {archive_path}: no flown pass {target} to replay",
                hint="give --archive PATH of the archive that recorded the pass",
            )
        with open_archive(archive_path) as archive:
            flown = archive.flown_pass(int(target))
        if flown is None:
            raise ReplayError(
                f"no flown pass {target} in {archive_path}",
                hint="`groundctl passes --flown` lists the recorded passes and their ids",
            )
        if node and node != flown["node"]:
            raise ReplayError(
                f"pass {target} is node {flown['node']}'s, not {node}'s",
                hint="leave out --node to replay the pass",
            )
        where = f" at {flown['station']}" if flown["station"] else f" on link {flown['link']}"
        end_text = utc(flown["los"]) if flown["los"] is not None else "(still flying)"
        title = f"pass {target}: {flown['node']}{where}, {utc(flown['aos'])} to {end_text}"
        options = {"archive": str(archive_path), "pass_id": int(target)}
        return ReplaySource(title, options, flown["node"], "pass", flown)
    path = Path(target)
    if not path.is_file():
        raise ReplayError(
            f"{target!r} is neither a flown pass id nor a file",
            hint="give a pass id (`groundctl passes --flown`), a recording file "
            "(.jsonl session, CCSDS packet file) or an archive",
        )
    if _is_sqlite(path):
        source = window(path, f"archive {path},")
        return ReplaySource(source.title, source.options, source.node, "archive")
    if start or end:
        raise ReplayError(
            f"{target}: --from and --to apply to archives, not to a recording file",
            hint=f"import it first (groundctl db import {target}), then replay a range",
        )
    _check_recording(path)
    name = node or "replay"
    return ReplaySource(f"recording {path} as node {name}", {"file": str(path)}, name, "file")


def _check_recording(path: Path) -> None:
    """ReplayError unless `path` looks like a recording: JSON lines whose first record
    reads, CCSDS packets (version 0), or a format a plugin claims."""
    from groundctl.recordings import by_sniff, by_suffix, describe_formats, loaded_formats

    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError as error:
        raise ReplayError(f"cannot read {path}: {error.strerror or error}") from None
    expected = f"expected a recording: {describe_formats()}"
    if not head.strip():
        raise ReplayError(f"{path} is empty: nothing to replay", hint=expected)
    plugins = loaded_formats()
    if by_suffix(path, plugins) is not None or by_sniff(head[:64], plugins) is not None:
        return
    if path.suffix in (".jsonl", ".json") or head[:1] == b"{":
        first = next((line for line in head.splitlines() if line.strip()), b"")
        try:
            record = json.loads(first)
            bytes.fromhex(record["hex"])
            float(record["t"])
        except (ValueError, KeyError, TypeError):
            raise ReplayError(
                f"{path}:1: not a recorded datagram: expected "
                '{"t": UNIX_S, "dir": "up"|"down", "hex": "..."}',
                hint=expected,
            ) from None
        return
    if head[0] >> 5 != 0:  # a CCSDS primary header starts with version 0
        raise ReplayError(
            f"{path} is not a recording: its first byte 0x{head[0]:02x} starts neither a "
            "JSON line nor a CCSDS packet (version 0)",
            hint=expected,
        )


def check_node(archive_path: Path, node: str) -> None:
    """ReplayError unless the archive has frames of `node`."""
    from groundctl.archive import open_archive

    with open_archive(archive_path) as archive:
        conn = archive.conn
        if conn.execute("SELECT 1 FROM frames WHERE node = ? LIMIT 1", (node,)).fetchone():
            return
        known = [n for (n,) in conn.execute("SELECT DISTINCT node FROM frames LIMIT 20")]
    raise ReplayError(
        f"no frames of node {node} in {archive_path}",
        hint="nodes in the archive: " + (", ".join(sorted(known)) or "none"),
    )


@dataclass
class ReplayReport:
    """What a replay gave."""

    title: str
    frames: int = 0
    bytes: int = 0
    samples: int = 0
    events: int = 0
    alerts_raised: int = 0
    malformed: int = 0
    unknown: int = 0
    skipped_uplink: int = 0
    first_s: float | None = None  # recorded receive time of the first and last frame
    last_s: float | None = None
    wall_s: float = 0.0
    output: str = ""  # the archive the replay wrote ("" when it was a scratch file)
    stopped: bool = False  # stopped before the end

    def record(self) -> dict[str, Any]:
        wall = self.wall_s or math.nan
        return {
            "title": self.title,
            "frames": self.frames,
            "bytes": self.bytes,
            "samples": self.samples,
            "events": self.events,
            "alerts_raised": self.alerts_raised,
            "malformed": self.malformed,
            "unknown": self.unknown,
            "skipped_uplink": self.skipped_uplink,
            "first": utc(self.first_s) if self.first_s is not None else None,
            "last": utc(self.last_s) if self.last_s is not None else None,
            "wall_s": round(self.wall_s, 3),
            "frames_per_s": round(self.frames / wall, 1) if self.wall_s else None,
            "samples_per_s": round(self.samples / wall, 1) if self.wall_s else None,
            "output": self.output or None,
            "stopped": self.stopped,
        }


@dataclass
class Replay:
    """One replay: build with the source and the config, `await run()`.

    `output` is the archive the replay writes. `missions` (node -> database, and the
    default) overrides the config's; a recording file from a mission the config does
    not name needs it. `on_message` sees every event and alert message as it happens.
    The link (`link`, set once running) is the place for pause, resume, step, seek and
    speed; `stop()` ends the replay early.
    """

    config: Config
    source: ReplaySource
    output: Path
    speed: float = 1.0
    seek_s: float | None = None
    paused: bool = False
    missions: tuple[dict[str, Mission], Mission | None] | None = None
    on_message: Callable[[Any], None] | None = None
    link: Any = None
    report: ReplayReport = field(init=False)
    _stop: asyncio.Event | None = None

    def __post_init__(self) -> None:
        self.report = ReplayReport(self.source.title)

    def build_link(self) -> Any:
        """The replay link, with the source's options at `speed` (LinkError if bad)."""
        from groundctl.links.replay import ReplayLink

        return ReplayLink("replay", self.source.node, {**self.source.options, "speed": self.speed})

    def stop(self) -> None:
        """End the replay now (what was replayed so far is archived)."""
        if self._stop is not None:
            self._stop.set()

    async def run(self) -> ReplayReport:
        """Replay to the end (or until `stop()`); the report of what it gave."""
        from groundctl.session import Session

        self._stop = asyncio.Event()
        link = self.link = self.link if self.link is not None else self.build_link()
        bus = Bus()
        messages = bus.subscribe(EventMessage, AlertMessage, maxsize=100_000)
        session = Session(
            self.config,
            self.output,
            links=[link],
            bus=bus,
            replay=True,
            missions=self.missions,
            on_processed=self.account,
        )
        report = self.report
        started = time.perf_counter()
        # before the link opens: the first frame is already the one sought, held paused
        if self.seek_s is not None:
            link.seek(self.seek_s)
        if self.paused:
            link.pause()
        await session.start()
        try:
            assert session.engine is not None
            pump = session.engine.pump(link.name)
            stopper = asyncio.create_task(self._stop.wait())
            watcher = asyncio.create_task(self._watch(messages))
            try:
                await asyncio.wait({pump, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopper.cancel()
            report.stopped = not pump.done()
        finally:
            await session.stop()
            await asyncio.sleep(0)
            watcher.cancel()
            self._drain(messages.drain())
        report.wall_s = time.perf_counter() - started
        counters = link.counters
        report.frames = counters.frames_in
        report.bytes = counters.bytes_in
        report.skipped_uplink = link.skipped_uplink
        return report

    async def _watch(self, messages: Any) -> None:
        async for batch in messages.batches():
            self._drain(batch)

    def _drain(self, batch: list[Any]) -> None:
        report = self.report
        for message in batch:
            if isinstance(message, EventMessage):
                report.events += 1
            elif isinstance(message, AlertMessage) and message.change.action == "raised":
                report.alerts_raised += 1
            if self.on_message is not None:
                self.on_message(message)

    def account(self, processed: Any) -> None:
        """Count one processed frame (the engine's frame hook)."""
        report = self.report
        frame = processed.frame
        report.samples += len(processed.samples)
        report.malformed += processed.status == "malformed"
        report.unknown += processed.status == "unknown"
        if report.first_s is None:
            report.first_s = frame.time_s
        report.last_s = frame.time_s
