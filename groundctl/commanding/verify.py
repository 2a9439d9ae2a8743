"""Follow a sent command through its verification stages, from telemetry and events.

A command's stages: queued (waiting for a contact or a time tag), released (taken from
the queue for sending), sent (the link took the bytes), then accepted, completed, and
failed or timeout. The mission database gives each command's rules (`verify` in
docs/mdb.md), each a condition:

- `PACKET.FIELD += N`: the counter rose by N (modulo its width) from its value when the
  command was sent: the last value received before sending is the baseline;
- `event APP ID`: an event from that app with that id arrived after sending;
- an expression over the node's parameters (`POWER_HK.POWER_MODE == 'SAFE'`), evaluated
  when a packet it reads arrives after sending, never on values from before.

Any `failed` condition fails the command (the node's ERROR events since sending are in
the detail, e.g. cFS's "Invalid ground command code"). It is accepted when an `accepted`
condition holds, and completed when a `completed` condition holds too, in either order
(an event often arrives before the housekeeping packet that counts the command). A
command not completed (or not accepted, when it has no completion rule) within
`timeout_s` of being sent times out. A command with no rules is done once sent.

Pure: fed samples, events and the time; returns the stage changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from groundctl.mdb.expr import Expression, ExpressionError, compile_expression
from groundctl.mdb.model import Mission, Verification
from groundctl.telemetry.model import Event, Sample

_COUNTER = re.compile(r"^\s*([A-Za-z_]\w*)\.([A-Za-z_]\w*)\s*\+=\s*(\d+)\s*$")
_EVENT = re.compile(r"^\s*event\s+(\S+)\s+(\d+)\s*$")

FAIL_GRACE_S = 2.0  # how long a failure shown by a counter waits for the node's ERROR event

STAGES = ("queued", "released", "sent", "accepted", "completed", "failed", "timeout", "cancelled")
FINAL = frozenset({"completed", "failed", "timeout", "cancelled"})


def counter_of(condition: str) -> str | None:
    """`PACKET.FIELD` of a counter condition (`PACKET.FIELD += N`), else None."""
    match = _COUNTER.match(condition)
    return f"{match.group(1)}.{match.group(2)}" if match else None


@dataclass(frozen=True)
class StageChange:
    """A command reached `stage` at `time_s`; `detail` says what showed it."""

    stage: str
    time_s: float
    detail: str = ""


@dataclass
class _Condition:
    text: str
    counter: str = ""  # PACKET.FIELD
    step: int = 0
    modulus: int = 0
    baseline: int | None = None
    event: tuple[str, int] | None = None
    expression: Expression | None = None
    met_s: float | None = None
    met_detail: str = ""

    @property
    def packets(self) -> set[str]:
        if self.counter:
            return {self.counter.split(".", 1)[0]}
        if self.expression is not None:
            return {n.split(".", 1)[0] for n in self.expression.names if "." in n}
        return set()


def _conditions(
    texts: Iterable[str], mission: Mission, latest: Mapping[str, Any]
) -> list[_Condition]:
    out = []
    for text in texts:
        counter = _COUNTER.match(text)
        if counter:
            name = f"{counter.group(1)}.{counter.group(2)}"
            bits = mission.packet_named(counter.group(1)).field(counter.group(2)).bits
            base = latest.get(name)
            out.append(
                _Condition(
                    text,
                    counter=name,
                    step=int(counter.group(3)),
                    modulus=1 << bits,
                    baseline=int(base) if isinstance(base, int | float) else None,
                )
            )
            continue
        event = _EVENT.match(text)
        if event:
            out.append(_Condition(text, event=(event.group(1), int(event.group(2)))))
            continue
        try:
            out.append(_Condition(text, expression=compile_expression(text)))
        except ExpressionError:  # the loader checked it; keep going without it
            continue
    return out


@dataclass
class Verifier:
    """The verification of one command sent at `sent_s` to `node`.

    `latest_raw` holds the node's latest raw values by `PACKET.FIELD` when it was sent
    (the counters' baselines); `latest_values` its latest engineering values (names as
    given and unqualified), for expressions. Feed `samples()` and `event()` with what the
    node sends afterwards and `tick()` with the clock; each returns new stage changes.
    """

    node: str
    verification: Verification
    mission: Mission
    sent_s: float
    latest_raw: Mapping[str, Any]
    latest_values: Mapping[str, Any] = field(default_factory=dict)
    stage: str = "sent"
    done: bool = False
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._failing: _Condition | None = None
        self._accepted_s = self.sent_s
        v = self.verification
        self.accepted = _conditions(v.accepted, self.mission, self.latest_raw)
        self.completed = _conditions(v.completed, self.mission, self.latest_raw)
        self.failed = _conditions(v.failed, self.mission, self.latest_raw)
        self.env: dict[str, Any] = dict(self.latest_values)
        self.deadline_s = self.sent_s + v.timeout_s
        if not (self.accepted or self.completed or self.failed):
            self.done = True  # nothing to verify: done once sent

    @property
    def has_rules(self) -> bool:
        return bool(self.accepted or self.completed or self.failed)

    def missing_baselines(self) -> list[str]:
        """Counters whose value before sending is unknown (they cannot be verified)."""
        return [
            c.counter
            for c in (*self.accepted, *self.completed, *self.failed)
            if c.counter and c.baseline is None
        ]

    # --- inputs --------------------------------------------------------------------------
    def samples(self, samples: Iterable[Sample], time_s: float) -> list[StageChange]:
        """One decoded packet's samples from this node, received at `time_s`."""
        if self.done:
            return []
        if time_s >= self.deadline_s:
            return self.tick(time_s)  # too late to count
        packets: set[str] = set()
        for s in samples:
            self.env[s.parameter] = s.value
            short = s.parameter.rsplit(".", 1)[-1]
            self.env[short] = s.value
            packets.add(s.parameter.split(".", 1)[0])
            for c in (*self.accepted, *self.completed, *self.failed):
                if c.met_s is None and c.counter == s.parameter:
                    self._counter(c, s.raw, time_s)
        for c in (*self.accepted, *self.completed, *self.failed):
            if c.met_s is None and c.expression is not None and c.packets & packets:
                try:
                    if c.expression.evaluate(self.env):
                        c.met_s, c.met_detail = time_s, c.text
                except (KeyError, ArithmeticError, TypeError, ValueError):
                    pass
        return self._decide(time_s)

    def event(self, event: Event, time_s: float | None = None) -> list[StageChange]:
        """An event from this node (its apps' events; ground events are ignored),
        received at `time_s` (default: the event's own time)."""
        if time_s is None:
            time_s = event.time_s
        if not self.done and time_s >= self.deadline_s and self._failing is None:
            if event.severity in ("ERROR", "CRITICAL") and event.source != "ground":
                ident = f" {event.event_id}" if event.event_id is not None else ""
                self.errors.append(f"event {event.source}{ident} {event.severity}: {event.text}")
            return self.tick(time_s)  # too late to count
        if self.done or event.source == "ground":
            return []
        if event.severity in ("ERROR", "CRITICAL"):
            ident = f" {event.event_id}" if event.event_id is not None else ""
            self.errors.append(f"event {event.source}{ident} {event.severity}: {event.text}")
        for c in (*self.accepted, *self.completed, *self.failed):
            if c.met_s is None and c.event is not None:
                app, ident_ = c.event
                if event.source == app and event.event_id == ident_:
                    c.met_s = time_s
                    c.met_detail = f"{c.text}: {event.text}".strip()
        return self._decide(time_s)

    def tick(self, now_s: float) -> list[StageChange]:
        """Time out when the deadline has passed (or fail, when a failure was seen)."""
        if self.done:
            return []
        if self._failing is not None:
            return self._decide(now_s)
        if now_s < self.deadline_s:
            return []
        self.done = True
        waiting = "completion" if self.stage == "accepted" else "acceptance"
        detail = f"no {waiting} within {self.verification.timeout_s:g} s"
        missing = self.missing_baselines()
        if missing:
            detail += f" (no value of {', '.join(missing)} before sending to compare with)"
        if self.errors:
            detail += "; the node reported meanwhile: " + "; ".join(self.errors)
        self.stage = "timeout"
        return [StageChange("timeout", self.deadline_s, detail)]

    # --- deciding --------------------------------------------------------------------------
    def _counter(self, c: _Condition, raw: Any, time_s: float) -> None:
        if c.baseline is None or not isinstance(raw, int | float):
            return
        rise = (int(raw) - c.baseline) % c.modulus
        if c.step <= rise < c.modulus // 2:
            c.met_s = time_s
            c.met_detail = f"{c.counter} {c.baseline} -> {int(raw)}"

    def _decide(self, time_s: float | None = None) -> list[StageChange]:
        out: list[StageChange] = []
        failed = next((c for c in self.failed if c.met_s is not None), None)
        if failed is not None and not self.errors and failed.event is None:
            # a counter showed the failure: the node's ERROR event saying why may follow
            # in the same breath; wait for it a moment
            assert failed.met_s is not None
            if (time_s if time_s is not None else failed.met_s) < failed.met_s + FAIL_GRACE_S:
                self._failing = failed
                return out
        if failed is not None:
            self.done = True
            self.stage = "failed"
            detail = failed.met_detail
            if self.errors:
                detail += "; " + "; ".join(self.errors)
            assert failed.met_s is not None
            return [StageChange("failed", failed.met_s, detail)]
        accepted = next((c for c in self.accepted if c.met_s is not None), None)
        decidable = [c for c in self.accepted if not (c.counter and c.baseline is None)]
        if self.stage == "sent" and (accepted is not None or not decidable):
            done = next((c for c in self.completed if c.met_s is not None), None)
            if accepted is not None:
                assert accepted.met_s is not None
                self.stage = "accepted"
                self._accepted_s = accepted.met_s
                out.append(StageChange("accepted", accepted.met_s, accepted.met_detail))
                if not self.completed:
                    self.done = True
                    return out
            elif done is not None:
                # no acceptance rule that can be decided: completion implies acceptance
                assert done.met_s is not None
                self.stage = "accepted"
                why = "implied by completion"
                if self.accepted:
                    missing = ", ".join(c.counter for c in self.accepted)
                    why += f" (no value of {missing} before sending to compare with)"
                self._accepted_s = done.met_s
                out.append(StageChange("accepted", done.met_s, why))
        if self.stage == "accepted":
            done = next((c for c in self.completed if c.met_s is not None), None)
            if done is not None:
                assert done.met_s is not None
                self.stage = "completed"
                self.done = True
                when = max(done.met_s, self._accepted_s)
                out.append(StageChange("completed", when, done.met_detail))
        return out
