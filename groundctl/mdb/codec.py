"""Packet codec: CCSDS space packets <-> field values, driven by the mission database.

Decoding never raises on bad bytes: a `Decoded` carries the reason instead, so that the
pipeline can count and archive what it could not decode.
"""

from __future__ import annotations

import math
import struct
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from groundctl.mdb.model import (
    Argument,
    Calibration,
    Command,
    Enumeration,
    Field,
    Mission,
    Packet,
    Polynomial,
    Table,
    int_range,
)

PRIMARY_HEADER_BYTES = 6

Value = int | float | str | bytes


@dataclass(frozen=True)
class Header:
    """The CCSDS primary header (CCSDS 133.0-B)."""

    version: int
    type: int  # 0 telemetry, 1 command
    secondary_header: bool
    apid: int
    sequence_flags: int
    sequence_count: int
    data_length: int  # the length field: bytes after the primary header minus 1
    msgid: int  # the first 16-bit word, as cFS message id v1 uses it

    @property
    def packet_length(self) -> int:
        return PRIMARY_HEADER_BYTES + self.data_length + 1


def parse_header(raw: bytes) -> Header | None:
    """The primary header of `raw`, or None if it is shorter than 6 bytes."""
    if len(raw) < PRIMARY_HEADER_BYTES:
        return None
    word0, word1, length = struct.unpack_from(">HHH", raw)
    return Header(
        version=word0 >> 13,
        type=(word0 >> 12) & 1,
        secondary_header=bool((word0 >> 11) & 1),
        apid=word0 & 0x7FF,
        sequence_flags=word1 >> 14,
        sequence_count=word1 & 0x3FFF,
        data_length=length,
        msgid=word0,
    )


@dataclass(frozen=True)
class Decoded:
    """The outcome of decoding one packet.

    `error` is empty when the packet was recognised and every field decoded; otherwise it
    says why not ("truncated: ...", "length field says ...", "unknown id 0x...").
    `raw_values` and `values` (engineering) are keyed by field name.
    """

    header: Header | None
    packet: Packet | None
    raw_values: dict[str, Value] = field(default_factory=dict)
    values: dict[str, Value] = field(default_factory=dict)
    time_s: float | None = None  # packet time (Unix seconds) from the secondary header
    error: str = ""


Extractor = Callable[[bytes], Value]


def _extractor(f: Field) -> Extractor:
    byte, bit = divmod(f.bit_offset, 8)
    if f.kind == "str":
        n = f.bits // 8

        def text(buf: bytes, byte: int = byte, n: int = n) -> str:
            return buf[byte : byte + n].split(b"\0", 1)[0].decode("utf-8", errors="replace")

        return text
    if f.kind == "bytes":
        n = f.bits // 8
        return lambda buf, byte=byte, n=n: bytes(buf[byte : byte + n])  # type: ignore[misc]
    if bit == 0 and f.bits in (8, 16, 32, 64) and f.kind in ("u", "i", "f"):
        code = {8: "b", 16: "h", 32: "i", 64: "q"}[f.bits]
        if f.kind == "u":
            code = code.upper()
        elif f.kind == "f":
            code = {32: "f", 64: "d"}[f.bits]
        unpack = struct.Struct((">" if f.byte_order == "big" else "<") + code).unpack_from
        return lambda buf, unpack=unpack, byte=byte: unpack(buf, byte)[0]  # type: ignore[misc]
    if bit == 0 and f.bits % 8 == 0 and f.kind in ("u", "i"):
        # 24, 40, 48 or 56 bits: whole bytes in the field's own byte order.
        end = byte + f.bits // 8
        order = f.byte_order
        signed_whole = f.kind == "i"
        return lambda buf: int.from_bytes(buf[byte:end], order, signed=signed_whole)
    # A bit field: read the bytes that cover it as one big-endian integer.
    first = byte
    last = (f.bit_offset + f.bits + 7) // 8
    shift = last * 8 - (f.bit_offset + f.bits)
    mask = (1 << f.bits) - 1
    signed = f.kind == "i"
    top = 1 << (f.bits - 1)

    def bits_of(buf: bytes) -> int:
        value = (int.from_bytes(buf[first:last], "big") >> shift) & mask
        if signed and value & top:
            value -= 1 << f.bits
        return value

    return bits_of


def calibrate(calibration: Calibration | None, raw: Value) -> Value:
    """The engineering value of `raw` under `calibration` (raw itself when None)."""
    if calibration is None or isinstance(raw, str | bytes):
        return raw
    if isinstance(calibration, Enumeration):
        return calibration.states.get(int(raw), f"UNKNOWN({int(raw)})")
    x = float(raw)
    if isinstance(calibration, Polynomial):
        result = 0.0
        for c in reversed(calibration.coefficients):
            result = result * x + c
        return result
    assert isinstance(calibration, Table)
    points = calibration.points
    xs = [p[0] for p in points]
    i = min(max(bisect_right(xs, x) - 1, 0), len(points) - 2)
    (x0, y0), (x1, y1) = points[i], points[i + 1]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


