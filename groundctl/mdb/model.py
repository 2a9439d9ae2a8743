"""The mission database model: packets, fields, calibrations, limits, commands.

Frozen values built by `groundctl.mdb.loader` from a TOML file (docs/mdb.md). Offsets
are in bits from the start of the packet (the loader accepts bytes and bits); types are
`u1`..`u64`, `i1`..`i64`, `f32`, `f64`, `str` (fixed length, NUL-padded) and `bytes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

ByteOrder = Literal["big", "little"]


def int_range(kind: str, bits: int) -> tuple[int, int]:
    """The smallest and largest integer a `u`/`i` field of `bits` holds."""
    if kind == "i":
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


@dataclass(frozen=True)
class Polynomial:
    """eng = c0 + c1*raw + c2*raw**2 + ..."""

    coefficients: tuple[float, ...]


@dataclass(frozen=True)
class Table:
    """Piecewise-linear interpolation through (raw, eng) points; raw strictly increasing.

    Outside the table the end segments are extrapolated.
    """

    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Enumeration:
    """Raw integer -> state name. A raw value with no state decodes to 'UNKNOWN(<raw>)'."""

    states: Mapping[int, str]


Calibration = Polynomial | Table | Enumeration


@dataclass(frozen=True)
class Limits:
    """Yellow and red bands on the engineering value (numbers), with persistence.

    A value outside `red` is red; else outside `yellow` is yellow; else nominal. A
    state only takes effect after `persistence` consecutive samples in it. `when` is an
    expression over other parameters of the same node that must be true for the limits to
    apply (e.g. `POWER_MODE != "SAFE"`).
    """

    yellow_low: float | None = None
    yellow_high: float | None = None
    red_low: float | None = None
    red_high: float | None = None
    persistence: int = 1
    when: str | None = None
    # For enumerated parameters: states that are yellow / red.
    yellow_states: tuple[str, ...] = ()
    red_states: tuple[str, ...] = ()


@dataclass(frozen=True)
class Field:
    """One field of a packet: where it is, how it is encoded, what it means."""

    name: str
    bit_offset: int
    bits: int
    kind: Literal["u", "i", "f", "str", "bytes"]
    byte_order: ByteOrder = "big"
    unit: str = ""
    description: str = ""
    calibration: Calibration | None = None
    limits: Limits | None = None

    @property
    def type_name(self) -> str:
        if self.kind in ("str", "bytes"):
            return f"{self.kind}{self.bits // 8}"
        return f"{self.kind}{self.bits}"

    @property
    def end_bit(self) -> int:
        return self.bit_offset + self.bits


@dataclass(frozen=True)
class EventMapping:
    """Which fields of a packet make it an event: app, id, severity and text."""

    app: str
    event_id: str
    severity: str
    text: str
    severities: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Packet:
    """A telemetry packet type, recognised by its id (APID or message id)."""

    name: str
    id: int
    fields: tuple[Field, ...]
    period_s: float | None = None
    description: str = ""
    min_length: int = 0  # bytes: every field must fit
    length: int = 0  # bytes: the declared size (at least min_length), what encoders build
    event: EventMapping | None = None
    # "crc16-ccitt": the last two bytes are a CRC-16/CCITT-FALSE of all before (ECSS PUS).
    crc: Literal["none", "crc16-ccitt"] = "none"

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


@dataclass(frozen=True)
class Derived:
    """A parameter computed from others of the same node by a safe expression."""

    name: str
    expression: str
    unit: str = ""
    description: str = ""
    limits: Limits | None = None


@dataclass(frozen=True)
class Argument:
    """A command argument."""

    name: str
    kind: Literal["u", "i", "f", "str", "bytes"]
    bits: int
    byte_order: ByteOrder = "little"
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    states: Mapping[str, int] = field(default_factory=dict)
    default: int | float | str | None = None
    description: str = ""


@dataclass(frozen=True)
class Verification:
    """How a command's stages are verified from telemetry and events.

    `accepted`/`failed`/`completed` are conditions: `PACKET.FIELD += N` (a counter that
    must increase by N after release), an expression, or `event APP ID` (an event from
    that app with that id).
    """

    accepted: tuple[str, ...] = ()
    completed: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    timeout_s: float = 10.0


@dataclass(frozen=True)
class Command:
    """A command: its id, function code, arguments, hazard and verification."""

    name: str
    id: int
    function_code: int
    arguments: tuple[Argument, ...] = ()
    hazardous: bool = False
    description: str = ""
    verification: Verification = field(default_factory=Verification)


@dataclass(frozen=True)
class TimeFormat:
    """Where a packet's time is: CUC seconds and subseconds in the secondary header."""

    seconds: Field
    subseconds: Field | None = None
    subsecond_scale: float = 1.0 / 65536
    epoch_unix_s: float = 0.0


@dataclass(frozen=True)
class Mission:
    """A whole mission database."""

    name: str
    id_kind: Literal["apid", "msgid"]
    packets: Mapping[int, Packet]
    commands: Mapping[str, Command]
    derived: tuple[Derived, ...] = ()
    time: TimeFormat | None = None
    checksum: Literal["none", "cfs-xor"] = "none"
    description: str = ""
    source: str = ""

    def packet_named(self, name: str) -> Packet:
        for p in self.packets.values():
            if p.name == name:
                return p
        raise KeyError(name)
