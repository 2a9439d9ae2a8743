"""The simulated node's wire format, written the way flight software writes it.

Packets are packed with fixed `struct` layouts, one per packet, as a flight program's
C structures would be; nothing here reads the mission database. The layouts are those of
`data/missions/odc-node.toml`, and the tests decode what this module builds with the
mission database's own decoder, so the two are checked against each other.

Telemetry: CCSDS primary header (version 0, telemetry, secondary header present), CUC
time (u32 seconds and u16 1/65536 subseconds since 2000-01-01T00:00:00Z), payload.
Commands: one APID (0x180), byte 6 function code, byte 7 XOR checksum, arguments
big-endian from byte 8. A node with a key takes only authenticated commands: the packet
ends with a 40-byte security trailer, a u64 big-endian counter and the HMAC-SHA256 of
everything before the MAC with byte 7 set to 0 (the length field and the checksum cover
the trailer). The check is written here from that description alone, not with the
ground's signing code, so that tests check one against the other.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import struct
from dataclasses import dataclass

EPOCH_2000_UNIX_S = 946_684_800.0

POWER_HK, THERMAL_HK, COMPUTE_HK, COMMS_HK, ATTITUDE_HK, EVENT = (
    0x101,
    0x102,
    0x103,
    0x104,
    0x105,
    0x10F,
)
COMMAND_WORD0 = 0x1980

# payload layouts (big-endian), after the 12 header bytes
_PAYLOAD = {
    POWER_HK: struct.Struct(">HHHHhBBHHB"),
    THERMAL_HK: struct.Struct(">HHHHBB"),
    COMPUTE_HK: struct.Struct(">HHIIHHIIQ"),
    COMMS_HK: struct.Struct(">hIQBBHHH"),
    ATTITUDE_HK: struct.Struct(">fffffffBB"),
    EVENT: struct.Struct(">16sHBB96s"),
}
_HEADER = struct.Struct(">HHHIH")
HEADER_BYTES = _HEADER.size  # 12

# Periods in seconds of the housekeeping packets (the mission database's period_s).
PERIOD_S = {POWER_HK: 1, THERMAL_HK: 2, COMPUTE_HK: 2, COMMS_HK: 1, ATTITUDE_HK: 1}

SEVERITY = {"DEBUG": 1, "INFO": 2, "WARNING": 3, "ERROR": 4, "CRITICAL": 5}


def packet_length(apid: int) -> int:
    return HEADER_BYTES + _PAYLOAD[apid].size


def pack(apid: int, sequence_count: int, time_s: float, *values: object) -> bytes:
    """One telemetry packet: header with time `time_s` (Unix seconds), then `values`
    packed with the packet's layout."""
    payload = _PAYLOAD[apid].pack(*values)
    t = time_s - EPOCH_2000_UNIX_S
    seconds = math.floor(t)
    sub = min(int((t - seconds) * 65536.0 + 0.5), 0xFFFF)
    header = _HEADER.pack(
        0x0800 | apid,
        0xC000 | (sequence_count & 0x3FFF),
        HEADER_BYTES + len(payload) - 7,
        seconds & 0xFFFFFFFF,
        sub,
    )
    return header + payload


def pack_event(
    sequence_count: int, time_s: float, app: str, event_id: int, severity: str, text: str
) -> bytes:
    """An EVENT packet (app and text NUL-padded, cut to their fields)."""
    return pack(
        EVENT,
        sequence_count,
        time_s,
        app.encode()[:16],
        event_id,
        SEVERITY[severity],
        0,
        text.encode()[:96],
    )


# --- commands ----------------------------------------------------------------------

# Function code -> (name, argument layout after byte 8)
COMMANDS: dict[int, tuple[str, struct.Struct]] = {
    0: ("NOOP", struct.Struct(">")),
    1: ("RESET_COUNTERS", struct.Struct(">")),
    2: ("SET_POWER_MODE", struct.Struct(">B")),
    3: ("SUBMIT_JOB", struct.Struct(">IIB")),
    4: ("CANCEL_JOB", struct.Struct(">I")),
    5: ("SET_THROTTLE", struct.Struct(">B")),
    6: ("START_DOWNLINK", struct.Struct(">Q")),
    7: ("STOP_DOWNLINK", struct.Struct(">")),
    8: ("REBOOT", struct.Struct(">")),
    9: ("SAFE_MODE", struct.Struct(">")),
    100: ("INJECT_FAULT", struct.Struct(">BI")),
    101: ("CLEAR_FAULTS", struct.Struct(">")),
}