class Codec:
    """Decoders compiled once per mission: look up the packet, extract, calibrate."""

    def __init__(self, mission: Mission) -> None:
        self.mission = mission
        self._compiled: dict[int, list[tuple[str, Extractor, Calibration | None]]] = {
            pid: [(f.name, _extractor(f), f.calibration) for f in packet.fields]
            for pid, packet in mission.packets.items()
        }
        time = mission.time
        self._seconds = _extractor(time.seconds) if time else None
        self._subseconds = _extractor(time.subseconds) if time and time.subseconds else None
        self._time_end = (
            max(time.seconds.end_bit, time.subseconds.end_bit if time.subseconds else 0) // 8
            if time
            else 0
        )

    def packet_id(self, header: Header) -> int:
        return header.msgid if self.mission.id_kind == "msgid" else header.apid

    def decode(self, raw: bytes) -> Decoded:
        """Decode one space packet. Never raises: problems are in `Decoded.error`."""
        header = parse_header(raw)
        if header is None:
            return Decoded(None, None, error=f"truncated: {len(raw)} bytes, a header needs 6")
        if header.version != 0:
            return Decoded(header, None, error=f"bad version {header.version}, expected 0")
        if header.packet_length != len(raw):
            return Decoded(
                header,
                None,
                error=f"length field says {header.packet_length} bytes, got {len(raw)}",
            )
        pid = self.packet_id(header)
        packet = self.mission.packets.get(pid)
        if packet is None:
            return Decoded(header, None, error=f"unknown id 0x{pid:04x}")
        if len(raw) < packet.min_length:
            return Decoded(
                header,
                packet,
                error=f"too short for {packet.name}: {len(raw)} bytes, needs {packet.min_length}",
            )
        if packet.crc == "crc16-ccitt":
            found, computed = int.from_bytes(raw[-2:], "big"), crc16_ccitt(raw[:-2])
            if found != computed:
                return Decoded(
                    header,
                    packet,
                    error=f"bad checksum: CRC-16 is 0x{found:04x}, computed 0x{computed:04x}",
                )
        raw_values: dict[str, Value] = {}
        values: dict[str, Value] = {}
        for name, extract, calibration in self._compiled[pid]:
            value = extract(raw)
            raw_values[name] = value
            values[name] = calibrate(calibration, value) if calibration else value
        return Decoded(header, packet, raw_values, values, self.packet_time(raw, header))

    def packet_time(self, raw: bytes, header: Header) -> float | None:
        """Unix time from the secondary header, when the mission defines one."""
        time = self.mission.time
        if time is None or self._seconds is None or not header.secondary_header:
            return None
        if len(raw) < self._time_end:
            return None
        seconds = float(self._seconds(raw))
        sub = float(self._subseconds(raw)) if self._subseconds else 0.0
        return time.epoch_unix_s + seconds + sub * time.subsecond_scale


# --- encoding --------------------------------------------------------------------------


