"""A simulated fleet: nodes on their real orbits, stepped second by second.

The fleet owns simulated time. `advance(until_s)` steps every node one simulated second
at a time with its sunlight (from the node's TLE and the Sun's position from the DE421
ephemeris) and its contact (from the contact plan of the same pass prediction
`groundctl passes` makes), and returns what the nodes transmitted and the contacts that
began or ended. Nothing here depends on the wall clock: the same seed, start time and
commands give the same bytes.

With `gate=False` every node is in contact all the time (a lab bench, as the standalone
simulator is by default).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np
from sgp4.api import SatrecArray

from groundctl.errors import GroundctlError
from groundctl.orbits.geometry import DAY_S, EARTH_RADIUS_KM, gmst1982, station_ecef, teme_to_ecef
from groundctl.orbits.model import Pass, Station
from groundctl.orbits.passes import Satellite, predict, sun_teme
from groundctl.orbits.plan import plan_contacts
from groundctl.sim.node import FAULT_CODES, Contact, NodeParams, SimNode

PLAN_HOURS = 24.0
LAB_RANGE_KM = 1000.0


class SimError(GroundctlError):
    """A simulator setting or request that cannot be honoured."""

    title = "simulator error"


class NotInContact(SimError):
    """A command for a node that no station sees now."""


@dataclass(frozen=True)
class Transmission:
    """A packet a node sent, at simulated time `time_s` (Unix seconds)."""

    node: str
    time_s: float
    raw: bytes


@dataclass(frozen=True)
class ContactChange:
    """A node came into (`aos`) or went out of (`los`) contact with a station."""

    node: str
    station: str
    kind: str  # "aos" or "los"
    time_s: float
    contact: Pass


@dataclass(frozen=True)
class ScheduledFault:
    node: str
    fault: str
    at_s: float  # seconds after the simulation start
    duration_s: float


_FAULT_SPEC = re.compile(
    r"^\s*(?P<node>\S+)\s+(?P<fault>\S+)\s+at\s+(?P<at>\S+)\s*(?:for\s+(?P<dur>\S+)\s*)?$"
)
_SECONDS = re.compile(r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")


def parse_faults(text: str) -> list[ScheduledFault]:
    """'ODC-07 THERMAL_RUNAWAY at 600 for 300; ODC-02 SEU_REBOOT at 90' -> schedule.

    Times are seconds after the simulation starts; `for` defaults to 60 s. Fault names
    may be given in any case. Raises SimError naming the entry that cannot be read and
    what is expected.
    """
    hint = "e.g. 'ODC-07 THERMAL_RUNAWAY at 600 for 300'; faults: " + ", ".join(FAULT_CODES)
    faults = []
    for number, part in enumerate(filter(str.strip, text.split(";")), 1):
        match = _FAULT_SPEC.match(part)
        if match is None:
            raise SimError(
                f"fault {number} ({part.strip()!r}): expected 'NODE FAULT at SECONDS "
                "[for SECONDS]'",
                hint=hint,
            )
        fault = match["fault"].upper()
        if fault not in FAULT_CODES:
            raise SimError(f"fault {number}: unknown fault {match['fault']!r}", hint=hint)
        at_s = _seconds(number, "at", match["at"], hint)
        duration_s = _seconds(number, "for", match["dur"], hint) if match["dur"] else 60.0
        if duration_s <= 0:
            raise SimError(
                f"fault {number}: 'for {match['dur']}': a fault lasts more than 0 s", hint=hint
            )
        faults.append(ScheduledFault(match["node"], fault, at_s, duration_s))
    return faults


def _seconds(number: int, word: str, text: str, hint: str) -> float:
    if not _SECONDS.match(text):
        raise SimError(f"fault {number}: '{word} {text}' is not a number of seconds", hint=hint)
    return float(text)


class ContactSchedule:
    """The scheduled contacts of each node, to ask who is in contact when."""

    def __init__(self, passes: Sequence[Pass]) -> None:
        self._by_node: dict[str, list[tuple[float, float, Pass]]] = {}
        for p in passes:
            if p.scheduled is False:
                continue
            self._by_node.setdefault(p.node, []).append((p.aos.timestamp(), p.los.timestamp(), p))
        for spans in self._by_node.values():
            spans.sort(key=lambda span: span[0])
        self._starts = {node: [s[0] for s in spans] for node, spans in self._by_node.items()}

    def at(self, node: str, time_s: float) -> Pass | None:
        """The contact the node is in at `time_s`, if any."""
        spans = self._by_node.get(node)
        if not spans:
            return None
        i = bisect.bisect_right(self._starts[node], time_s) - 1
        # overlapping contacts (handover between stations): look back a few
        for j in range(i, max(-1, i - 4), -1):
            aos, los, p = spans[j]
            if aos <= time_s < los:
                return p
        return None

    def next_aos(self, node: str, time_s: float) -> Pass | None:
        """The node's next contact starting after `time_s`."""
        spans = self._by_node.get(node)
        if not spans:
            return None
        i = bisect.bisect_right(self._starts[node], time_s)
        return spans[i][2] if i < len(spans) else None