# The security trailer of an authenticated command: counter u64, HMAC-SHA256.
_COUNTER = struct.Struct(">Q")
MAC_BYTES = 32
TRAILER_BYTES = _COUNTER.size + MAC_BYTES  # 40


@dataclass(frozen=True)
class CommandPacket:
    """A command as the node parsed it, or why it was rejected (`error`, with `event_id`
    the CMD event it raises). `auth_failed` marks a rejection by the authentication
    check; `counter` is the anti-replay counter of an authenticated command (0 when the
    command was not authenticated)."""

    function_code: int | None
    name: str = ""
    arguments: tuple[int, ...] = ()
    error: str = ""
    event_id: int = 0
    auth_failed: bool = False
    counter: int = 0


@dataclass(frozen=True)
class AuthCheck:
    """The outcome of checking a command's security trailer: `counter` when it is
    authentic and new, else `error` and the CMD event it raises (8: no trailer or a bad
    MAC, 9: a counter not above the last one accepted)."""

    counter: int = 0
    error: str = ""
    event_id: int = 0

    @property
    def ok(self) -> bool:
        return not self.error


def check_auth(raw: bytes, key: bytes, last_counter: int) -> AuthCheck:
    """Check the security trailer of a command packet whose length and checksum are
    already known to be right: present, the MAC (over everything before it, byte 7
    zeroed) right for `key`, and the counter above `last_counter`."""
    if len(raw) < 8 + TRAILER_BYTES:
        return AuthCheck(error="no security trailer", event_id=8)
    signed = bytearray(raw[:-MAC_BYTES])
    signed[7] = 0
    expected = hmac.new(key, bytes(signed), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, raw[-MAC_BYTES:]):
        return AuthCheck(error="bad MAC", event_id=8)
    (counter,) = _COUNTER.unpack_from(raw, len(raw) - TRAILER_BYTES)
    if counter <= last_counter:
        return AuthCheck(
            error=f"counter {counter} is not above {last_counter} (replayed or old)",
            event_id=9,
        )
    return AuthCheck(counter=counter)


def parse_command(raw: bytes, *, key: bytes | None = None, last_counter: int = 0) -> CommandPacket:
    """Check and unpack a command packet as the node's command ingest does.

    Rejections: event CMD 6 (length: header or datagram), CMD 3 (checksum), CMD 4
    (function code unknown or arguments of the wrong size). With a `key`, the security
    trailer is checked after the length and checksum and before anything else
    (`check_auth`: CMD 8 or 9, with `auth_failed` set); the arguments then end where
    the trailer begins.
    """
    if len(raw) < 8:
        return CommandPacket(None, error=f"command of {len(raw)} bytes is too short", event_id=6)
    word0, _, length_field = struct.unpack_from(">HHH", raw)
    if word0 != COMMAND_WORD0:
        return CommandPacket(None, error=f"not a command for this node (0x{word0:04X})", event_id=6)
    if length_field + 7 != len(raw):
        return CommandPacket(
            None,
            error=f"length field says {length_field + 7} bytes, {len(raw)} received",
            event_id=6,
        )
    x = 0xFF
    for b in raw:
        x ^= b
    fc = raw[6] & 0x7F
    if x != 0:
        return CommandPacket(fc, error="bad checksum", event_id=3)
    end = len(raw)
    counter = 0
    if key is not None:
        auth = check_auth(raw, key, last_counter)
        if not auth.ok:
            return CommandPacket(fc, error=auth.error, event_id=auth.event_id, auth_failed=True)
        counter = auth.counter
        end -= TRAILER_BYTES
    entry = COMMANDS.get(fc)
    if entry is None:
        return CommandPacket(fc, error=f"invalid function code {fc}", event_id=4, counter=counter)
    name, layout = entry
    if end - 8 != layout.size:
        return CommandPacket(
            fc,
            name,
            error=f"{name}: {end - 8} argument bytes, expected {layout.size}",
            event_id=4,
            counter=counter,
        )
    return CommandPacket(fc, name, tuple(layout.unpack_from(raw, 8)), counter=counter)


def build_command(function_code: int, *arguments: int) -> bytes:
    """A command packet as a ground system would build it (for the simulator's own
    tests and tools; groundctl's commanding builds commands from the mission database)."""
    _, layout = COMMANDS[function_code]
    body = layout.pack(*arguments)
    total = 8 + len(body)
    buf = bytearray(struct.pack(">HHHBB", COMMAND_WORD0, 0xC000, total - 7, function_code, 0))
    buf += body
    x = 0xFF
    for b in buf:
        x ^= b
    buf[7] = x
    return bytes(buf)
