"""A station's antenna and radio through a pass: pre-position, follow, tune, park.

One `StationTracker` per station with a rotator or a radio. Every `update_s` of the
clock it tracks (the engine's: wall time live, simulated time with the simulator) it
looks at the contact plan:

- before a contact's AOS (from `preposition_s` ahead) it points the antenna where the
  node will rise and tunes the radio for the AOS Doppler;
- from AOS to LOS it follows the node: it points where the node will be a little ahead
  (half a threshold's travel, `groundctl.station.tracking.lead_s`) and sends a new
  position only when that lead point is more than `threshold_deg` from the last one
  sent, so the antenna's error stays within about half the threshold; north crossings
  and flip-over are planned once per pass (`plan_axes`); it reads the position back and
  retunes the downlink and uplink for the range rate, in whole hertz, only when changed;
- after LOS it parks the antenna.

Every update is published as a `StationMessage` (and archived, in `station_log`);
connections lost and regained and refused targets are events. A daemon that goes away
is retried with backoff by its client while tracking goes on, and tracking resumes at
the current position of the pass when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from groundctl.bus import StationMessage
from groundctl.config import StationControl
from groundctl.orbits.model import Pass, Station
from groundctl.station.hamlib import HamlibClient, HamlibError, Radio, Rotator
from groundctl.station.tracking import (
    AxisPlan,
    Look,
    doppler,
    lead_s,
    look,
    plan_axes,
    rotator_azimuth,
    separation_deg,
)
from groundctl.telemetry.model import Event

PARK_AFTER_S = 5.0  # clock seconds after LOS before parking
TRACK_STEP_S = 5.0  # sampling of a pass's track for the axis plan
RETRY_S = (0.5, 5.0)  # a lost daemon is retried after 0.5 s, doubling up to 5 s
WAKE_S = 0.25  # wall seconds between looks at the clock while waiting for an update


@dataclass
class _Pass:
    contact: Pass
    plan: AxisPlan
    limits: tuple[float, float, float, float]  # min_az, max_az, min_el, max_el
    last_target: tuple[float, float] | None = None  # sky direction last commanded
    last_rotator_az: float | None = None
    sent_preposition: bool = False


@dataclass
class TrackerState:
    """What the tracker last did, for the console."""

    phase: str = "idle"
    node: str = ""
    last: StationMessage | None = None
    errors: int = 0
    updates: int = 0
    history: list[StationMessage] = field(default_factory=list)


class StationTracker:
    """Drive one station's rotator and radio from the contact plan.

    `contacts()` gives the contact plan's passes (any stations: this station's are
    taken), `tles` each node's TLE lines, `frequencies` each node's (downlink, uplink)
    in Hz (None: not tuned), `clock()` the time tracked, `speed` how fast it runs
    against the wall (1 live; the simulator's speed; 0 as fast as possible). `publish`
    gets each update; `note` each event worth an operator's attention.
    """

    def __init__(
        self,
        station: Station,
        control: StationControl,
        *,
        clock: Callable[[], float],
        contacts: Callable[[], Sequence[Pass]],
        tles: Mapping[str, tuple[str, str]],
        frequencies: Mapping[str, tuple[int | None, int | None]] | None = None,
        publish: Callable[[StationMessage], None] | None = None,
        note: Callable[[Event], None] | None = None,
        speed: float = 1.0,
        keep_history: int = 0,
    ) -> None:
        self.station = station
        self.control = control
        self.clock = clock
        self.contacts = contacts
        self.tles = dict(tles)
        self.frequencies = dict(frequencies or {})
        self.publish = publish
        self.note = note
        self.speed = speed
        self.keep_history = keep_history
        self.state = TrackerState()
        settings = control.rotator
        self.update_s = settings.update_s if settings is not None else 1.0
        self.threshold_deg = settings.threshold_deg if settings is not None else 2.0
        self.preposition_s = settings.preposition_s if settings is not None else 120.0
        self.max_lead_s = settings.max_lead_s if settings is not None else 10.0
        self.rotator: Rotator | None = None
        self.radio: Radio | None = None
        if control.rotator is not None:
            r = control.rotator
            self.rotator = Rotator(
                f"rotator {station.name}", r.host, r.port, timeout_s=r.timeout_s, backoff_s=RETRY_S
            )
            self.rotator.on_state(self._connection)
        if control.radio is not None:
            d = control.radio
            self.radio = Radio(
                f"radio {station.name}", d.host, d.port, timeout_s=d.timeout_s, backoff_s=RETRY_S
            )
            self.radio.on_state(self._connection)
        self._current: _Pass | None = None
        self._parked = True  # nothing to park before the first pass
        self._tuned: tuple[int | None, int | None] = (None, None)
        self._split = False
        self._task: asyncio.Task[None] | None = None
        self._last_problem = ""
        self._stopping = False

    # --- running --------------------------------------------------------------------------
    def start(self) -> asyncio.Task[None]:
        """Track until `stop()`."""
        self._task = asyncio.create_task(self.run(), name=f"station-{self.station.name}")
        return self._task

    async def stop(self) -> None:
        """Stop tracking and close the connections (the antenna stays where it is)."""
        self._stopping = True  # closing the connections is not news
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for client in (self.rotator, self.radio):
            if client is not None:
                await client.close()

    async def run(self) -> None:
        """Update every `update_s` of the clock, for ever."""
        while True:
            started = self.clock()
            await self.update(started)
            due = started + self.update_s
            if self.speed <= 0:
                await asyncio.sleep(0.05)
                continue
            # sleep until the clock reaches the next update (it may run faster than the
            # wall: the simulator's), re-checking in case it jumped
            while True:
                left = (due - self.clock()) / self.speed
                if left <= 0:
                    break
                await asyncio.sleep(min(left, WAKE_S))

    # --- one update -----------------------------------------------------------------------
    async def update(self, now_s: float) -> StationMessage | None:
        """Do what the contact plan asks for at `now_s`; the update published (None when
        idle with nothing to do)."""
        contact = self._contact_at(now_s)
        if contact is None:
            if self._current is not None or not self._parked:
                return await self._park(now_s)
            return None
        if self._current is None or self._current.contact is not contact:
            self._current = await self._plan(contact)
        current = self._current
        aos, los = contact.aos.timestamp(), contact.los.timestamp()
        if now_s < aos:
            return await self._preposition(now_s, current)
        if now_s <= los:
            return await self._track(now_s, current)
        return await self._park(now_s)

    def _contact_at(self, now_s: float) -> Pass | None:
        """The contact being flown or next prepared at this station, if one is due."""
        best: Pass | None = None
        for p in self.contacts():
            if p.station != self.station.name or not p.scheduled or p.antenna not in (None, 1):
                continue
            aos, los = p.aos.timestamp(), p.los.timestamp()
            due = aos - self.preposition_s <= now_s <= los and p.node in self.tles
            if due and (best is None or p.aos < best.aos):
                best = p
        return best

    async def _plan(self, contact: Pass) -> _Pass:
        """The axis plan of a new contact (limits from rotctld and the config)."""
        limits = await self._limits()
        line1, line2 = self.tles[contact.node]
        from groundctl.orbits.track import look_angles_at

        aos, los = contact.aos.timestamp(), contact.los.timestamp()
        times = np.append(np.arange(aos, los, TRACK_STEP_S), los)
        az, el, _ = look_angles_at(line1, line2, self.station, times)
        current_az = None
        last = self.state.last
        if last is not None and last.actual_az is not None:
            current_az = last.actual_az
        plan = plan_axes(
            az, el, min_az=limits[0], max_az=limits[1], max_el=limits[3], current_az=current_az
        )
        if plan.flip or plan.unwinds:
            how = (
                "flipped (azimuth + 180, elevation 180 - el): the pass crosses the azimuth stop"
                if plan.flip
                else f"unwinding once at azimuth {plan.unwind_az_deg:.1f}: the pass does not "
                "fit the rotator's azimuth range"
            )
            self._event(aos, contact.node, "WARNING", f"{self.station.name}: tracking {how}")
        return _Pass(contact, plan, limits)

    async def _limits(self) -> tuple[float, float, float, float]:
        """The rotator's limits narrowed by the config's (defaults 0..360, 0..90)."""
        min_az, max_az, min_el, max_el = 0.0, 360.0, 0.0, 90.0
        if self.rotator is not None:
            try:
                found = await self.rotator.limits()
            except HamlibError as error:
                self._problem(self.clock(), "", str(error.message))
            else:
                min_az, max_az = found.min_az, found.max_az
                min_el, max_el = found.min_el, found.max_el
        settings = self.control.rotator
        if settings is not None:
            if settings.min_az is not None:
                min_az = max(min_az, settings.min_az)
            if settings.max_az is not None:
                max_az = min(max_az, settings.max_az)
            if settings.min_el is not None:
                min_el = max(min_el, settings.min_el)
            if settings.max_el is not None:
                max_el = min(max_el, settings.max_el)
        return min_az, max_az, min_el, max_el

    def _axes(self, current: _Pass, az: float, el: float) -> tuple[float, float]:
        """A sky direction as the rotator's (az, el) on this pass's plan."""
        min_az, max_az, min_el, max_el = current.limits
        raz, rel = current.plan.direction(az, el)
        reference = current.last_rotator_az
        if reference is None:
            reference = current.plan.start_az_deg
        raz = rotator_azimuth(raz, reference, min_az, max_az)
        return raz, min(max(rel, min_el), max_el)

    def _sky(self, current: _Pass | None, az: float, el: float) -> tuple[float, float]:
        """A rotator (az, el) read back as a sky direction."""
        if current is not None and current.plan.flip:
            return (az + 180.0) % 360.0, 180.0 - el
        return az % 360.0, el

    async def _preposition(self, now_s: float, current: _Pass) -> StationMessage:
        contact = current.contact
        line1, line2 = self.tles[contact.node]
        rise = look(line1, line2, self.station, contact.aos.timestamp())

        async def antenna() -> tuple[tuple[float, float] | None, str, tuple[float, float] | None]:
            target, detail = None, ""
            if not current.sent_preposition:
                el = max(rise.el_deg, current.limits[2])
                target, detail = await self._point(current, rise.az_deg, el)
                current.sent_preposition = target is not None
            actual, problem = await self._read(current)
            return target, detail or problem, actual

        # the rotator and the radio are separate daemons: both at once
        (target, detail, actual), tuned = await asyncio.gather(
            antenna(), self._tune(contact.node, rise)
        )
        return self._publish(
            now_s, contact.node, "prepositioning", None, target, actual, tuned, detail
        )

    async def _track(self, now_s: float, current: _Pass) -> StationMessage:
        contact = current.contact
        line1, line2 = self.tles[contact.node]
        here = look(line1, line2, self.station, now_s)
        ahead_1s = look(line1, line2, self.station, now_s + 1.0)
        rate = separation_deg(here.az_deg, here.el_deg, ahead_1s.az_deg, ahead_1s.el_deg)
        lead = lead_s(rate, self.threshold_deg, self.max_lead_s)
        ahead = look(line1, line2, self.station, min(now_s + lead, contact.los.timestamp()))

        async def antenna() -> tuple[tuple[float, float] | None, str, tuple[float, float] | None]:
            target, detail = None, ""
            last = current.last_target
            if last is None or (
                separation_deg(last[0], last[1], ahead.az_deg, ahead.el_deg) > self.threshold_deg
            ):
                target, detail = await self._point(current, ahead.az_deg, max(ahead.el_deg, 0.0))
            actual, problem = await self._read(current)
            return target, detail or problem, actual

        (target, detail, actual), tuned = await asyncio.gather(
            antenna(), self._tune(contact.node, here)
        )
        return self._publish(now_s, contact.node, "tracking", here, target, actual, tuned, detail)

    async def _park(self, now_s: float) -> StationMessage | None:
        current = self._current
        node = current.contact.node if current is not None else ""
        if current is not None and now_s < current.contact.los.timestamp() + PARK_AFTER_S:
            return None  # a moment after LOS, in case the plan runs on
        self._current = None
        detail = ""
        if self.rotator is not None and not self._parked:
            settings = self.control.rotator
            try:
                if settings is not None and settings.park is not None:
                    await self.rotator.set_position(*settings.park)
                else:
                    await self.rotator.park()
                self._parked = True
                detail = "parked"
            except HamlibError as error:
                detail = self._problem(now_s, node, error.message)
        else:
            self._parked = True
        return self._publish(now_s, node, "parking", None, None, None, False, detail)

    # --- devices ----------------------------------------------------------------------------
    async def _point(
        self, current: _Pass, az: float, el: float
    ) -> tuple[tuple[float, float] | None, str]:
        """Command the rotator to a sky direction; the rotator axes sent (None when not
        sent) and the problem, if any."""
        if self.rotator is None:
            return None, ""
        try:
            raz, rel = self._axes(current, az, el)
            await self.rotator.set_position(raz, rel)
        except (HamlibError, ValueError) as error:
            message = error.message if isinstance(error, HamlibError) else str(error)
            return None, self._problem(self.clock(), current.contact.node, message)
        current.last_target = (az, el)
        current.last_rotator_az = raz
        self._parked = False
        return (raz, rel), ""

    async def _read(self, current: _Pass | None) -> tuple[tuple[float, float] | None, str]:
        """The rotator's position, read back (None when it could not be), and the
        problem if any."""
        if self.rotator is None:
            return None, ""
        try:
            return await self.rotator.position(), ""
        except HamlibError as error:
            node = current.contact.node if current else ""
            return None, self._problem(self.clock(), node, error.message)

    async def _tune(self, node: str, where: Look) -> bool:
        """Set the Doppler-corrected frequencies when they changed; True when set."""
        if self.radio is None or not math.isfinite(where.range_rate_m_s):
            return False
        down0, up0 = self.frequencies.get(node, (None, None))
        down, up = doppler(down0, up0, where.range_rate_m_s)
        changed = False
        try:
            if down is not None and down != self._tuned[0]:
                await self.radio.set_frequency(down)
                self._tuned = (down, self._tuned[1])
                changed = True
            if up is not None and up != self._tuned[1]:
                if not self._split:
                    tx_vfo = self.control.radio.tx_vfo if self.control.radio else "VFOB"
                    await self.radio.set_split(True, tx_vfo)
                    self._split = True
                await self.radio.set_tx_frequency(up)
                self._tuned = (self._tuned[0], up)
                changed = True
        except HamlibError as error:
            self._problem(self.clock(), node, error.message)
            self._split = self._split and self.radio.connected
        return changed

    # --- reporting --------------------------------------------------------------------------
    def _publish(
        self,
        now_s: float,
        node: str,
        phase: str,
        here: Look | None,
        target: tuple[float, float] | None,
        actual: tuple[float, float] | None,
        tuned: bool,
        detail: str,
    ) -> StationMessage:
        error = None
        if here is not None and actual is not None:
            sky = self._sky(self._current, *actual)
            error = separation_deg(sky[0], sky[1], here.az_deg, here.el_deg)
        message = StationMessage(
            self.station.name,
            node,
            phase,
            now_s,
            node_az=here.az_deg if here is not None else None,
            node_el=here.el_deg if here is not None else None,
            target_az=target[0] if target else None,
            target_el=target[1] if target else None,
            actual_az=actual[0] if actual else None,
            actual_el=actual[1] if actual else None,
            error_deg=error,
            downlink_hz=self._tuned[0],
            uplink_hz=self._tuned[1],
            tuned=tuned,
            detail=detail,
        )
        state = self.state
        state.phase, state.node, state.last = phase, node, message
        state.updates += 1
        if self.keep_history:
            state.history.append(message)
            del state.history[: -self.keep_history]
        if self.publish is not None:
            self.publish(message)
        return message

    def _problem(self, time_s: float, node: str, message: str) -> str:
        """Count a device problem; an event when it is a new one (not every update)."""
        self.state.errors += 1
        if message != self._last_problem:
            self._last_problem = message
            self._event(time_s, node, "WARNING", message)
        return message

    def _connection(self, client: HamlibClient, connected: bool, reason: str) -> None:
        if self._stopping:
            return
        if connected:
            self._last_problem = ""
            if client is self.radio:
                self._tuned, self._split = (None, None), False  # a new daemon: retune
            elif self._current is not None:  # a new daemon: point again
                self._current.last_target = None
                self._current.sent_preposition = False
        text = f"{client.name} ({client.address}) " + (
            "connected" if connected else f"lost: {reason}"
        )
        self._event(self.clock(), "", "INFO" if connected else "WARNING", text)

    def _event(self, time_s: float, node: str, severity: str, text: str) -> None:
        if self.note is not None:
            kind = "station"
            self.note(Event(time_s, node or self.station.name, "station", kind, severity, text))


def station_trackers(
    config: Any,
    *,
    clock: Callable[[], float],
    contacts: Callable[[], Sequence[Pass]],
    tles: Mapping[str, tuple[str, str]],
    publish: Callable[[StationMessage], None] | None = None,
    note: Callable[[Event], None] | None = None,
    speed: float = 1.0,
) -> list[StationTracker]:
    """A tracker for each configured station with a rotator or a radio."""
    frequencies = {name: (node.downlink_hz, node.uplink_hz) for name, node in config.nodes.items()}
    trackers = []
    for station in config.stations:
        control = config.control.get(station.name)
        if control is None:
            continue
        trackers.append(
            StationTracker(
                station,
                control,
                clock=clock,
                contacts=contacts,
                tles=tles,
                frequencies=frequencies,
                publish=publish,
                note=note,
                speed=speed,
            )
        )
    return trackers