class SimFleet:
    """Nodes on their orbits over the stations, in simulated time.

    `start_s` is Unix seconds UTC. `seed` makes the run reproducible. With `gate`, a node
    transmits (and hears commands) only during its contacts in the contact plan: the
    stations' priority plan (`plan_contacts`), or `contacts` when given (an antenna
    schedule decided elsewhere, e.g. a fleet plan's). `keys` (node name -> key) makes
    those nodes take only authenticated commands.
    """

    def __init__(
        self,
        satellites: Sequence[Satellite],
        stations: Sequence[Station],
        *,
        start_s: float,
        seed: int = 0,
        gate: bool = True,
        params: NodeParams | None = None,
        faults: Sequence[ScheduledFault] = (),
        keys: Mapping[str, bytes] | None = None,
        contacts: Sequence[Pass] | None = None,
    ) -> None:
        if not satellites:
            raise SimError("no nodes to simulate")
        if gate and not stations:
            raise SimError("no ground stations: nothing would ever be in contact")
        keys = keys or {}
        simulated = {sat.name for sat in satellites}
        unknown_keys = sorted(set(keys) - simulated)
        if unknown_keys:
            raise SimError(
                "keys given for nodes that are not simulated: " + ", ".join(unknown_keys),
                hint="simulated nodes: " + ", ".join(sorted(simulated)[:10]),
            )
        self.satellites = list(satellites)
        self.stations = list(stations)
        self.start_s = float(start_s)
        self.t = float(start_s)
        self.gate = gate
        self.nodes: dict[str, SimNode] = {}
        for i, sat in enumerate(self.satellites):
            period = DAY_S / _mean_motion_rev_per_day(sat.line2)
            self.nodes[sat.name] = SimNode(
                sat.name,
                seed * 1_000_003 + i,
                params,
                start_s=self.t,
                orbit_period_s=period,
                key=keys.get(sat.name),
            )
        # node names as the fleet's own are matched: whatever the case
        names = {name.lower(): name for name in self.nodes}
        unknown = sorted({f.node for f in faults if f.node.lower() not in names})
        if unknown:
            raise SimError(
                "faults name nodes that are not simulated: " + ", ".join(unknown),
                hint="simulated nodes: " + ", ".join(self.nodes),
            )
        self._faults = sorted(
            (replace(f, node=names[f.node.lower()]) for f in faults), key=lambda f: f.at_s
        )
        self._satrecs = SatrecArray([sat_satrec(s) for s in self.satellites])
        self._names = [s.name for s in self.satellites]
        self._station_km = {
            st.name: station_ecef(st.lat_deg, st.lon_deg, st.alt_m) for st in self.stations
        }
        self._window_end = -np.inf
        self._given = list(contacts) if contacts is not None else None
        self._sun_t0 = 0.0
        self._sun: tuple[np.ndarray, np.ndarray] | None = None
        self.schedule = ContactSchedule(())
        self._in_contact: dict[str, Pass | None] = dict.fromkeys(self.nodes)
        self.transmitted = 0
        self._plan(self.t)

    # --- planning --------------------------------------------------------------------
    def _plan(self, t: float) -> None:
        """Predict passes, plan contacts and tabulate the Sun for a day from `t`."""
        start = datetime.fromtimestamp(t, UTC) - timedelta(minutes=30)
        end = start + timedelta(hours=PLAN_HOURS + 0.5)
        if self.gate and self._given is not None:
            self.schedule = ContactSchedule([p for p in self._given if p.scheduled is not False])
        elif self.gate:
            prediction = predict(self.satellites, self.stations, start, end, workers=1)
            self.schedule = ContactSchedule(plan_contacts(prediction.passes, self.stations))
        self._sun_t0 = start.timestamp()
        self._sun = sun_teme(start, 0.0, (end - start).total_seconds() + 600.0)
        self._window_end = end.timestamp() - 1800.0

    def contacts(self) -> list[Pass]:
        """Every scheduled contact of the current planning window, by AOS."""
        spans = [span for spans in self.schedule._by_node.values() for span in spans]
        return [p for _, _, p in sorted(spans, key=lambda s: s[0])]

    # --- time ------------------------------------------------------------------------
    def advance(self, until_s: float) -> tuple[list[Transmission], list[ContactChange]]:
        """Step every node one second at a time up to `until_s` (not beyond); return the
        packets sent and the contacts that began or ended, in time order."""
        sent: list[Transmission] = []
        changes: list[ContactChange] = []
        while self.t + 1.0 <= until_s:
            self.t += 1.0
            self._step(self.t, sent, changes)
        return sent, changes

    def _step(self, t: float, sent: list[Transmission], changes: list[ContactChange]) -> None:
        if t >= self._window_end:
            self._plan(t)
        while self._faults and self.start_s + self._faults[0].at_s <= t:
            f = self._faults.pop(0)
            self.nodes[f.node].inject(f.fault, t, f.duration_s)
        r_teme, lit = self._geometry(t)
        r_ecef: np.ndarray | None = None
        for i, name in enumerate(self._names):
            node = self.nodes[name]
            contact: Contact | None
            if self.gate:
                current = self.schedule.at(name, t)
                before = self._in_contact[name]
                if current is not before:
                    if not _same_contact(current, before):
                        if before is not None:
                            changes.append(ContactChange(name, before.station, "los", t, before))
                        if current is not None:
                            changes.append(ContactChange(name, current.station, "aos", t, current))
                    self._in_contact[name] = current
                if current is None:
                    contact = None
                else:
                    if r_ecef is None:
                        r_ecef = self._ecef(t, r_teme)
                    range_km = float(np.linalg.norm(r_ecef[i] - self._station_km[current.station]))
                    contact = Contact(current.station, range_km)
            else:
                contact = Contact("lab", LAB_RANGE_KM)
            node.step(t, bool(lit[i]), contact)
            packets = node.take_packets()
            sent.extend(Transmission(name, t, raw) for raw in packets)
            self.transmitted += len(packets)

    def _geometry(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        jd = 2440587.5 + t / DAY_S
        whole = np.array([np.floor(jd)])
        errors, r, _ = self._satrecs.sgp4(whole, np.array([jd - whole[0]]))
        r = r[:, 0, :]
        assert self._sun is not None
        times, positions = self._sun
        rel = t - self._sun_t0
        sun = np.array([np.interp(rel, times, positions[:, k]) for k in range(3)])
        d = sun[None, :] - r
        along = -np.sum(r * d, axis=-1) / np.sum(d * d, axis=-1)
        closest = r + np.clip(along, 0.0, 1.0)[:, None] * d
        shadow = (along > 0) & (np.linalg.norm(closest, axis=-1) < EARTH_RADIUS_KM)
        lit = ~shadow & (errors[:, 0] == 0)
        return r, lit

    def _ecef(self, t: float, r_teme: np.ndarray) -> np.ndarray:
        theta, rate = gmst1982(2440587.5 + t / DAY_S)
        ecef, _ = teme_to_ecef(r_teme, np.zeros_like(r_teme), theta, rate)
        return ecef

    # --- the uplink ------------------------------------------------------------------
    def contact_of(self, node: str) -> Pass | None:
        """The contact `node` is in now (None when ungated: always reachable)."""
        return self._in_contact.get(node) if self.gate else None

    def reachable(self, node: str) -> bool:
        """A command sent now reaches `node`: ungated, or in a contact (before the first
        simulated second, the contact plan says: a fleet may start mid-pass)."""
        if not self.gate or self._in_contact.get(node) is not None:
            return True
        return self.t == self.start_s and self.schedule.at(node, self.t) is not None

    def command(self, node: str, raw: bytes) -> None:
        """Deliver a command packet to `node` now. Raises SimError for an unknown node and
        NotInContact (with the next AOS) when no station of the plan sees it."""
        target = self.nodes.get(node)
        if target is None:
            raise SimError(
                f"no simulated node {node!r}", hint="nodes: " + ", ".join(list(self.nodes)[:10])
            )
        if not self.reachable(node):
            upcoming = self.schedule.next_aos(node, self.t)
            when = (
                f"next AOS {upcoming.aos:%Y-%m-%d %H:%M:%S}Z at {upcoming.station}"
                if upcoming
                else "no contact in the planning window"
            )
            raise NotInContact(f"{node} is not in contact: nothing was sent ({when})")
        target.receive(raw, self.t)


def _same_contact(a: Pass | None, b: Pass | None) -> bool:
    """The same pass, predicted again by a later plan (to within a second)."""
    return (
        a is not None
        and b is not None
        and a.station == b.station
        and abs((a.aos - b.aos).total_seconds()) < 1.0
        and abs((a.los - b.los).total_seconds()) < 1.0
    )


def sat_satrec(sat: Satellite) -> object:
    from sgp4.api import Satrec

    return Satrec.twoline2rv(sat.line1, sat.line2)


def _mean_motion_rev_per_day(line2: str) -> float:
    return float(line2[52:63])
