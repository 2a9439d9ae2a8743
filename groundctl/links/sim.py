"""The `sim` link: an in-process simulated fleet, no sockets (for the demo and tests).

One link serves the whole simulated fleet, like a gateway: each received frame carries
the node that sent it, and `send(packet, node=...)` commands one node. Simulated time
runs at `speed` times the wall clock (0: as fast as the engine takes frames); frames
carry simulated time, and `clock()` is the simulated now. With `gate` (the default) a
node transmits, and hears commands, only during its contacts in the contact plan, and
the link raises AOS and LOS events. A simulated node whose [nodes] entry in the config
has `key_file` or `key_env` takes only commands signed with that key
(`groundctl.commanding.auth`).

Frames are handed over through a bounded queue: when the engine falls behind, the
simulation waits for it (simulated time lags, `lag_s` says by how much) rather than
dropping anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from groundctl.links.base import Link, LinkError, LinkOption, LinkState, cancel
from groundctl.telemetry.model import Event, Frame

if TYPE_CHECKING:
    from groundctl.orbits.model import Pass

QUEUE_FRAMES = 20_000
SLICE_NODE_STEPS = 2_000  # node-seconds simulated between two yields to the event loop


class SimLink(Link):
    """A simulated fleet of `odc-node` nodes on the configured fleet's orbits."""

    DESCRIPTION = "in-process simulated fleet of orbital compute nodes (odc-node), no sockets"
    OPTIONS = (
        LinkOption("speed", float, 1.0, "simulated seconds per second; 0 = as fast as possible"),
        LinkOption("seed", int, 0, "random seed: the same seed gives the same telemetry"),
        LinkOption("start", str, "", "simulated start time, ISO 8601 UTC; empty = now"),
        LinkOption("nodes", str, "", "comma-separated nodes to simulate; empty = whole fleet"),
        LinkOption("gate", bool, True, "transmit only during the contact plan's contacts"),
        LinkOption("downlink_rate", float, 18.75e6, "result downlink rate, bytes/s"),
        LinkOption("faults", str, "", "'NODE FAULT at S [for S]; ...' (seconds after start)"),
        LinkOption("duration", float, 0.0, "end after this many simulated seconds; 0 = run on"),
    )

    def __init__(self, name: str, node: str, options: dict[str, Any]) -> None:
        super().__init__(name, node, options)
        speed = self.options["speed"]
        if speed < 0 or speed > 100_000:
            raise LinkError(f"link {name}: speed must be 0 (as fast as possible) to 100000")
        self.speed = float(speed)
        self.start_s = _start(name, self.options["start"])
        from groundctl.sim.fleet import SimError, parse_faults

        try:
            self.faults = parse_faults(self.options["faults"])
        except SimError as error:
            raise LinkError(
                f"link {name}: option 'faults': {error.message}", hint=error.hint
            ) from None
        self.fleet: Any = None  # groundctl.sim.fleet.SimFleet once open
        # Frames, contact events and time marks, in simulated-time order, then the end of
        # the simulation: the consumer sees each AOS/LOS between the right frames and the
        # end after the last one, and its clock moves with them.
        self._queue: asyncio.Queue[Frame | Event | float | _End | None] = asyncio.Queue(
            QUEUE_FRAMES
        )
        self._now_s = self.start_s
        self._task: asyncio.Task[None] | None = None
        self._target_s = self.start_s
        self._closed = False
        # what the simulation produced but the queue could not take yet: delivered after
        # the queue when the link closes, so that nothing simulated is lost
        self._backlog: deque[Frame | Event | float] = deque()
        self.generated = 0
        # the contact each AOS announced, by (node, AOS time), until the engine asks
        self._announced: dict[tuple[str, float], Pass] = {}
        if self.options["duration"] < 0:
            raise LinkError(f"link {name}: duration must be 0 (run on) or more seconds")
        self.end_s = self.start_s + self.options["duration"] if self.options["duration"] else None

    # --- building the fleet ----------------------------------------------------------
    def _build(self) -> Any:
        from dataclasses import replace

        from groundctl.config import demo_config_path, load_config
        from groundctl.fleet import load_fleet
        from groundctl.sim.fleet import SimError, SimFleet
        from groundctl.sim.node import NodeParams

        config = self.context.config or load_config(demo_config_path())
        fleet = load_fleet(config, now=datetime.fromtimestamp(self.start_s, UTC))
        wanted = [n.strip() for n in self.options["nodes"].split(",") if n.strip()]
        satellites = fleet.satellites(wanted or None)
        missing = {w.lower() for w in wanted} - {s.name.lower() for s in satellites}
        if missing:
            raise LinkError(
                f"link {self.name}: option 'nodes': not in the fleet: {', '.join(sorted(missing))}",
                hint="fleet: " + ", ".join(fleet.names()[:12]),
            )
        params = replace(NodeParams(), downlink_rate_bps=self.options["downlink_rate"])
        keys = _node_keys(config, [s.name for s in satellites])
        try:
            return SimFleet(
                satellites,
                config.stations,
                start_s=self.start_s,
                seed=self.options["seed"],
                gate=self.options["gate"],
                params=params,
                faults=self.faults,
                keys=keys,
            )
        except SimError as error:
            raise LinkError(f"link {self.name}: {error.message}", hint=error.hint) from None

    # --- the contract ----------------------------------------------------------------
    async def open(self) -> None:
        """Build the fleet (pass prediction runs off the event loop) and start it."""
        self._set_state(LinkState.CONNECTING)
        self.fleet = await asyncio.to_thread(self._build)
        self._task = asyncio.create_task(self._run(), name=f"link-{self.name}")
        self._set_state(LinkState.UP)

    async def close(self) -> None:
        """Stop simulating; frames already simulated are still delivered, then `frames()`
        ends."""
        self._closed = True
        await cancel(self._task)
        self._task = None
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)
        self._set_state(LinkState.CLOSED)

    async def send(self, data: bytes, node: str | None = None) -> None:
        """Uplink a command to `node` (default: the link's node). LinkError when the
        node is unknown or not in contact (the message gives the next AOS)."""
        from groundctl.sim.fleet import SimError

        if self.fleet is None or self.state is not LinkState.UP:
            raise LinkError(f"link {self.name} is {self.state.value}: nothing was sent")
        try:
            self.fleet.command(node or self.node, data)
        except SimError as error:
            raise LinkError(f"link {self.name}: {error.message}", hint=error.hint) from None
        self._count_sent(data)

    def clock(self) -> float:
        """Simulated now, as far as the consumer of `frames()` has got."""
        return self._now_s

    @property
    def lag_s(self) -> float:
        """How far simulated time is behind where `speed` would have it."""
        return max(0.0, self._target_s - self._now_s) if self.speed else 0.0

    # --- the contact plan, for the commander ---------------------------------------
    def serves(self, node: str) -> bool:
        """Every simulated node is reached through this one gateway link."""
        return self.fleet is not None and node in self.fleet.nodes

    def in_contact(self, node: str) -> bool:
        """A station of the contact plan sees `node` now (always, ungated)."""
        return (
            self.fleet is not None
            and self.state is LinkState.UP
            and node in self.fleet.nodes
            and self.fleet.reachable(node)
        )

    def next_contact(self, node: str) -> float | None:
        """The AOS of `node`'s next planned contact (None beyond the planning window)."""
        if self.fleet is None:
            return None
        upcoming = self.fleet.schedule.next_aos(node, self.fleet.t)
        return upcoming.aos.timestamp() if upcoming is not None else None

    def uplink_clock(self, node: str) -> float:
        """The simulated time a command sent now is executed at: the fleet's, which may
        be ahead of `clock()` by the frames still queued for the consumer."""
        return float(self.fleet.t) if self.fleet is not None else self._now_s

    def current_contact(self, node: str) -> Pass | None:
        """The planned contact `node` is in now, with its station, AOS and LOS."""
        if self.fleet is None or node not in self.fleet.nodes:
            return None
        contact: Pass | None = self.fleet.contact_of(node)
        return contact

    def contact_at(self, node: str, time_s: float) -> Pass | None:
        """The planned contact `node` was in at `time_s` (simulated time): the one its
        AOS announced at that time, else the plan's (which may since have been re-planned:
        the simulation runs ahead of the frames the consumer has taken)."""
        announced = self._announced.pop((node, time_s), None)
        if announced is not None:
            return announced
        if self.fleet is None or node not in self.fleet.nodes or not self.fleet.gate:
            return None
        contact: Pass | None = self.fleet.schedule.at(node, time_s)
        return contact if contact is not None else self.fleet.contact_of(node)

    async def _receive(self) -> AsyncIterator[bytes]:
        """The received bytes alone (`frames()` is the richer view: node and time)."""
        async for frame in self.frames():
            yield frame.raw

    async def frames(self) -> AsyncIterator[Frame]:
        """Frames as the nodes send them, stamped with simulated time and their node."""
        while True:
            if self._closed and self._queue.empty():
                if not self._backlog:
                    return
                self._queue.put_nowait(self._backlog.popleft())
            frame = await self._queue.get()
            if frame is None:
                if self._closed and self._backlog:
                    continue
                return
            if isinstance(frame, _End):
                # the simulation ran its course: the link is down from its last second
                if self.state is LinkState.UP:
                    self._set_state(LinkState.DOWN)
                return
            if isinstance(frame, float):
                self._now_s = frame
                continue
            if isinstance(frame, Event):
                self._now_s = frame.time_s
                self._emit(frame)
                continue
            self._now_s = frame.time_s
            self.counters.frames_in += 1
            self.counters.bytes_in += len(frame.raw)
            self.counters.last_receive_s = frame.time_s
            yield frame

    # --- the simulation loop ---------------------------------------------------------
    async def _run(self) -> None:
        fleet = self.fleet
        loop = asyncio.get_running_loop()
        wall0 = loop.time()
        sim0 = fleet.t
        slice_s = max(1.0, float(SLICE_NODE_STEPS // len(fleet.nodes)))
        while self.end_s is None or fleet.t < self.end_s:
            if self.speed:
                self._target_s = sim0 + (loop.time() - wall0) * self.speed
                if self._target_s < fleet.t + 1.0:
                    await asyncio.sleep((fleet.t + 1.0 - self._target_s) / self.speed)
                    continue
                until = min(self._target_s, fleet.t + slice_s)
            else:
                until = fleet.t + slice_s
            if self.end_s is not None:
                until = min(until, self.end_s)
            sent, changes = fleet.advance(until)
            for change in changes:
                if change.kind == "aos":  # for contact_at when the engine gets the AOS
                    self._announced[(change.node, change.time_s)] = change.contact
            items: list[Frame | Event | float] = [_contact_event(c) for c in changes]
            items += [Frame(tx.raw, tx.time_s, self.name, tx.node, "down") for tx in sent]
            self.generated += len(sent)
            items.sort(key=_item_time)  # stable: an AOS before the frames of its second
            items.append(fleet.t)
            self._backlog.extend(items)
            while self._backlog:
                if self._queue.full():
                    await self._queue.put(self._backlog[0])  # the engine is behind: wait
                else:
                    self._queue.put_nowait(self._backlog[0])
                self._backlog.popleft()
            await asyncio.sleep(0)
        await self._queue.put(_End())  # frames() ends there, and the link goes down


def _node_keys(config: Any, names: list[str]) -> dict[str, bytes]:
    """The command keys of the simulated nodes whose config entry requires
    authentication; an unreadable key is a LinkError with the key's message and hint."""
    from groundctl.commanding.auth import AuthError, node_key

    keys = {}
    for name in names:
        entry = config.nodes.get(name)
        if entry is None or not entry.requires_auth:
            continue
        try:
            key = node_key(entry)
        except AuthError as error:
            raise LinkError(error.message, hint=error.hint) from None
        if key is not None:
            keys[name] = key
    return keys


class _End:
    """The end of a simulation with a `duration`, queued after its last frame."""


def _item_time(item: Frame | Event | float) -> float:
    return item if isinstance(item, float) else item.time_s


def _contact_event(change: Any) -> Event:
    p = change.contact
    if change.kind == "aos":
        text = (
            f"AOS {change.node} at {change.station}: max elevation "
            f"{p.max_elevation_deg:.1f} deg, LOS {p.los:%H:%M:%S}Z"
        )
    else:
        text = f"LOS {change.node} at {change.station}"
    return Event(change.time_s, change.node, "ground", change.kind, "INFO", text)


def _start(name: str, text: str) -> float:
    if not text:
        return float(int(time.time()))
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise LinkError(
            f"link {name}: option 'start': {text!r} is not an ISO 8601 time",
            hint="e.g. 2026-11-29T12:00:00Z",
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.timestamp()