def _put(buf: bytearray, f: Field | Argument, bit_offset: int, value: Value) -> None:
    byte, bit = divmod(bit_offset, 8)
    order = f.byte_order
    if f.kind in ("str", "bytes"):
        n = f.bits // 8
        data = value.encode() if isinstance(value, str) else bytes(value)  # type: ignore[arg-type]
        if len(data) > n:
            raise ValueError(f"{f.name}: {len(data)} bytes do not fit in {n}")
        buf[byte : byte + n] = data.ljust(n, b"\0")
        return
    if f.kind == "f":
        code = {32: "f", 64: "d"}[f.bits]
        struct.pack_into((">" if order == "big" else "<") + code, buf, byte, float(value))
        return
    number = int(value)
    low, high = int_range(f.kind, f.bits)
    if not low <= number <= high:
        raise ValueError(f"{f.name}: {number} does not fit in {f.kind}{f.bits}")
    if bit == 0 and f.bits % 8 == 0:
        buf[byte : byte + f.bits // 8] = number.to_bytes(f.bits // 8, order, signed=f.kind == "i")
        return
    first = byte
    last = (bit_offset + f.bits + 7) // 8
    shift = last * 8 - (bit_offset + f.bits)
    mask = ((1 << f.bits) - 1) << shift
    current = int.from_bytes(buf[first:last], "big")
    current = (current & ~mask) | ((number & ((1 << f.bits) - 1)) << shift)
    buf[first:last] = current.to_bytes(last - first, "big")


def primary_header(
    word0: int, sequence_count: int, total_length: int, sequence_flags: int = 3
) -> bytes:
    """A CCSDS primary header for a packet of `total_length` bytes."""
    return struct.pack(
        ">HHH",
        word0,
        (sequence_flags << 14) | (sequence_count & 0x3FFF),
        total_length - PRIMARY_HEADER_BYTES - 1,
    )


def encode_telemetry(
    mission: Mission,
    packet: Packet,
    raw_values: Mapping[str, Value],
    *,
    sequence_count: int = 0,
    length: int | None = None,
    time_s: float | None = None,
) -> bytes:
    """Build a telemetry packet from raw field values (the inverse of `Codec.decode`)."""
    size = max(length or 0, packet.length, packet.min_length)
    buf = bytearray(size)
    for f in packet.fields:
        if f.name in raw_values:
            _put(buf, f, f.bit_offset, raw_values[f.name])
    if mission.time is not None and time_s is not None:
        t = time_s - mission.time.epoch_unix_s
        seconds = math.floor(t)
        _put(buf, mission.time.seconds, mission.time.seconds.bit_offset, seconds)
        if mission.time.subseconds is not None:
            sub = round((t - seconds) / mission.time.subsecond_scale)
            _, top = int_range("u", mission.time.subseconds.bits)
            _put(buf, mission.time.subseconds, mission.time.subseconds.bit_offset, min(sub, top))
    word0 = packet.id if mission.id_kind == "msgid" else (0x0800 | packet.id)
    buf[0:6] = primary_header(word0, sequence_count, size)
    if packet.crc == "crc16-ccitt":
        buf[-2:] = crc16_ccitt(buf[:-2]).to_bytes(2, "big")
    return bytes(buf)


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc16_ccitt(data: bytes | bytearray) -> int:
    """CRC-16/CCITT-FALSE (polynomial 0x1021, initial 0xFFFF), as CCSDS and ECSS PUS use."""
    crc = 0xFFFF
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ b]
    return crc


def cfs_checksum(packet: bytes | bytearray) -> int:
    """The cFS command checksum byte: makes the XOR of all bytes equal 0xFF."""
    x = 0xFF
    for b in packet:
        x ^= b
    return x


def encode_command(
    mission: Mission,
    command: Command,
    arguments: Mapping[str, Value],
    *,
    sequence_count: int = 0,
) -> bytes:
    """Build a command packet: header, function code, checksum, then the arguments in order.

    `arguments` are values as an operator gives them (numbers, state names, text); each is
    checked and converted with `groundctl.mdb.validate.convert_argument` (ArgumentError
    when it does not fit), and a missing argument takes its default. The layout is cFS's:
    byte 6 function code, byte 7 checksum, payload from byte 8.
    """
    from groundctl.mdb.validate import ArgumentError, convert_argument

    size_bits = sum(a.bits for a in command.arguments)
    total = 8 + (size_bits + 7) // 8
    buf = bytearray(total)
    bit = 64
    for argument in command.arguments:
        value = arguments.get(argument.name, argument.default)
        if value is None:
            raise ArgumentError(f"{command.name}: argument {argument.name} has no value")
        _put(buf, argument, bit, convert_argument(argument, value))
        bit += argument.bits
    buf[0:6] = primary_header(command.id, sequence_count, total)
    buf[6] = command.function_code & 0x7F
    if mission.checksum == "cfs-xor":
        buf[7] = 0
        buf[7] = cfs_checksum(buf)
    return bytes(buf)


def verify_cfs_checksum(packet: bytes) -> bool:
    """True when a cFS command packet's checksum is right (XOR of all bytes is 0xFF)."""
    return cfs_checksum(packet) == 0


@dataclass(frozen=True)
class Chunk:
    """A piece of a packet stream: a whole packet, or bytes that could not be one."""

    offset: int
    data: bytes
    error: str = ""


def split_packets(stream: bytes) -> list[Chunk]:
    """Split concatenated space packets (a CCSDS packet file) by their length fields.

    A trailing piece shorter than its header says is returned as one Chunk with an error,
    so that no byte is lost.
    """
    chunks: list[Chunk] = []
    offset = 0
    while offset < len(stream):
        header = parse_header(stream[offset : offset + PRIMARY_HEADER_BYTES])
        if header is None:
            chunks.append(Chunk(offset, stream[offset:], "truncated header"))
            break
        end = offset + header.packet_length
        if end > len(stream):
            chunks.append(
                Chunk(
                    offset,
                    stream[offset:],
                    f"truncated: length field says {header.packet_length} bytes, "
                    f"{len(stream) - offset} left",
                )
            )
            break
        chunks.append(Chunk(offset, stream[offset:end]))
        offset = end
    return chunks
