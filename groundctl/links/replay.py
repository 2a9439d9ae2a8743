"""Replay link: recorded frames, from a recording file or from the archive, at a chosen speed.

The source is either `file` (a JSON-lines session or a CCSDS packet file, as read by
`groundctl.ingest.read_recording`) or `archive` (a groundctl archive, read through
`groundctl.archive` between `start` and `end`, optionally of one node). Frames keep their
recorded receive time; the gap between two recorded times, divided by `speed`, is the gap
between their deliveries, scheduled against the event loop's clock from an anchor (so
that waiting never accumulates drift over a long replay). Speed 0 delivers as fast as the
consumer takes frames.

Reading is blocking, so it runs in a worker thread, a chunk of frames at a time: a large
archive neither stalls the event loop nor is loaded whole. Each archive chunk opens the
archive, reads, and closes it again (SQLite connections belong to the thread that opened
them, and no read snapshot stays open for the length of a replay).

A replay link never sends: commanding through it is refused.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

from groundctl.archive import open_archive
from groundctl.errors import ArchiveError
from groundctl.ingest import RecordingError, read_recording
from groundctl.links.base import Link, LinkError, LinkOption, LinkState, parse_utc
from groundctl.orbits.model import Pass
from groundctl.telemetry.model import Event, Frame

MIN_SPEED = 0.1
MAX_SPEED = 1000.0
SQLITE_MAGIC = b"SQLite format 3\x00"
# At speed 0 nothing waits, so hand the event loop back every so many frames.
_YIELD_EVERY = 256

Record = tuple[Frame, str]  # a frame and the problem reading it ("" when none)


def check_speed(link: str, speed: float) -> float:
    """`speed` when it is 0 (as fast as possible) or within 0.1..1000; else LinkError."""
    if speed != 0 and not MIN_SPEED <= speed <= MAX_SPEED:
        raise LinkError(
            f"link {link}: option 'speed' must be 0 (as fast as possible) or from "
            f"{MIN_SPEED:g} to {MAX_SPEED:g}, found {speed!r}",
            hint="1 is real time, 10 ten times faster, 0.5 half speed",
        )
    return float(speed)


class _Reader(Protocol):
    """A blocking source of records, read in chunks from a worker thread."""

    def read(self, count: int) -> list[Record]:
        """Up to `count` next records; fewer only at the end of the recording."""
        ...


class _FileReader:
    """Records of a recording file from the first one at or after `from_s`.

    A record without a recorded time (an unreadable line; every packet of a CCSDS packet
    file) takes the time of the record before it, else of the next record that has one,
    else `fallback_s`, so that it keeps its place in the pacing and in seeks.
    """

    def __init__(self, path: Path, link: str, node: str, from_s: float, fallback_s: float) -> None:
        self.path = path
        self.link = link
        self.from_s = from_s
        self.records = self._timed(path, link, node, fallback_s)

    def _timed(self, path: Path, link: str, node: str, fallback_s: float) -> Iterator[Record]:
        try:
            with path.open("rb") as f:
                magic = f.read(len(SQLITE_MAGIC))
        except OSError as error:
            raise LinkError(
                f"link {link}: option 'file': cannot read {path}: {error.strerror or error}",
                hint="give the path of a JSON-lines session or a CCSDS packet file",
            ) from None
        if magic == SQLITE_MAGIC:
            raise LinkError(
                f"link {link}: option 'file': {path} is a SQLite archive, not a recording",
                hint=f'replay it with archive = "{path}" (and start, end)',
            )
        last_s: float | None = None
        untimed: list[Record] = []
        for frame, problem in read_recording(path, node, link, math.nan):
            if not math.isnan(frame.time_s):
                last_s = frame.time_s
                for early, early_problem in untimed:
                    yield replace(early, time_s=last_s), early_problem
                untimed.clear()
            elif last_s is None:
                untimed.append((frame, problem))
                continue
            else:
                frame = replace(frame, time_s=last_s)
            yield frame, problem
        for early, early_problem in untimed:
            yield replace(early, time_s=fallback_s), early_problem

    def read(self, count: int) -> list[Record]:
        chunk: list[Record] = []
        try:
            for record in self.records:
                if record[0].time_s < self.from_s:
                    continue
                self.from_s = -math.inf  # found: from here on, everything in file order
                chunk.append(record)
                if len(chunk) == count:
                    break
        except RecordingError as error:
            raise LinkError(
                f"link {self.link}: option 'file': {error.message}",
                hint="give the path of a JSON-lines session or a CCSDS packet file",
            ) from None
        return chunk


class _ArchiveReader:
    """Downlink frames of the archive with from_s <= time < end_s (of one node, or of one
    flown pass), in receive order, each from the node that sent it.

    Each chunk is one short read: the next frames after the last one read, by (time, id).
    """

    def __init__(
        self,
        path: Path,
        link: str,
        from_s: float,
        end_s: float,
        from_node: str | None,
        pass_id: int | None = None,
    ) -> None:
        self.path = path
        self.link = link
        self.end_s = end_s
        self.from_node = from_node
        self.pass_id = pass_id
        self.after: tuple[float, int] | None = None  # (time, id) of the last frame read
        self.from_s = from_s

    def read(self, count: int) -> list[Record]:
        if not self.path.is_file():  # open_archive would create an empty one
            raise LinkError(
                f"link {self.link}: option 'archive': "
                + (
                    f"{self.path} is a folder"
                    if self.path.is_dir()
                    else f"no such archive {self.path}"
                ),
                hint="give the path of an existing groundctl archive file",
            )
        start_s = self.from_s if self.after is None else self.after[0]
        chunk: list[Record] = []
        try:
            with open_archive(self.path) as archive:
                rows = archive.downlink_frames(
                    start_s, self.end_s, node=self.from_node, pass_id=self.pass_id
                )
                for row in rows:
                    # Frames at the last frame's time that were already read come first.
                    if self.after is not None and (row.time_s, row.id) <= self.after:
                        continue
                    chunk.append((Frame(row.raw, row.time_s, self.link, row.node, "down"), ""))
                    self.after = (row.time_s, row.id)
                    if len(chunk) == count:
                        break
        except ArchiveError as error:
            raise LinkError(
                f"link {self.link}: option 'archive': {error.message}", hint=error.hint
            ) from None
        return chunk


class ReplayLink(Link):
    """Recorded downlink frames, delivered as they were received, at `speed` times.

    Exactly one source: `file` (a JSON-lines session or a CCSDS packet file; its frames
    are the link's `node`'s) or `archive` (a groundctl archive, with `start`, `end`,
    `from_node` and `pass_id` choosing its frames, each replayed as the node that sent
    it). Uplink records of a session are passed over (counted in `skipped_uplink`);
    unreadable records are delivered with their bytes and counted in `counters.errors`.
    An archive replay also replays the ground's AOS and LOS events (link events), in
    their place among the frames, so the engine sees contacts begin and end as it did.

    The state is UP while replaying; when the recording ends (without `loop`) the
    `frames()` iterator ends, the state becomes DOWN and `finished` is true; `close()`
    makes it CLOSED. The controls (`pause`, `resume`, `step`, `set_speed`, `seek`) are
    called from the event loop's thread and take effect at once, even mid-wait.
    """

    DESCRIPTION = "recorded frames from a session, packet file or the archive, at any speed"
    OPTIONS = (
        LinkOption("file", str, "", "a JSON-lines session or CCSDS packet file to replay"),
        LinkOption("archive", str, "", "a groundctl archive to replay (instead of file)"),
        LinkOption("start", str, "", "archive only: first receive time, ISO 8601 UTC"),
        LinkOption("end", str, "", "archive only: receive time to stop before, ISO 8601 UTC"),
        LinkOption("from_node", str, "", "archive only: replay only this node's frames"),
        LinkOption("pass_id", int, 0, "archive only: replay only this flown pass's frames"),
        LinkOption("speed", float, 1.0, "times real time; 0 is as fast as possible"),
        LinkOption("loop", bool, False, "start again from the beginning at the end"),
    )
    CHUNK_FRAMES: ClassVar[int] = 1000  # frames read from the source at a time
    # The engine archives no events for this link's own states: a replay's opening and
    # closing are not news about the nodes (the recorded AOS and LOS are replayed).
    REPLAYS: ClassVar[bool] = True

    def __init__(self, name: str, node: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, node, options)
        file, archive = self.options["file"], self.options["archive"]
        if bool(file) == bool(archive):
            raise LinkError(
                f"link {name}: "
                + (
                    "options 'file' and 'archive' exclude each other: give one"
                    if file
                    else "give option 'file' (a recording) or 'archive' (an archive path)"
                ),
                hint='e.g. file = "pass.jsonl", or archive = "groundctl.db" with start and end',
            )
        self.path = Path(file or archive)
        if file:
            for option in ("start", "end", "from_node", "pass_id"):
                if self.options[option]:
                    raise LinkError(
                        f"link {name}: option {option!r} applies to archive replays only",
                        hint="a file replays whole; import it (groundctl db import) to "
                        "replay part of it from the archive",
                    )
        self.start_s = (
            parse_utc(name, "start", self.options["start"]) if self.options["start"] else -math.inf
        )
        self.end_s = (
            parse_utc(name, "end", self.options["end"]) if self.options["end"] else math.inf
        )
        if self.end_s <= self.start_s:
            raise LinkError(
                f"link {name}: option 'end' ({self.options['end']}) must be after "
                f"'start' ({self.options['start']})"
            )
        self._speed = check_speed(name, self.options["speed"])
        self.skipped_uplink = 0  # uplink records passed over (each time one is passed)
        self.laps = 0  # times the recording was replayed to its end and started again
        self.finished = False  # the recording was replayed to its end (no loop)
        self.last_problem = ""  # why the last unreadable record could not be read
        self._position_s: float | None = None
        self._paused = False
        self._steps = 0
        self._seek_to: float | None = None
        # (loop time, recorded time) that coincide; None: anchor at the next frame.
        self._anchor: tuple[float, float] | None = None
        self._buffer: deque[Record] = deque()
        self._exhausted = False
        self._lap_frames = 0
        self._reader: _Reader | None = None
        self._reading: tuple[_Reader, asyncio.Future[list[Record]]] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._opened_s = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        # the archive's AOS/LOS events of the replayed frames, and the next to emit
        self._contacts: list[Event] = []
        self._next_contact = 0
        self._flown: list[dict[str, Any]] = []  # the archive's flown passes replayed

    # --- the contract -------------------------------------------------------------------
    async def open(self) -> None:
        """Start the replay from the beginning (or from where `seek()` asked before
        opening): read the first frames; the state becomes UP. Raises LinkError when the
        file or archive is missing or cannot be read."""
        self._opened_s = time.time()
        self._loop = asyncio.get_running_loop()
        self.finished = False
        first = self._seek_to
        self._restart(first)
        try:
            if self.options["archive"]:
                self._contacts = await asyncio.to_thread(self._read_contacts)
                times = [e.time_s for e in self._contacts]
                self._next_contact = bisect.bisect_left(
                    times, -math.inf if first is None else first
                )
            await self._fill()
        except LinkError:
            self._reader = None
            self._set_state(LinkState.DOWN)
            raise
        self._set_state(LinkState.UP)

    async def close(self) -> None:
        """Stop the replay; a `frames()` iteration ends. The state becomes CLOSED."""
        self._reader = None
        self._buffer.clear()
        self._set_state(LinkState.CLOSED)
        self._wake()

    async def send(self, data: bytes, node: str | None = None) -> None:
        """Always raises LinkError: a replay has no node to command."""
        raise LinkError(f"link {self.name} is a replay: commanding is disabled")

    async def _receive(self) -> AsyncIterator[bytes]:
        async for frame in self.frames():
            yield frame.raw

    async def frames(self) -> AsyncIterator[Frame]:
        """The recorded frames, each at its time, with its recorded receive time, until
        the recording ends (then the state is DOWN) or the link closes. One consumer at a
        time; after the end, `seek()` and a new `frames()` replay again.

        Raises LinkError when the link is not open or the source cannot be read.
        """
        if self._reader is None:
            raise LinkError(f"link {self.name} is {self.state.value}: open it first")
        loop = self._loop = asyncio.get_running_loop()
        delivered = 0
        while self._reader is not None:
            if self._seek_to is not None:
                self._restart(self._seek_to)
                continue
            if not self._buffer:
                if not self._exhausted:
                    try:
                        await self._fill()
                    except LinkError:
                        self._set_state(LinkState.DOWN)
                        raise
                    continue
                self._emit_contacts(math.inf)
                if self.options["loop"] and self._lap_frames:
                    self.laps += 1
                    self._restart(None)
                    continue
                self.finished = True
                self._set_state(LinkState.DOWN)
                return
            frame, problem = self._buffer[0]
            if frame.direction == "up":
                self._buffer.popleft()
                self.skipped_uplink += 1
                continue
            if self._paused:
                if not self._steps:
                    await self._wait_until(None)
                    continue
                self._steps -= 1
                self._anchor = (loop.time(), max(self._anchor_s(), frame.time_s))
            elif self._speed:
                now = loop.time()
                if self._anchor is None:
                    self._anchor = (now, frame.time_s)
                due = self._anchor[0] + (frame.time_s - self._anchor[1]) / self._speed
                if due > now:
                    await self._wait_until(due)
                    continue
            self._buffer.popleft()
            if len(self._buffer) == self.CHUNK_FRAMES // 2:
                self._read_ahead()
            self._emit_contacts(frame.time_s)
            self._deliver(frame, problem)
            yield frame
            delivered += 1
            if not self._speed and delivered % _YIELD_EVERY == 0:
                await asyncio.sleep(0)

    def clock(self) -> float:
        """Recorded now, Unix seconds: how far the replay has gone in the recording's time
        (between the last frame delivered and the next); the wall clock before a source
        gave any time. Once the recording is over it stays at the last frame's time."""
        if self.finished and self._position_s is not None:
            return self._position_s
        now = self._anchor_s()
        if self._buffer:  # the replay has not gone past the next frame yet
            next_s = self._buffer[0][0].time_s
            now = min(now, next_s) if math.isfinite(now) else next_s
        return now if math.isfinite(now) else time.time()

    # --- controls -----------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        """True while paused (frames come only by `step()`)."""
        return self._paused

    @property
    def speed(self) -> float:
        """Times real time; 0 is as fast as possible."""
        return self._speed

    @property
    def position_s(self) -> float | None:
        """Recorded receive time (Unix seconds) of the last frame delivered; None before
        the first."""
        return self._position_s

    def pause(self) -> None:
        """Hold the next frame until `resume()` or `step()`; the recorded time stops."""
        if not self._paused:
            self._anchor = None if self._anchor is None else (0.0, self._anchor_s())
            self._paused = True
            self._wake()

    def resume(self) -> None:
        """Go on from where the replay was paused, at the current speed."""
        if self._paused:
            self._paused = False
            self._steps = 0
            if self._anchor is not None:
                self._anchor = (self._loop_time(), self._anchor[1])
            self._wake()

    def step(self) -> None:
        """Release the next frame at once and stay paused (pausing first if running)."""
        self.pause()
        self._steps += 1
        self._wake()

    def set_speed(self, speed: float) -> None:
        """Replay at `speed` times real time from now on (0: as fast as possible).

        Raises LinkError outside 0.1..1000 (other than 0); the speed is then unchanged.
        """
        speed = check_speed(self.name, speed)
        if self._anchor is not None and not self._paused:
            self._anchor = (self._loop_time(), self._anchor_s())
        if not speed:
            self._anchor = None
        self._speed = speed
        self._wake()

    def seek(self, time_s: float) -> None:
        """Go on from the first frame received at or after `time_s` (Unix seconds), at
        once; paused stays paused. Past the end, the replay ends. Raises LinkError for a
        time that is not finite."""
        if not math.isfinite(time_s):
            raise LinkError(f"link {self.name}: cannot seek to {time_s!r}: not a time")
        self._seek_to = time_s
        if self._reader is not None and self.state is LinkState.DOWN:
            self._set_state(LinkState.UP)
        self._wake()

    # --- inside -------------------------------------------------------------------------
    def _anchor_s(self) -> float:
        """The recorded time the replay has reached (the anchor moved on to now)."""
        if self._anchor is None or not self._speed:
            return self._position_s if self._position_s is not None else -math.inf
        if self._paused:
            return self._anchor[1]
        return self._anchor[1] + (self._loop_time() - self._anchor[0]) * self._speed

    def _loop_time(self) -> float:
        assert self._loop is not None  # anchors are only set while open
        return self._loop.time()

    def _read_contacts(self) -> list[Event]:
        """The archive's AOS/LOS events of the frames replayed (worker thread)."""
        if not self.path.is_file():
            return []  # the first read says why
        pass_id = self.options["pass_id"] or None
        try:
            with open_archive(self.path) as archive:
                found = archive.contact_events(
                    self.start_s, self.end_s, node=self.options["from_node"] or None,
                    pass_id=pass_id,
                )  # fmt: skip
                self._flown = archive.flown_passes(
                    node=self.options["from_node"] or None,
                    start_s=self.start_s if math.isfinite(self.start_s) else None,
                    end_s=self.end_s if math.isfinite(self.end_s) else None,
                )
        except ArchiveError as error:
            raise LinkError(
                f"link {self.name}: option 'archive': {error.message}", hint=error.hint
            ) from None
        return [Event(t, node, "ground", kind, "INFO", text) for t, node, kind, text in found]

    def contact_at(self, node: str, time_s: float) -> Pass | None:
        """The contact `node` was in at recorded `time_s`, as the replayed archive's
        flown passes tell it (station, planned AOS and LOS, maximum elevation)."""
        for flown in self._flown:
            if flown["node"] != node or not flown["station"]:
                continue
            los = flown["los"] if flown["los"] is not None else math.inf
            if flown["aos"] <= time_s <= los:
                planned_aos = flown["planned_aos"] or flown["aos"]
                planned_los = flown["planned_los"] or flown["los"] or flown["aos"]
                return Pass(
                    node, 0, flown["station"],
                    datetime.fromtimestamp(planned_aos, UTC),
                    datetime.fromtimestamp((planned_aos + planned_los) / 2, UTC),
                    datetime.fromtimestamp(planned_los, UTC),
                    flown["max_elevation_deg"] if flown["max_elevation_deg"] is not None
                    else math.nan,
                    math.nan, math.nan, math.nan, math.nan, False,
                )  # fmt: skip
        return None

    def _emit_contacts(self, until_s: float) -> None:
        """Emit the AOS/LOS events up to `until_s` (recorded time) not emitted yet."""
        contacts = self._contacts
        while self._next_contact < len(contacts) and contacts[self._next_contact].time_s <= until_s:
            event = contacts[self._next_contact]
            self._next_contact += 1
            self._emit(event)

    def _restart(self, from_s: float | None) -> None:
        """Read the source again from its beginning, or from `from_s` (a seek)."""
        first = -math.inf if from_s is None else from_s
        self._next_contact = bisect.bisect_left([e.time_s for e in self._contacts], first)
        # nothing delivered since: the recorded time is the next frame's, not the last one's
        # from before the seek (a step or a resume then paces from there)
        self._position_s = None
        self._seek_to = None
        self._buffer.clear()
        self._exhausted = False
        self._anchor = None
        self._lap_frames = 0
        self.finished = False
        first_s = -math.inf if from_s is None else from_s
        if self.options["file"]:
            self._reader = _FileReader(self.path, self.name, self.node, first_s, self._opened_s)
        else:
            self._reader = _ArchiveReader(
                self.path,
                self.name,
                max(first_s, self.start_s),
                self.end_s,
                self.options["from_node"] or None,
                self.options["pass_id"] or None,
            )

    def _read_ahead(self) -> None:
        """Start reading the next chunk in a worker thread while the buffer still holds
        frames, so the replay does not wait for the source at each chunk (`_fill` takes
        the chunk when the buffer runs out). One read at a time per reader."""
        reader = self._reader
        if reader is None or self._exhausted or self._reading is not None:
            return
        future = asyncio.ensure_future(asyncio.to_thread(reader.read, self.CHUNK_FRAMES))
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._reading = (reader, future)

    async def _fill(self) -> None:
        """Read the next chunk in a worker thread into the buffer.

        A read whose consumer went away (cancelled) still finishes in its thread; the next
        fill of the same reader takes its chunk instead of reading past it.
        """
        reader = self._reader
        assert reader is not None
        if self._reading is None or self._reading[0] is not reader:
            future = asyncio.ensure_future(asyncio.to_thread(reader.read, self.CHUNK_FRAMES))
            # An abandoned read's error is not news: the reader it belonged to is gone.
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._reading = (reader, future)
        reading = self._reading
        chunk = await asyncio.shield(reading[1])
        if self._reading is not reading:  # another caller took this chunk (open and frames)
            return
        self._reading = None
        if reader is not self._reader:  # closed or restarted meanwhile: stale
            return
        self._buffer.extend(chunk)
        self._exhausted = len(chunk) < self.CHUNK_FRAMES

    def _deliver(self, frame: Frame, problem: str) -> None:
        if problem:
            self.counters.errors += 1
            self.last_problem = problem
        self.counters.frames_in += 1
        self.counters.bytes_in += len(frame.raw)
        self.counters.last_receive_s = frame.time_s
        self._position_s = frame.time_s
        self._lap_frames += 1

    async def _wait_until(self, due: float | None) -> None:
        """Until loop time `due` (None: no limit) or a control or close() wakes us."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        timer = None if due is None else loop.call_at(due, self._wake)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
