"""What the console shows, kept up to date from the bus, read by the UI a few times a second.

The engine runs in a thread of its own (groundctl.ui.backend); its bus messages are
applied here under a lock, and the UI takes a `Snapshot` of what changed since its last
look. Samples are coalesced (one value per node and parameter), so a fleet of 100 nodes at
speed 60 costs the UI one update per parameter per look, however many packets arrived.
Station tracking updates are kept as the latest per station (`StationView`), with the
target last sent in the pass. No Textual here: this is plain data, tested on its own.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from groundctl.bus import (
    AlertMessage,
    CommandMessage,
    EventMessage,
    FrameMessage,
    LinkStateMessage,
    SampleMessage,
    StationMessage,
)
from groundctl.operations import command_ref
from groundctl.telemetry.alerts import Alert
from groundctl.telemetry.model import Event

MAX_EVENTS = 2000
STATION_RESET_PHASES = ("idle", "parking")  # a pass is over: its target and problem go


@dataclass(frozen=True)
class StationView:
    """A station's antenna and radio as the console shows them: the latest update, the
    last position commanded in this pass (an update that sends none keeps it) and when,
    and the last problem reported in it (`detail` of an update; "parked" too).

    Both go when the phase turns idle or parking, or the node changes; the problem goes
    too when a pass begins after parking (the parking update's own detail is kept while
    parked)."""

    message: StationMessage
    target: tuple[float, float] | None = None  # (az, el) as sent to the rotator
    target_s: float | None = None
    problem: str = ""
    problem_s: float | None = None


@dataclass(frozen=True)
class Value:
    """A parameter's latest value: engineering value, raw, limit state, packet time, and
    the engine-clock time it was received."""

    value: Any
    raw: Any
    state: str
    time_s: float
    received_s: float


@dataclass
class CommandView:
    """A command as the console shows it: text, current stage, every stage so far.

    `origin` names the console that sent it ('' for this one); `ref` is how the console
    names it (`12`, or `ops-2#12` for another console's: its ids may collide with ours)."""

    command_id: int
    node: str
    text: str
    stage: str
    detail: str
    time_s: float
    release_at: float | None = None
    stages: list[tuple[str, float, str]] = field(default_factory=list)
    origin: str = ""

    @property
    def ref(self) -> str:
        return command_ref(self.origin, self.command_id)

    def copy(self) -> CommandView:
        """A copy with its own list of stages."""
        return replace(self, stages=list(self.stages))


@dataclass(frozen=True)
class Snapshot:
    """What changed since the last look (values, alerts, commands) and what is new
    (events), plus the current clock, links and counters."""

    clock_s: float
    values: dict[tuple[str, str], Value]
    events: list[tuple[int, Event]]
    alerts: dict[int, Alert]
    new_red: list[Alert]
    commands: dict[str, CommandView]  # by ref: `12`, or `ops-2#12` (CommandView.ref)
    links: dict[str, str]
    frames: int
    lag_s: float
    stations: dict[str, StationView] = field(default_factory=dict)


class ConsoleState:
    """Thread-safe: `apply` from the engine's thread, `take` from the UI's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[tuple[str, str], Value] = {}
        self._changed: set[tuple[str, str]] = set()
        self.events: deque[tuple[int, Event]] = deque(maxlen=MAX_EVENTS)
        self._event_seq = 0
        self._taken_event_seq = 0
        self.alerts: dict[int, Alert] = {}
        self._changed_alerts: set[int] = set()
        self._new_red: list[Alert] = []
        self.commands: dict[str, CommandView] = {}  # by ref (CommandView.ref)
        self._changed_commands: set[str] = set()
        self.links: dict[str, str] = {}
        self.stations: dict[str, StationView] = {}
        self._changed_stations: set[str] = set()
        self.clock_s = 0.0
        self.frames = 0
        self.lag_s = 0.0
        self.nodes: set[str] = set()

    # --- from the engine's thread ----------------------------------------------------------
    def apply(self, message: Any, now_s: float) -> None:
        with self._lock:
            self.clock_s = now_s
            if isinstance(message, SampleMessage):
                s = message.sample
                key = (s.node, s.parameter)
                self.values[key] = Value(s.value, s.raw, s.state, s.time_s, now_s)
                self._changed.add(key)
                self.nodes.add(s.node)
            elif isinstance(message, EventMessage):
                self._event_seq += 1
                self.events.append((self._event_seq, message.event))
            elif isinstance(message, AlertMessage):
                alert = message.change.alert
                self.alerts[alert.id] = alert
                self._changed_alerts.add(alert.id)
                if message.change.action in ("raised", "escalated") and alert.severity == "red":
                    self._new_red.append(alert)
            elif isinstance(message, CommandMessage):
                ref = command_ref(message.origin, message.command_id)
                view = self.commands.get(ref)
                if view is None:
                    view = CommandView(
                        message.command_id,
                        message.node,
                        message.text,
                        message.stage,
                        message.detail,
                        message.time_s,
                        origin=message.origin,
                    )
                    self.commands[ref] = view
                view.stage, view.detail, view.time_s = message.stage, message.detail, message.time_s
                if message.text:
                    view.text = message.text
                if message.release_at is not None:
                    view.release_at = message.release_at
                view.stages.append((message.stage, message.time_s, message.detail))
                self._changed_commands.add(ref)
            elif isinstance(message, LinkStateMessage):
                self.links[message.link] = message.new
            elif isinstance(message, FrameMessage):
                self.frames += 1
                self.nodes.add(message.node)
            elif isinstance(message, StationMessage):
                self.stations[message.station] = station_view(
                    self.stations.get(message.station), message
                )
                self._changed_stations.add(message.station)

    def set_clock(self, now_s: float, lag_s: float = 0.0) -> None:
        with self._lock:
            self.clock_s = now_s
            self.lag_s = lag_s

    def node_names(self) -> set[str]:
        """The nodes heard from so far (a copy, safe from any thread)."""
        with self._lock:
            return set(self.nodes)

    def note(self, event: Event) -> None:
        """An event from the console itself (an operator action, an error)."""
        with self._lock:
            self._event_seq += 1
            self.events.append((self._event_seq, event))

    # --- from the UI's thread ----------------------------------------------------------------
    def take(self) -> Snapshot:
        """What changed since the last `take` (and everything current)."""
        with self._lock:
            values = {k: self.values[k] for k in self._changed}
            self._changed.clear()
            events = [e for e in self.events if e[0] > self._taken_event_seq]
            self._taken_event_seq = self._event_seq
            alerts = {i: self.alerts[i] for i in self._changed_alerts}
            self._changed_alerts.clear()
            new_red, self._new_red = self._new_red, []
            commands = {
                ref: v.copy() for ref, v in self.commands.items() if ref in self._changed_commands
            }
            self._changed_commands.clear()
            stations = {name: self.stations[name] for name in self._changed_stations}
            self._changed_stations.clear()
            return Snapshot(
                self.clock_s,
                values,
                events,
                alerts,
                new_red,
                commands,
                dict(self.links),
                self.frames,
                self.lag_s,
                stations,
            )

    def everything(self) -> Snapshot:
        """Everything current, as if nothing had been taken yet (a pane opened late)."""
        with self._lock:
            return Snapshot(
                self.clock_s,
                dict(self.values),
                list(self.events),
                dict(self.alerts),
                [],
                {ref: v.copy() for ref, v in self.commands.items()},
                dict(self.links),
                self.frames,
                self.lag_s,
                dict(self.stations),
            )


def station_view(before: StationView | None, message: StationMessage) -> StationView:
    """A station's view after `message`: its last target and problem carried over from
    `before` while the pass goes on (same node, phase neither idle nor parking)."""
    target = target_s = problem_s = None
    problem = ""
    ended = message.phase in STATION_RESET_PHASES
    if before is not None and before.message.node == message.node:
        if not ended:
            target, target_s = before.target, before.target_s
        if ended == (before.message.phase in STATION_RESET_PHASES):
            # the same pass goes on, or the station stays parked (with what parking said)
            problem, problem_s = before.problem, before.problem_s
    if message.target_az is not None and message.target_el is not None:
        target, target_s = (message.target_az, message.target_el), message.time_s
    if message.detail:
        problem, problem_s = message.detail, message.time_s
    return StationView(message, target, target_s, problem, problem_s)
