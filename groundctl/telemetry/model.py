"""Values that flow through the telemetry pipeline: frames in; samples and events out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

Direction = Literal["down", "up"]


@dataclass(frozen=True, slots=True)
class Frame:
    """Bytes that crossed a link, as received or sent.

    `time_s` is the receive (or send) time, Unix seconds UTC; `node` the node the link
    says it came from or goes to.
    """

    raw: bytes
    time_s: float
    link: str
    node: str
    direction: Direction = "down"


class Sample(NamedTuple):
    """One parameter value: time (packet time when it has one, else receive time)."""

    time_s: float
    node: str
    parameter: str  # PACKET.FIELD, or a derived parameter's name
    raw: Any
    value: Any
    state: str  # nominal, yellow, red, disabled, or "" where no limits apply


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened: a node's event message, a malformed frame, a gap..."""

    time_s: float
    node: str
    source: str  # the app for node events; "ground" for what the pipeline itself noticed
    kind: str  # node-event, malformed-frame, unknown-packet, sequence-gap, ...
    severity: str  # DEBUG, INFO, WARNING, ERROR, CRITICAL
    text: str
    event_id: int | None = None
