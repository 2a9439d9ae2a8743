"""Flown passes: each contact as it was flown, with its summary figures.

A pass opens at a link's AOS event (a link with a contact plan says which station and
what was planned) and closes at its LOS. A link without a contact plan (UDP to a lab
node, a replayed recording) has no AOS: there a pass opens with the first frame heard
from a node and closes once the node has been silent for `silence_s` (or the link goes
down, or the engine stops). Every frame (both directions), event, alert raised and
command sent while a pass is open is counted in it and carries its id in the archive.

`PassRecorder` is pure bookkeeping: the engine calls it and writes the rows it returns.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from groundctl.telemetry.pipeline import Processed

SEQUENCE_MODULO = 1 << 14  # CCSDS packet sequence counts are 14 bits
DEFAULT_SILENCE_S = 120.0


@dataclass
class FlownPass:
    """One pass as flown so far; `los` is None while flying. Field order is the
    `flown_passes` table's column order (`row()`)."""

    id: int
    node: str
    station: str
    link: str
    aos: float
    los: float | None = None
    status: str = "flying"  # flying, flown, interrupted
    planned_aos: float | None = None
    planned_los: float | None = None
    max_elevation_deg: float | None = None
    frames_down: int = 0
    bytes_down: int = 0
    frames_up: int = 0
    bytes_up: int = 0
    malformed: int = 0
    unknown: int = 0
    gaps: int = 0
    missing: int = 0
    longest_silence_s: float = 0.0
    samples: int = 0
    events: int = 0
    alerts_raised: int = 0
    commands_sent: int = 0
    commands_verified: int = 0
    commands_failed: int = 0

    def row(self) -> tuple[Any, ...]:
        """The values in `flown_passes` column order."""
        return astuple(self)


COLUMNS: tuple[str, ...] = tuple(FlownPass.__dataclass_fields__)


@dataclass
class _Open:
    flown: FlownPass
    planned: bool  # opened by an AOS event: closed only by LOS (or the end)
    last_down_s: float | None = None
    last_heard_s: float = 0.0
    sequences: dict[int, int] | None = None  # packet id -> last sequence count


