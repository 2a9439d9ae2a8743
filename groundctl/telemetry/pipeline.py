"""The telemetry processor: a frame in; samples, events and alert changes out.

Pure and synchronous (the engine runs it and publishes what it returns): decode with the
node's mission database, track sequence counts, check limits with persistence, compute
derived parameters, turn event packets into events, and keep the alert book. A frame
that cannot be decoded is never dropped: it comes back with its reason so the archive
keeps its bytes, and an event says what was wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from groundctl.mdb.codec import Codec
from groundctl.mdb.expr import Expression, compile_expression
from groundctl.mdb.model import Limits, Mission, Packet
from groundctl.telemetry.alerts import Alert, AlertBook, AlertChange
from groundctl.telemetry.limits import LimitChecker, State
from groundctl.telemetry.model import Event, Frame, Sample
from groundctl.telemetry.sequence import SequenceTracker
from groundctl.telemetry.staleness import StalenessMonitor

_SEVERITIES = {1: "DEBUG", 2: "INFO", 3: "ERROR", 4: "CRITICAL"}


@dataclass
class Processed:
    """What one frame gave. `status` is ok, malformed, unknown (id not in the MDB) or
    no-mission (the node has no mission database); `error` says why when not ok."""

    frame: Frame
    status: str
    error: str = ""
    packet: str | None = None
    packet_id: int | None = None
    sequence_count: int | None = None
    samples: list[Sample] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    alerts: list[AlertChange] = field(default_factory=list)


class _MissionPlan:
    """Everything compiled once per mission database."""

    def __init__(self, mission: Mission) -> None:
        self.mission = mission
        self.codec = Codec(mission)
        limits: dict[str, Limits] = {}
        self.names: dict[str, list[tuple[str, str]]] = {}
        for packet in mission.packets.values():
            self.names[packet.name] = [(f.name, f"{packet.name}.{f.name}") for f in packet.fields]
            for f in packet.fields:
                if f.limits is not None:
                    limits[f"{packet.name}.{f.name}"] = f.limits
        for d in mission.derived:
            if d.limits is not None:
                limits[d.name] = d.limits
        self.limits = limits
        self.checker = LimitChecker(limits)
        self.derived: list[tuple[str, Expression]] = [
            (d.name, compile_expression(d.expression)) for d in mission.derived
        ]
        # Which derived parameters to recompute when a packet arrives.
        self.derived_by_packet: dict[str, list[tuple[str, Expression]]] = {}
        for packet in mission.packets.values():
            inputs = {f.name for f in packet.fields} | {
                f"{packet.name}.{f.name}" for f in packet.fields
            }
            self.derived_by_packet[packet.name] = [
                (name, e) for name, e in self.derived if e.names & inputs or _uses_derived(e, self)
            ]


def _uses_derived(expression: Expression, plan: _MissionPlan) -> bool:
    return any(name in expression.names for name, _ in plan.derived)


class TelemetryProcessor:
    """Turns frames into samples, events and alert changes, per node.

    `missions` maps node names to their mission database; nodes not in it use `default`
    (or get status "no-mission" when there is none).
    """

    def __init__(
        self,
        missions: Mapping[str, Mission] | None = None,
        default: Mission | None = None,
        *,
        stale_factor: float = 3.0,
        first_alert_id: int = 1,
    ) -> None:
        self._plans: dict[int, _MissionPlan] = {}
        self._node_plan: dict[str, _MissionPlan | None] = {}
        self._missions = dict(missions or {})
        self._default = default
        self.sequences = SequenceTracker()
        periods: dict[str, float] = {}
        for mission in [*self._missions.values(), *([default] if default else [])]:
            for packet in mission.packets.values():
                if packet.period_s:
                    periods[packet.name] = packet.period_s
        self.staleness = StalenessMonitor(periods, stale_factor)
        self.alerts = AlertBook(first_alert_id)
        self.env: dict[str, dict[str, Any]] = {}
        self.counters: dict[str, Counter[str]] = {}
        self._unknown_seen: set[tuple[str, int]] = set()

    def _plan(self, node: str) -> _MissionPlan | None:
        if node in self._node_plan:
            return self._node_plan[node]
        mission = self._missions.get(node, self._default)
        plan = None
        if mission is not None:
            plan = self._plans.get(id(mission))
            if plan is None:
                plan = self._plans[id(mission)] = _MissionPlan(mission)
        self._node_plan[node] = plan
        return plan

    def process(self, frame: Frame) -> Processed:
        """Decode and check one received frame. Never raises for bad bytes."""
        node = frame.node
        counts = self.counters.get(node)
        if counts is None:
            counts = self.counters[node] = Counter()
        counts["frames"] += 1
        plan = self._plan(node)
        if plan is None:
            counts["no-mission"] += 1
            return Processed(frame, "no-mission", f"no mission database for node {node}")
        decoded = plan.codec.decode(frame.raw)
        header = decoded.header
        result = Processed(
            frame,
            "ok",
            packet_id=plan.codec.packet_id(header) if header else None,
            sequence_count=header.sequence_count if header else None,
        )
        if decoded.packet is None or decoded.error:
            unknown = decoded.error.startswith("unknown id")
            result.status = "unknown" if unknown else "malformed"
            result.error = decoded.error
            counts[result.status] += 1
            pid = result.packet_id if result.packet_id is not None else -1
            if not unknown or (node, pid) not in self._unknown_seen:
                self._unknown_seen.add((node, pid))
                result.events.append(
                    Event(
                        frame.time_s,
                        node,
                        "ground",
                        "unknown-packet" if unknown else "malformed-frame",
                        "WARNING",
                        f"{frame.link}: {len(frame.raw)}-byte frame not decoded: {decoded.error}",
                    )
                )
            if unknown and header is not None:
                self._track_sequence(result, node, header.sequence_count, frame.time_s)
            return result

        packet = decoded.packet
        result.packet = packet.name
        time_s = decoded.time_s if decoded.time_s is not None else frame.time_s
        assert header is not None
        self._track_sequence(result, node, header.sequence_count, time_s)
        recovered = self.staleness.seen(node, packet.name, frame.time_s)
        if recovered is not None:
            self._alert(result, node, f"{packet.name} (stale)", "fresh", None, frame.time_s)

        env = self.env.get(node)
        if env is None:
            env = self.env[node] = {}
        limited = plan.limits
        checker = plan.checker
        samples = result.samples
        values = decoded.values
        raws = decoded.raw_values
        for short, full in plan.names[packet.name]:
            value = values[short]
            env[full] = value
            env[short] = value
        for short, full in plan.names[packet.name]:
            state = ""
            if full in limited:
                state, change = checker.check(node, full, values[short], time_s, env)
                if change is not None:
                    self._alert(result, node, full, change.new, change.value, time_s)
            samples.append(Sample(time_s, node, full, raws[short], values[short], state))
        for name, expression in plan.derived_by_packet[packet.name]:
            try:
                value = expression.evaluate(env)
            except KeyError:
                continue  # an input has not arrived yet
            except (ArithmeticError, TypeError, ValueError) as error:
                result.events.append(
                    Event(time_s, node, "ground", "derived-error", "WARNING", f"{name}: {error}")
                )
                continue
            env[name] = value
            state = ""
            if name in limited:
                state, change = checker.check(node, name, value, time_s, env)
                if change is not None:
                    self._alert(result, node, name, change.new, value, time_s)
            samples.append(Sample(time_s, node, name, value, value, state))
        counts["samples"] += len(samples)
        if packet.event is not None:
            result.events.append(self._node_event(packet, values, node, time_s))
        return result

    def restore_alerts(self, alerts: list[Alert]) -> None:
        """Carry on from an earlier run: its open alerts, and the states they stand for."""
        self.alerts.restore(alerts)
        for alert in alerts:
            if not alert.active:
                continue
            if alert.severity == "stale" and alert.parameter.endswith(" (stale)"):
                packet = alert.parameter.removesuffix(" (stale)")
                self.staleness.assume_stale(alert.node, packet, alert.raised_s)
                continue
            plan = self._plan(alert.node)
            if plan is not None and alert.parameter in plan.limits:
                state: State = "red" if alert.severity == "red" else "yellow"
                plan.checker.assume(alert.node, alert.parameter, state)

    def contact_lost(self, node: str) -> None:
        """LOS: the node's silence until its next contact is expected, not stale."""
        self.staleness.pause(node)

    def contact_gained(self, node: str, time_s: float) -> None:
        """AOS: the node's streams are expected again from `time_s`."""
        self.staleness.expect(node, time_s)

    def tick(self, now_s: float) -> list[AlertChange]:
        """Check staleness at `now_s`; return the alerts it raised."""
        changes = []
        for stale in self.staleness.check(now_s):
            change = self.alerts.state_changed(
                stale.node, f"{stale.packet} (stale)", "stale", stale.last_seen_s, stale.time_s
            )
            if change is not None:
                changes.append(change)
        return changes

    def _alert(
        self, result: Processed, node: str, parameter: str, state: str, value: Any, time_s: float
    ) -> None:
        change = self.alerts.state_changed(node, parameter, state, value, time_s)
        if change is not None:
            result.alerts.append(change)

    def _track_sequence(self, result: Processed, node: str, count: int, time_s: float) -> None:
        if result.packet_id is None:
            return
        problem = self.sequences.observe(node, result.packet_id, count)
        if problem is not None:
            result.events.append(
                Event(
                    time_s,
                    node,
                    "ground",
                    f"sequence-{problem.kind}",
                    "WARNING",
                    problem.describe(),
                )
            )

    def _node_event(
        self, packet: Packet, values: Mapping[str, Any], node: str, time_s: float
    ) -> Event:
        mapping = packet.event
        assert mapping is not None
        severity = values[mapping.severity]
        if isinstance(severity, int):
            severity = mapping.severities.get(severity) or _SEVERITIES.get(severity, str(severity))
        event_id = values[mapping.event_id]
        return Event(
            time_s,
            node,
            str(values[mapping.app]),
            "node-event",
            str(severity),
            str(values[mapping.text]),
            int(event_id) if isinstance(event_id, int) else None,
        )
