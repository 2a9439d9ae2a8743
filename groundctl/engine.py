"""The engine: frames from sources, through the telemetry processor, to archive and bus.

The console, procedures and replay all drive this one engine; none of them decodes,
checks limits or writes SQLite itself. Sources are async iterators of Frames (links,
recordings); each frame is processed, archived (batched, on the writer's thread) and
published on the bus as samples, events, alert changes and a frame summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from groundctl.commander import Commander
    from groundctl.links.base import Link, LinkState

from groundctl.archive import open_archive
from groundctl.archive.store import open_alerts
from groundctl.archive.writer import ArchiveWriter
from groundctl.bus import (
    AlertMessage,
    Bus,
    EventMessage,
    FrameMessage,
    LinkStateMessage,
    SampleMessage,
    StationMessage,
)
from groundctl.mdb.model import Mission
from groundctl.telemetry.alerts import Alert, AlertChange
from groundctl.telemetry.flown import DEFAULT_SILENCE_S, FlownPass, PassRecorder
from groundctl.telemetry.model import Event, Frame
from groundctl.telemetry.pipeline import Processed, TelemetryProcessor

PASS_UPDATE_S = 5.0  # wall seconds between writes of the flying passes' figures


class Engine:
    """One pipeline over one archive.

    `missions` maps node names to mission databases (`default` for the others). `clock`
    gives the current Unix time for staleness checks, run every `tick_s` seconds of it:
    by a ticker on the wall clock, and as received frames move the clock on (a link with
    its own clock, simulated or replayed, may run far faster than the wall's).
    """

    def __init__(
        self,
        archive_path: str | Path,
        missions: Mapping[str, Mission] | None = None,
        default: Mission | None = None,
        *,
        bus: Bus | None = None,
        tick_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        batch_rows: int = 20_000,
        pass_silence_s: float = DEFAULT_SILENCE_S,
    ) -> None:
        self.archive_path = Path(archive_path)
        self.missions = dict(missions or {})
        self.default = default
        self.bus = bus or Bus()
        self.tick_s = tick_s
        self.clock = clock
        self.batch_rows = batch_rows
        self.writer: ArchiveWriter | None = None
        self.processor: TelemetryProcessor | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.links: dict[str, Link] = {}
        self._pumps: dict[str, asyncio.Task[int]] = {}
        self._next_check_s = -math.inf  # clock time of the next staleness check
        # groundctl.commander.Commander, when commands are sent: it sees every processed
        # frame, every event and every tick (verification, release at AOS, timeouts)
        self.commander: Commander | None = None
        # flown passes: every frame, event, alert and command is counted in its node's
        # open pass (groundctl.telemetry.flown)
        self.passes = PassRecorder(silence_s=pass_silence_s)
        self._passes_written = 0.0  # monotonic time the flying passes' rows were last written
        self._processed_listeners: list[Callable[[Processed], None]] = []

    async def start(self) -> None:
        """Open (create, migrate) the archive and start the staleness ticker."""
        self.writer = await asyncio.to_thread(
            ArchiveWriter, self.archive_path, batch_rows=self.batch_rows
        )
        self.processor = TelemetryProcessor(
            self.missions, self.default, first_alert_id=self.writer.next_alert_id
        )
        self.processor.restore_alerts(await asyncio.to_thread(self._open_alerts))
        self.passes.next_id = self.writer.next_pass_id
        self._ticker = asyncio.create_task(self._tick_forever(), name="engine-ticker")

    def _open_alerts(self) -> list[Alert]:
        with open_archive(self.archive_path) as archive:
            # passes left flying by a groundctl that stopped without closing them
            archive.conn.execute(
                "UPDATE flown_passes SET status = 'interrupted', los = coalesce("
                "(SELECT max(time) FROM frames WHERE pass_id = flown_passes.id), aos) "
                "WHERE status = 'flying'"
            )
            archive.conn.commit()
            return open_alerts(archive)

    async def stop(self) -> None:
        """Close the attached links, stop ticking and commit everything received."""
        for name in list(self.links):
            await self.detach(name)
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self.writer is not None:
            self._write_passes(self.passes.close_all(self.clock(), "interrupted"))
            await self.writer.aclose()
            self.writer = None

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def receive(self, frame: Frame) -> Processed:
        """Process, archive and publish one received frame."""
        assert self.processor is not None and self.writer is not None, "call start() first"
        processed = self.processor.process(frame)
        pass_id, opened = self.passes.processed(processed)
        if opened:
            self._write_passes(opened)
        await self.writer.aput(processed, pass_id)
        publish = self.bus.publish
        for sample in processed.samples:
            publish(SampleMessage(sample))
        for event in processed.events:
            publish(EventMessage(event))
        for change in processed.alerts:
            publish(AlertMessage(change))
        if self.commander is not None:
            self.commander.on_frame(frame, processed)
        for listener in self._processed_listeners:
            listener(processed)
        publish(
            FrameMessage(
                frame.node,
                frame.link,
                processed.packet,
                processed.status,
                len(frame.raw),
                frame.time_s,
            )
        )
        return processed

    async def sent(self, frame: Frame) -> None:
        """Archive a frame sent to a node (an uplink), and publish its summary."""
        assert self.writer is not None, "call start() first"
        self.writer.add_frame(frame, "sent", pass_id=self.passes.uplink(frame.node, len(frame.raw)))
        self.bus.publish(
            FrameMessage(frame.node, frame.link, None, "sent", len(frame.raw), frame.time_s)
        )

    async def run(self, source: AsyncIterable[Frame]) -> int:
        """Receive every frame of `source` until it ends; return how many.

        Staleness is checked before a frame whenever the clock has moved `tick_s` on since
        the last check: at the simulated or replayed time it has reached, so that a stream
        that fell silent is noticed as the clock passes, however fast it runs.
        """
        count = 0
        async for frame in source:
            if self.clock() >= self._next_check_s:
                self.tick()
            await self.receive(frame)
            count += 1
        return count

    # --- links ---------------------------------------------------------------------------
    def attach(self, link: Link) -> asyncio.Task[int]:
        """Receive everything `link` receives; its state changes and its own events (AOS,
        LOS) are archived and published. Attach before `open()` to archive its whole life
        (connecting, up); an open link may be attached too. Returns the task pumping its
        frames, which ends when the link's frames end."""
        if link.name in self.links:
            raise ValueError(f"a link named {link.name} is already attached")
        self.links[link.name] = link
        link.on_state_change(self._link_state)
        link.on_event(self._link_event)
        task = asyncio.create_task(self.run(link.frames()), name=f"engine-{link.name}")
        self._pumps[link.name] = task
        return task

    def on_processed(self, listener: Callable[[Processed], None]) -> None:
        """Call `listener(processed)` for every received frame, once it is processed."""
        self._processed_listeners.append(listener)

    def pump(self, name: str) -> asyncio.Task[int]:
        """The task pumping the frames of attached link `name` (it ends with them)."""
        return self._pumps[name]

    async def detach(self, name: str) -> int:
        """Close an attached link and wait until every frame it delivered is processed;
        return how many it delivered."""
        link = self.links.pop(name)
        await link.close()
        task = self._pumps.pop(name)
        return await task

    def _link_state(self, link: Link, old: LinkState, new: LinkState) -> None:
        now = link.clock()
        self.bus.publish(LinkStateMessage(link.name, link.node, old.value, new.value, now))
        if getattr(link, "REPLAYS", False):
            return  # a replay's opening and end: not events of the recorded nodes
        severity = "WARNING" if new.value in ("down", "degraded") else "INFO"
        self.note(
            Event(now, link.node, "ground", "link-state", severity,
                  f"link {link.name}: {old.value} -> {new.value}")
        )  # fmt: skip
        if new.value == "down":  # an outage (a link closed may still deliver its last frames)
            self._write_passes(self.passes.link_down(link.name, now))

    def _link_event(self, link: Link, event: Event) -> None:
        ground = event.source == "ground"
        if self.processor is not None and ground:
            if event.kind == "los":
                self.processor.contact_lost(event.node)
            elif event.kind == "aos":
                self.processor.contact_gained(event.node, event.time_s)
        if ground and event.kind == "aos":
            contact = link.contact_at(event.node, event.time_s)
            self._write_passes(
                self.passes.aos(
                    event.node,
                    link.name,
                    event.time_s,
                    station=contact.station if contact is not None else "",
                    planned_aos=contact.aos.timestamp() if contact is not None else None,
                    planned_los=contact.los.timestamp() if contact is not None else None,
                    max_elevation_deg=contact.max_elevation_deg if contact is not None else None,
                )
            )
        self.note(event)
        if ground and event.kind == "los":
            self._write_passes(self.passes.los(event.node, event.time_s))
        if self.commander is not None:
            self.commander.on_event(event)

    def note(self, event: Event) -> None:
        """Archive and publish an event the ground noticed (link states, AOS/LOS...)."""
        if self.writer is not None:
            self.writer.add_events([event], self.passes.event(event.node))
        self.bus.publish(EventMessage(event))

    def station(self, message: StationMessage) -> None:
        """Archive and publish a station's tracking update (groundctl.station)."""
        if self.writer is not None:
            m = message
            self.writer.add_station(
                (
                    m.time_s, m.station, m.node, m.phase, m.node_az, m.node_el, m.target_az,
                    m.target_el, m.actual_az, m.actual_el, m.error_deg,
                    m.downlink_hz if m.tuned else None, m.uplink_hz if m.tuned else None,
                    m.detail,
                )
            )  # fmt: skip
        self.bus.publish(message)

    def command_stage(self, node: str, stage: str) -> int | None:
        """A command of `node` reached `stage` (the commander says): counted in the node's
        open pass, whose id is returned (None outside a pass)."""
        return self.passes.command(node, stage)

    def _write_passes(self, passes: list[FlownPass]) -> None:
        if passes and self.writer is not None:
            self.writer.add_passes(p.row() for p in passes)

    def acknowledge(
        self, alert_id: int, who: str, comment: str = "", origin: str = ""
    ) -> AlertChange:
        """Acknowledge an alert (archived and published). KeyError if unknown. `origin`:
        the other console it was acknowledged at (groundctl.operations)."""
        assert self.processor is not None and self.writer is not None
        change = self.processor.alerts.acknowledge(alert_id, who, self.clock(), comment)
        self._record([change], origin)
        return change

    def shelve(self, alert_id: int, until_s: float, origin: str = "") -> AlertChange:
        """Shelve an alert until a time (archived and published). KeyError if unknown."""
        assert self.processor is not None and self.writer is not None
        change = self.processor.alerts.shelve(alert_id, until_s, self.clock())
        self._record([change], origin)
        return change

    def _record(self, changes: list[AlertChange], origin: str = "") -> None:
        assert self.writer is not None
        for change in changes:
            raised_in = None
            if change.action == "raised":
                raised_in = self.passes.alert_raised(change.alert.node)
            self.writer.add_alerts([change], raised_in)
            self.bus.publish(AlertMessage(change, origin))

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            self.tick()
            if self.writer is not None and self.writer.due():
                await self.writer.apending()

    def tick(self) -> list[AlertChange]:
        """Check staleness now; archive and publish what changed."""
        assert self.processor is not None
        now = self.clock()
        self._next_check_s = now + self.tick_s
        changes = self.processor.tick(now)
        if changes:
            self._record(changes)
        self._write_passes(self.passes.tick(now))
        # the flying passes' figures so far, every few seconds (an archive read meanwhile,
        # or one left by a crash, shows them)
        wall = time.monotonic()
        if wall - self._passes_written >= PASS_UPDATE_S:
            self._passes_written = wall
            self._write_passes(self.passes.flying())
        if self.commander is not None:
            self.commander.on_tick(now)
        return changes