class PassRecorder:
    """The open pass of each node, and what each one has seen.

    Methods return the passes whose rows changed (to be written); `next_id` is the id
    the next pass gets (the archive's highest + 1).
    """

    def __init__(self, next_id: int = 1, *, silence_s: float = DEFAULT_SILENCE_S) -> None:
        self.next_id = next_id
        self.silence_s = silence_s
        self._open: dict[str, _Open] = {}

    # --- which pass ----------------------------------------------------------------------
    def current(self, node: str) -> int | None:
        """The id of `node`'s open pass, or None."""
        entry = self._open.get(node)
        return entry.flown.id if entry is not None else None

    def flying(self) -> list[FlownPass]:
        """The passes open now, by id."""
        return sorted((e.flown for e in self._open.values()), key=lambda p: p.id)

    # --- opening and closing -------------------------------------------------------------
    def aos(
        self,
        node: str,
        link: str,
        time_s: float,
        *,
        station: str = "",
        planned_aos: float | None = None,
        planned_los: float | None = None,
        max_elevation_deg: float | None = None,
    ) -> list[FlownPass]:
        """A planned contact begins: open its pass (closing one still open at `time_s`)."""
        changed = self.los(node, time_s)
        flown = FlownPass(
            self.next_id,
            node,
            station,
            link,
            time_s,
            planned_aos=planned_aos,
            planned_los=planned_los,
            max_elevation_deg=max_elevation_deg,
        )
        self.next_id += 1
        self._open[node] = _Open(flown, planned=True, last_heard_s=time_s)
        return [*changed, flown]

    def los(self, node: str, time_s: float, status: str = "flown") -> list[FlownPass]:
        """`node`'s pass ends at `time_s` (nothing when none is open)."""
        entry = self._open.pop(node, None)
        if entry is None:
            return []
        flown = entry.flown
        flown.los = max(time_s, flown.aos)
        flown.status = status
        return [flown]

    def link_down(self, link: str, time_s: float) -> list[FlownPass]:
        """A link went down: the passes it carried without a contact plan end at the
        last frame heard (a planned pass ends at its LOS, which the link reports)."""
        closed: list[FlownPass] = []
        for node, entry in list(self._open.items()):
            if entry.flown.link == link and not entry.planned:
                closed += self.los(node, min(time_s, entry.last_heard_s))
        return closed

    def tick(self, now_s: float) -> list[FlownPass]:
        """Close the unplanned passes of nodes silent for `silence_s`, at their last frame."""
        closed: list[FlownPass] = []
        for node, entry in list(self._open.items()):
            if not entry.planned and now_s - entry.last_heard_s >= self.silence_s:
                closed += self.los(node, entry.last_heard_s)
        return closed

    def close_all(self, time_s: float, status: str = "flown") -> list[FlownPass]:
        """End every open pass (the engine stops): a planned one at `time_s` with
        `status` (stopped before its LOS: "interrupted"), one without a plan at the last
        frame heard, flown (the span of reception it records is whole)."""
        closed: list[FlownPass] = []
        for node, entry in list(self._open.items()):
            if entry.planned:
                closed += self.los(node, time_s, status)
            else:
                closed += self.los(node, entry.last_heard_s)
        return closed

    # --- what happens in a pass ----------------------------------------------------------
    def downlink(
        self,
        node: str,
        link: str,
        time_s: float,
        size: int,
        *,
        status: str,
        packet_id: int | None,
        sequence: int | None,
        samples: int,
        events: int,
        alerts_raised: int,
    ) -> tuple[int | None, list[FlownPass]]:
        """A frame received from `node`: its pass id (opening an unplanned pass when none
        is open) and the passes opened by it."""
        opened: list[FlownPass] = []
        entry = self._open.get(node)
        if entry is None:
            flown = FlownPass(self.next_id, node, "", link, time_s)
            self.next_id += 1
            entry = self._open[node] = _Open(flown, planned=False, last_heard_s=time_s)
            opened.append(flown)
        flown = entry.flown
        flown.frames_down += 1
        flown.bytes_down += size
        flown.malformed += status == "malformed"
        flown.unknown += status == "unknown"
        flown.samples += samples
        flown.events += events
        flown.alerts_raised += alerts_raised
        if entry.last_down_s is not None:
            flown.longest_silence_s = max(flown.longest_silence_s, time_s - entry.last_down_s)
        entry.last_down_s = time_s
        entry.last_heard_s = max(entry.last_heard_s, time_s)
        if packet_id is not None and sequence is not None:
            sequences = entry.sequences
            if sequences is None:
                sequences = entry.sequences = {}
            last = sequences.get(packet_id)
            skipped = 0 if last is None else (sequence - last - 1) % SEQUENCE_MODULO
            # more than half the counter on is a repeated or late packet: not a gap, and
            # the count goes on from the newest packet
            if skipped < SEQUENCE_MODULO // 2:
                if skipped:
                    flown.gaps += 1
                    flown.missing += skipped
                sequences[packet_id] = sequence
        return flown.id, opened

    def processed(self, processed: Processed) -> tuple[int | None, list[FlownPass]]:
        """`downlink` for a frame the pipeline processed (its status, packet, counts)."""
        frame = processed.frame
        raised = 0
        for change in processed.alerts:
            raised += change.action == "raised"
        return self.downlink(
            frame.node,
            frame.link,
            frame.time_s,
            len(frame.raw),
            status=processed.status,
            packet_id=processed.packet_id,
            sequence=processed.sequence_count,
            samples=len(processed.samples),
            events=len(processed.events),
            alerts_raised=raised,
        )

    def uplink(self, node: str, size: int) -> int | None:
        """A frame sent to `node`: counted in its open pass, whose id is returned."""
        entry = self._open.get(node)
        if entry is None:
            return None
        entry.flown.frames_up += 1
        entry.flown.bytes_up += size
        return entry.flown.id

    def event(self, node: str) -> int | None:
        """An event of `node` outside any frame (a ground event): counted; the pass id."""
        entry = self._open.get(node)
        if entry is None:
            return None
        entry.flown.events += 1
        return entry.flown.id

    def alert_raised(self, node: str) -> int | None:
        """An alert raised outside any frame (staleness): counted; the pass id."""
        entry = self._open.get(node)
        if entry is None:
            return None
        entry.flown.alerts_raised += 1
        return entry.flown.id

    def command(self, node: str, stage: str) -> int | None:
        """A command of `node` reached `stage`: sent, completed, failed and timeout are
        counted in the open pass; the pass id."""
        entry = self._open.get(node)
        if entry is None:
            return None
        flown = entry.flown
        if stage == "sent":
            flown.commands_sent += 1
        elif stage == "completed":
            flown.commands_verified += 1
        elif stage in ("failed", "timeout"):
            flown.commands_failed += 1
        return flown.id
